"""Id normalization: how a party's id column becomes the bytes that the PSI hashes.

The rule (every party applies the same one, so equal customers give equal bytes):

- strings: Unicode NFC, then leading/trailing whitespace stripped (``str.strip``); case and
  inner characters are kept (``"A7"`` and ``"a7"`` differ, so do ``"007"`` and ``"7"``);
- integers (Python, numpy, pandas nullable): their decimal form (``42`` → ``"42"``);
- floats: only whole, finite values below 2**53, as the integer they equal (``42.0`` → ``"42"``;
  pandas turns an integer column with gaps into floats);
- then UTF-8. So the integer ``42``, the float ``42.0`` and the string ``" 42 "`` are one id.

Rejected with a :class:`~vfl.errors.DataError` that names the party and the column: a
missing column, an empty table, missing ids (None/NaN), empty strings, booleans, fractional
or non-finite floats, other types, and ids that are equal after normalization (duplicates).
Messages give counts and row numbers, never id values (they may travel to peers).
"""
from __future__ import annotations

import numbers
import unicodedata

import numpy as np
import pandas as pd

from vfl.errors import DataError

_MAX_EXACT_FLOAT = 2.0 ** 53


def _where(party: str, column) -> str:
    return f"party {party!r}, id column {column!r}"


def id_series(df, id_column, party: str) -> pd.Series:
    """The id column of ``df``; DataError if ``df`` is not a table, has no such column or no rows."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{_where(party, id_column)}: expected a pandas DataFrame, got {type(df).__name__}")
    if id_column not in df.columns:
        shown = ", ".join(repr(c) for c in list(df.columns)[:10])
        raise DataError(f"{_where(party, id_column)}: no such column (columns: {shown})")
    column = df[id_column]
    if isinstance(column, pd.DataFrame):
        raise DataError(f"{_where(party, id_column)}: the column name appears more than once")
    if len(df) == 0:
        raise DataError(f"{_where(party, id_column)}: the table is empty; PSI needs at least one row")
    missing = column.isna().to_numpy()
    if missing.any():
        raise DataError(f"{_where(party, id_column)}: {int(missing.sum())} missing ids "
                        f"(first at row {int(np.argmax(missing))})")
    return column


def _one(value, row: int, where: str) -> str:
    if isinstance(value, str):
        text = value if value.isascii() else unicodedata.normalize("NFC", value)
        text = text.strip()
        if not text:
            raise DataError(f"{where}: empty id at row {row}")
        return text
    if isinstance(value, (bool, np.bool_)):
        raise DataError(f"{where}: boolean id at row {row}; ids are strings or integers")
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if not np.isfinite(number) or number != int(number) or abs(number) >= _MAX_EXACT_FLOAT:
            raise DataError(f"{where}: non-integral or out-of-range float id at row {row}")
        return str(int(number))
    raise DataError(f"{where}: id of type {type(value).__name__} at row {row}; ids are strings or integers")


def _floats(values: np.ndarray, where: str) -> list[str]:
    bad = ~np.isfinite(values) | (np.abs(values) >= _MAX_EXACT_FLOAT)
    bad |= np.where(bad, False, values != np.trunc(np.where(bad, 0.0, values)))
    if bad.any():
        raise DataError(f"{where}: {int(bad.sum())} non-integral or out-of-range float ids "
                        f"(first at row {int(np.argmax(bad))})")
    return [str(v) for v in values.astype(np.int64).tolist()]


def normalize_ids(df, id_column, party: str) -> list[str]:
    """The normalized ids of ``df[id_column]``, in row order (see the module docstring)."""
    column = id_series(df, id_column, party)
    where = _where(party, id_column)
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise DataError(f"{where}: boolean ids; ids are strings or integers")
    if pd.api.types.is_integer_dtype(dtype):
        ids = [str(v) for v in column.tolist()]
    elif pd.api.types.is_float_dtype(dtype):
        ids = _floats(column.to_numpy(dtype=np.float64), where)
    else:
        ids = [_one(v, row, where) for row, v in enumerate(column.tolist())]
    check_unique(ids, where)
    return ids


def check_unique(ids: list[str], where: str) -> None:
    """DataError naming how many ids repeat and the first two rows of one repeat."""
    if len(set(ids)) == len(ids):
        return
    dup = pd.Series(ids).duplicated(keep=False).to_numpy()
    first = int(np.argmax(dup))
    twin = next(i for i in range(first + 1, len(ids)) if ids[i] == ids[first])
    raise DataError(f"{where}: {int(dup.sum())} rows share an id with another row after normalization "
                    f"(e.g. rows {first} and {twin}); ids must be unique")


def encode_ids(ids: list[str]) -> list[bytes]:
    """UTF-8 bytes of normalized ids (what the PSI hashes)."""
    return [i.encode("utf-8") for i in ids]
