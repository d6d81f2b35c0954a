"""Reading a party's table and checking it against the job before anything is encrypted."""
from __future__ import annotations

import pathlib

import pandas as pd

from vfl import registry
from vfl.errors import DataError
from vfl.family import ModelFamily
from vfl.jobs.spec import PartySpec
from vfl.validation import check_columns, check_features, check_labels


def read_table(path, party: str) -> pd.DataFrame:
    """A CSV file (optionally gzipped) as a DataFrame; errors name the party and the file."""
    p = pathlib.Path(path)
    if not p.exists():
        raise DataError(f"{party}: data file {p} does not exist")
    try:
        return pd.read_csv(p)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{party}: cannot read {p} as CSV: {exc}") from None


def feature_columns(frame: pd.DataFrame, party: PartySpec, family: ModelFamily) -> list[str]:
    """The party's feature columns for ``family``, checked: present, numeric, finite, and free of
    missing values unless the family accepts them; the active's labels too. Errors name the
    party and the column."""
    features = check_columns(frame, party.name, id_column=party.id_column, label=party.label,
                             features=party.features)
    hint = (f"{family.name} needs complete rows; models that accept missing values: "
            f"{', '.join(registry.accepting_missing_values()) or 'none'}")
    check_features(frame[features], party.name, allow_nan=family.data.allow_nan, nan_hint=hint)
    if party.label is not None and family.data.label is not None:
        check_labels(frame[party.label], len(frame), f"{party.name} (label column {party.label!r})", family.data.label)
    return features
