"""Reading a party's table and checking it against the job before anything is encrypted."""
from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import tempfile

import numpy as np
import pandas as pd

from vfl import registry
from vfl.errors import DataError
from vfl.family import ModelFamily
from vfl.jobs.spec import PartySpec
from vfl.validation import check_columns, check_features, check_labels, is_categorical


@contextlib.contextmanager
def _reading(path: pathlib.Path, party: str):
    """Around reading ``path`` as CSV: pandas' errors become a :class:`DataError` naming the
    party and the file."""
    try:
        yield
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"{party}: data file {path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataError(f"{party}: cannot read {path} as CSV: {exc}") from None


def _existing(path, party: str) -> pathlib.Path:
    p = pathlib.Path(path)
    if not p.exists():
        raise DataError(f"{party}: data file {p} does not exist")
    return p


def read_table(path, party: str, id_column: str | None = None) -> pd.DataFrame:
    """A CSV file (optionally gzipped) as a DataFrame; errors name the party and the file.

    The id column is read as text: an id is a name, not a number, so ``00133`` and ``133`` are
    different customers (docs/psi.md). A file with no rows is refused here, by name.
    """
    p = _existing(path, party)
    with _reading(p, party):
        frame = pd.read_csv(p, dtype={id_column: str} if id_column else None)
    if frame.empty:
        raise DataError(f"{party}: data file {p} has a header but no rows")
    return frame


def read_header(path, party: str) -> pd.DataFrame:
    """The table's columns only (an empty frame), without reading its rows."""
    p = _existing(path, party)
    with _reading(p, party):
        return pd.read_csv(p, nrows=0)


def _nan_hint(family: ModelFamily) -> str:
    return (f"{family.name} needs complete rows; models that accept missing values: "
            f"{', '.join(registry.accepting_missing_values()) or 'none'}")


def open_table(path, party: PartySpec, family: ModelFamily) -> "CsvTable":
    """A passive's table read a chunk at a time (for a family whose data needs ``streams``):
    its columns checked as :func:`feature_columns` checks a frame, its ids in memory."""
    if party.id_column is None:
        raise DataError(f"{party.name}: a table read in chunks needs an id column")
    features = check_columns(read_header(path, party.name), party.name, id_column=party.id_column,
                             label=party.label, features=party.features)
    return CsvTable(path, party.name, party.id_column, features, allow_nan=family.data.allow_nan,
                    nan_hint=_nan_hint(family))


def table_ids(frame) -> pd.DataFrame:
    """What the PSI reads of a table: the frame itself, or a :class:`CsvTable`'s ids."""
    return frame.ids if isinstance(frame, CsvTable) else frame


def table_rows(frame, rows, features: list[str]):
    """``features`` for ``rows`` (positions in the table, in the order given): a frame with
    a fresh index, or a :class:`ColumnFile` of a :class:`CsvTable`."""
    if isinstance(frame, CsvTable):
        return frame.rows(rows)[features]
    return frame.iloc[rows].reset_index(drop=True)[features]


def aligned_rows(frame, aligned, features: list[str]):
    """``features`` of the rows a PSI aligned (``aligned``: its result, whose ``frame`` is the
    table's aligned rows and ``rows`` their positions): from the frame, or a :class:`ColumnFile`."""
    return frame.rows(aligned.rows)[features] if isinstance(frame, CsvTable) else aligned.frame[features]


def feature_columns(frame: pd.DataFrame, party: PartySpec, family: ModelFamily) -> list[str]:
    """The party's feature columns for ``family``, checked: present, numeric, finite, and free of
    missing values unless the family accepts them; the active's labels too. Errors name the
    party and the column. A :class:`CsvTable` was checked when it was opened."""
    features = check_columns(frame, party.name, id_column=party.id_column, label=party.label,
                             features=party.features)
    if isinstance(frame, CsvTable):
        return features
    hint = _nan_hint(family)
    numeric = features
    if family.data.categorical:        # text columns are binned by category; the numeric ones checked
        numeric = [c for c in features if not is_categorical(frame[c])]
    if numeric:
        check_features(frame[numeric], party.name, allow_nan=family.data.allow_nan, nan_hint=hint)
    if party.label is not None and family.data.label is not None:
        check_labels(frame[party.label], len(frame), f"{party.name} (label column {party.label!r})", family.data.label)
    return features


# -- tables read a chunk at a time ------------------------------------------------------------
CHUNK_ROWS = 100_000           # rows parsed at a time: ≈ 240 MB of float64 for 300 columns


class CsvTable:
    """A party's CSV table that is never held whole: its ids (what the PSI needs) in memory,
    its feature columns read again, a chunk of rows at a time, when a step needs them.

    Opening it reads the file once, in chunks: the header, the id column (kept, as text) and
    every feature column (checked as :func:`feature_columns` checks a frame, then dropped), so
    a bad column is refused before the PSI, as it is for a table read whole. Memory: the ids
    plus one chunk. The file must not change while a job uses it (checked before every pass).
    """

    def __init__(self, path, party: str, id_column: str, features: list[str], *, allow_nan: bool,
                 nan_hint: str = "", chunk_rows: int = CHUNK_ROWS):
        self.path, self.party, self.id_column = pathlib.Path(path), party, id_column
        self.features, self.allow_nan, self.chunk_rows = list(features), allow_nan, chunk_rows
        self._stamp = self._file_stamp()
        ids = [chunk[id_column] for chunk in self._chunks([id_column, *self.features], nan_hint=nan_hint)]
        if not ids:
            raise DataError(f"{party}: data file {self.path} has a header but no rows")
        self.ids = pd.DataFrame({id_column: pd.concat(ids, ignore_index=True)})
        self._digest: str | None = None

    @property
    def columns(self) -> list[str]:
        return [self.id_column, *self.features]

    def __len__(self) -> int:
        return len(self.ids)

    def digest(self) -> str:
        """SHA-256 of the file's bytes (what a checkpoint binds a run to), computed once."""
        if self._digest is None:
            self._check_unchanged()
            h = hashlib.sha256()
            with open(self.path, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
            self._digest = h.hexdigest()
        return self._digest

    def rows(self, rows) -> "ColumnFile":
        """The feature columns for ``rows`` (positions among the data rows, in the order given)."""
        return ColumnFile(self, self.features, np.asarray(rows, dtype=np.int64))

    def write_rows(self, rows, target, *, bucket_rows: int = 1_000_000) -> None:
        """Write the header and data rows ``rows`` (positions, in that order) to ``target`` as
        CSV, never holding the table: one pass spills each chosen row, as the file's own text,
        to the bucket of its place in the output (``bucket_rows`` places a bucket); then each
        bucket is read, put in order and appended. Memory: one chunk or one bucket."""
        rows = np.asarray(rows, dtype=np.int64)
        place = np.full(len(self), -1, dtype=np.int64)
        place[rows] = np.arange(len(rows))
        self._check_unchanged()
        with tempfile.TemporaryDirectory(prefix="vfl-rows-", dir=os.path.dirname(os.path.abspath(target))) as tmp:
            buckets, start, header = set(), 0, None
            for chunk in pd.read_csv(self.path, dtype=str, keep_default_na=False, chunksize=self.chunk_rows):
                header = list(chunk.columns)
                where = place[start:start + len(chunk)]
                chosen = chunk[where >= 0].assign(_place=where[where >= 0])
                for b, part in chosen.groupby(chosen["_place"] // bucket_rows):
                    part.to_csv(os.path.join(tmp, f"{b}.csv"), mode="a", header=False, index=False)
                    buckets.add(int(b))
                start += len(chunk)
            with open(target, "w", encoding="utf-8", newline="") as out:
                pd.DataFrame(columns=header).to_csv(out, index=False)
                for b in sorted(buckets):
                    part = pd.read_csv(os.path.join(tmp, f"{b}.csv"), dtype=str, keep_default_na=False, header=None,
                                       names=[*header, "_place"])
                    part.sort_values("_place", key=lambda s: s.astype(np.int64)).drop(columns="_place") \
                        .to_csv(out, header=False, index=False)

    def _file_stamp(self) -> tuple[int, int]:
        st = _existing(self.path, self.party).stat()
        return st.st_size, st.st_mtime_ns

    def _check_unchanged(self) -> None:
        if self._file_stamp() != self._stamp:
            raise DataError(f"{self.party}: data file {self.path} changed while a job was reading it")

    def _chunks(self, columns: list[str], *, nan_hint: str = ""):
        """The file's rows in chunks, ``columns`` only (in that order), feature columns checked."""
        self._check_unchanged()
        wanted = set(columns)
        with _reading(self.path, self.party):
            reader = pd.read_csv(self.path, usecols=lambda c: c in wanted, chunksize=self.chunk_rows,
                                 dtype={self.id_column: str})
            features = [c for c in columns if c != self.id_column]
            for chunk in reader:
                if chunk.empty:                 # a header and no rows: one empty chunk of text columns
                    continue
                absent = [c for c in columns if c not in chunk.columns]
                if absent:
                    raise DataError(f"{self.party}: columns {absent} are not in its table {self.path}")
                if features:
                    check_features(chunk[features], self.party, allow_nan=self.allow_nan, nan_hint=nan_hint)
                yield chunk[columns]


class ColumnFile:
    """Some feature columns of a :class:`CsvTable` for some of its rows, read on demand.

    It stands in for the frame a family's estimator would get: ``len``, ``columns``, ``shape``,
    ``x.iloc[rows]`` (a narrower view) and ``x[columns]``; :meth:`blocks` reads it a chunk at
    a time and :meth:`to_numpy` whole (for the few columns a fitted model uses, say).
    """

    def __init__(self, table: CsvTable, columns: list[str], rows: np.ndarray):
        self.table, self.columns, self.row_positions = table, list(columns), rows

    def __len__(self) -> int:
        return len(self.row_positions)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self), len(self.columns)

    @property
    def iloc(self) -> "_Positions":
        return _Positions(self)

    def __getitem__(self, columns):
        columns = [columns] if isinstance(columns, str) else list(columns)
        absent = [c for c in columns if c not in self.columns]
        if absent:
            raise KeyError(f"columns {absent} are not among {self.columns}")
        return ColumnFile(self.table, columns, self.row_positions)

    def blocks(self):
        """``(index, values)`` per chunk of the file: ``values[j]`` (float64, one column per
        column of this view) is row ``index[j]`` of this view. Every row comes exactly once."""
        order = np.argsort(self.row_positions, kind="stable")
        positions = self.row_positions[order]
        start = 0
        for chunk in self.table._chunks(self.columns):
            end = start + len(chunk)
            lo, hi = np.searchsorted(positions, [start, end])
            if hi > lo:
                values = chunk.to_numpy(dtype=np.float64)
                yield order[lo:hi], values[positions[lo:hi] - start]
            start = end
        if len(positions) and positions[-1] >= start:
            raise DataError(f"{self.table.party}: data file {self.table.path} has {start} rows, fewer than "
                            f"the job's row {int(positions[-1])}")

    def to_numpy(self) -> np.ndarray:
        out = np.empty(self.shape, dtype=np.float64)
        for index, values in self.blocks():
            out[index] = values
        return out


class _Positions:
    """``view.iloc[index]``: the rows of a :class:`ColumnFile` at positions ``index``, as a view."""

    def __init__(self, view: ColumnFile):
        self.view = view

    def __getitem__(self, index) -> ColumnFile:
        v = self.view
        return ColumnFile(v.table, v.columns, v.row_positions[np.asarray(index)])
