"""Reading a party's table and checking it against the job before anything is encrypted."""
from __future__ import annotations

import pathlib

import pandas as pd

from vfl import registry
from vfl.errors import DataError
from vfl.family import ModelFamily
from vfl.jobs.spec import PartySpec
from vfl.validation import check_columns, check_features, check_labels, is_categorical


def read_table(path, party: str, id_column: str | None = None) -> pd.DataFrame:
    """A CSV file (optionally gzipped) as a DataFrame; errors name the party and the file.

    The id column is read as text: an id is a name, not a number, so ``00133`` and ``133`` are
    different customers (docs/psi.md). A file with no rows is refused here, by name.
    """
    p = pathlib.Path(path)
    if not p.exists():
        raise DataError(f"{party}: data file {p} does not exist")
    try:
        frame = pd.read_csv(p, dtype={id_column: str} if id_column else None)
    except pd.errors.EmptyDataError:
        raise DataError(f"{party}: data file {p} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataError(f"{party}: cannot read {p} as CSV: {exc}") from None
    if frame.empty:
        raise DataError(f"{party}: data file {p} has a header but no rows")
    return frame


def feature_columns(frame: pd.DataFrame, party: PartySpec, family: ModelFamily) -> list[str]:
    """The party's feature columns for ``family``, checked: present, numeric, finite, and free of
    missing values unless the family accepts them; the active's labels too. Errors name the
    party and the column."""
    features = check_columns(frame, party.name, id_column=party.id_column, label=party.label,
                             features=party.features)
    hint = (f"{family.name} needs complete rows; models that accept missing values: "
            f"{', '.join(registry.accepting_missing_values()) or 'none'}")
    numeric = features
    if family.data.categorical:        # text columns are binned by category; the numeric ones checked
        numeric = [c for c in features if not is_categorical(frame[c])]
    if numeric:
        check_features(frame[numeric], party.name, allow_nan=family.data.allow_nan, nan_hint=hint)
    if party.label is not None and family.data.label is not None:
        check_labels(frame[party.label], len(frame), f"{party.name} (label column {party.label!r})", family.data.label)
    return features
