"""Reading a party's table and checking it against the job before anything is encrypted."""
from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd

from vfl.errors import DataError
from vfl.jobs.spec import PartySpec


def read_table(path, party: str) -> pd.DataFrame:
    """A CSV file (optionally gzipped) as a DataFrame; errors name the party and the file."""
    p = pathlib.Path(path)
    if not p.exists():
        raise DataError(f"{party}: data file {p} does not exist")
    try:
        return pd.read_csv(p)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{party}: cannot read {p} as CSV: {exc}") from None


def feature_columns(frame: pd.DataFrame, party: PartySpec) -> list[str]:
    """The party's feature columns, checked: present and numeric; errors name party and column."""
    for column, what in ((party.id_column, "id column"), (party.label, "label column")):
        if column is not None and column not in frame.columns:
            raise DataError(f"{party.name}: {what} {column!r} is not in its table "
                            f"(columns: {', '.join(map(repr, list(frame.columns)[:12]))})")
    exclude = {party.id_column, party.label}
    features = list(party.features) if party.features else [c for c in frame.columns if c not in exclude]
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise DataError(f"{party.name}: feature columns {missing} are not in its table")
    if not features:
        raise DataError(f"{party.name}: no feature columns")
    for column in features:
        if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
            raise DataError(f"{party.name}: feature column {column!r} is not numeric "
                            f"(dtype {frame[column].dtype}); encode it first")
        if not np.isfinite(frame[column].to_numpy(dtype=float)).all():
            raise DataError(f"{party.name}: feature column {column!r} has missing or infinite values")
    if party.label is not None and frame[party.label].isna().any():
        raise DataError(f"{party.name}: label column {party.label!r} has missing values")
    return features
