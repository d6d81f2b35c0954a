"""Every check of what a user hands the engine: feature tables, labels and hyperparameters.

One module for every model family and for job loading, so that a rule (and its message) is
written once. Errors name the party and the column (:class:`~vfl.errors.DataError`) or the
hyperparameter (``ValueError``), and say what was expected.
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Iterable

import numpy as np
import pandas as pd

from vfl.errors import DataError

LABEL_KINDS = ("binary", "classes", "continuous")
MAX_CLASSES = 16


# -- feature tables --------------------------------------------------------------------------
def is_categorical(column: pd.Series) -> bool:
    """Text, category and boolean columns hold categories (binned by category); numbers do not."""
    dtype = column.dtype
    return not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


def check_features(X, party: str, *, allow_nan: bool, n_features: int | None = None,
                   nan_hint: str = "") -> np.ndarray:
    """``X`` as a 2-D float array, checked. Errors name ``party`` and the column.

    Every column must be numeric (booleans and text must be encoded first) and finite; NaN
    means "missing" and is accepted only with ``allow_nan`` (``nan_hint`` is appended to the
    refusal, e.g. which models accept missing values).
    """
    names = [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None
    if names is not None:
        for column in X.columns:
            dtype = X[column].dtype
            if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
                raise DataError(f"{party}: feature column {str(column)!r} is not numeric (dtype {dtype}); "
                                "encode it first")
    try:
        x = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{party}: the features are not numeric") from None
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"{party}: features must be a non-empty 2-D table, got shape {x.shape}")
    if n_features is not None and x.shape[1] != n_features:
        raise DataError(f"{party}: the model was fitted on {n_features} features, got {x.shape[1]}")
    _check_finite(x, party, names, allow_nan, nan_hint)
    return x


def _check_finite(x: np.ndarray, party: str, names, allow_nan: bool, nan_hint: str) -> None:
    def column(i: int) -> str:
        return repr(names[i]) if names else str(i)

    infinite = np.isinf(x)
    if infinite.any():
        raise DataError(f"{party}: feature column {column(int(np.flatnonzero(infinite.any(axis=0))[0]))} "
                        "has infinite values")
    if not allow_nan:
        missing = np.isnan(x)
        if missing.any():
            i = int(np.flatnonzero(missing.any(axis=0))[0])
            hint = f"; {nan_hint}" if nan_hint else ""
            raise DataError(f"{party}: feature column {column(i)} has missing values{hint}")


def check_columns(frame: pd.DataFrame, party: str, *, id_column: str | None, label: str | None,
                  features: Iterable[str] | None) -> list[str]:
    """The feature columns a party's table offers: the named ones, or every column but the id
    and the label. Refuses missing or repeated names and an id or label used as a feature."""
    for column, what in ((id_column, "id column"), (label, "label column")):
        if column is not None and column not in frame.columns:
            raise DataError(f"{party}: {what} {column!r} is not in its table")
    if features is None:
        chosen = [c for c in frame.columns if c not in (id_column, label)]
    else:
        chosen = list(features)
        repeated = sorted({c for c in chosen if chosen.count(c) > 1})
        if repeated:
            raise DataError(f"{party}: feature columns {repeated} are listed more than once")
        special = [c for c in chosen if c in (id_column, label)]
        if special:
            raise DataError(f"{party}: {special[0]!r} is the id or label column, not a feature")
        absent = [c for c in chosen if c not in frame.columns]
        if absent:
            raise DataError(f"{party}: feature columns {absent} are not in its table")
    if not chosen:
        raise DataError(f"{party}: no feature columns")
    return chosen


# -- labels ----------------------------------------------------------------------------------
def check_labels(y, n_rows: int, party: str, kind: str) -> np.ndarray:
    """Labels as a float array of ``n_rows``: ``binary`` 0/1, ``classes`` 0..K-1 with every
    class present (2 <= K <= :data:`MAX_CLASSES`), or ``continuous`` (any finite value)."""
    if kind not in LABEL_KINDS:
        raise ValueError(f"label kind must be one of {LABEL_KINDS}, got {kind!r}")
    try:
        labels = np.asarray(y, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(f"{party}: labels must be numbers (0/1, 0..K-1 or a target value) and the label "
                        "column holds text: encode it first") from None
    if labels.shape != (n_rows,):
        raise DataError(f"{party}: {labels.shape[0]} labels for {n_rows} rows")
    if not np.isfinite(labels).all():
        raise DataError(f"{party}: the label column has missing or infinite values")
    if kind == "binary" and not np.isin(labels, (0.0, 1.0)).all():
        found = sorted(set(np.unique(labels).tolist()) - {0.0, 1.0})[:5]
        raise DataError(f"{party}: a binary model needs labels 0/1, found {found}")
    if kind == "binary" and len(np.unique(labels)) < 2:
        raise DataError(f"{party}: the labels hold a single class; a classifier needs both 0 and 1")
    if kind == "classes":
        classes = np.unique(labels)
        if not (classes == np.arange(len(classes))).all():
            found = [v for v in classes.tolist() if not (float(v).is_integer() and 0 <= v < len(classes))][:5]
            raise DataError(f"{party}: classification needs labels 0, 1, …, K−1 with every class present; "
                            f"found {found or classes.tolist()[:5]} among {len(classes)} classes")
        if len(classes) < 2:
            raise DataError(f"{party}: the labels hold a single class")
        if len(classes) > MAX_CLASSES:
            raise DataError(f"{party}: {len(classes)} classes; at most {MAX_CLASSES} are supported")
    return labels


# -- hyperparameters -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Interval:
    """A number in a range; ``integer`` refuses floats, ``closed`` says which ends are allowed."""

    low: float | None = None
    high: float | None = None
    closed: str = "both"            # "both", "left", "right", "neither"
    integer: bool = False

    def accepts(self, value) -> bool:
        kind = numbers.Integral if self.integer else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kind) or not np.isfinite(float(value)):
            return False
        low_ok = self.low is None or (value >= self.low if self.closed in ("both", "left") else value > self.low)
        high_ok = self.high is None or (value <= self.high if self.closed in ("both", "right") else value < self.high)
        return low_ok and high_ok

    def describe(self) -> str:
        what = "an integer" if self.integer else "a number"
        lo = "" if self.low is None else ("[" if self.closed in ("both", "left") else "(") + f"{self.low:g}"
        hi = "" if self.high is None else f"{self.high:g}" + ("]" if self.closed in ("both", "right") else ")")
        if self.low is not None and self.high is not None:
            return f"{what} in {lo}, {hi}"
        if self.low is not None:
            return f"{what} {'>=' if lo.startswith('[') else '>'} {self.low:g}"
        if self.high is not None:
            return f"{what} {'<=' if hi.endswith(']') else '<'} {self.high:g}"
        return what


def Integer(low=None, high=None) -> Interval:          # noqa: N802 - reads like a type in a table
    return Interval(low, high, "both", integer=True)


@dataclasses.dataclass(frozen=True)
class Options:
    """One of a fixed set of values; ``many``: a non-empty list of them, none twice."""

    values: tuple
    many: bool = False

    def accepts(self, value) -> bool:
        if self.many:
            return isinstance(value, (list, tuple)) and 0 < len(value) == len(set(map(repr, value))) \
                and all(Options(self.values).accepts(v) for v in value)
        return not isinstance(value, bool) and value in self.values

    def describe(self) -> str:
        return ("a non-empty list of " if self.many else "one of ") + ", ".join(map(repr, self.values))


@dataclasses.dataclass(frozen=True)
class Boolean:
    def accepts(self, value) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "true or false"


@dataclasses.dataclass(frozen=True)
class Optional:
    """``None`` or what ``inner`` accepts."""

    inner: object

    def accepts(self, value) -> bool:
        return value is None or self.inner.accepts(value)

    def describe(self) -> str:
        return f"{self.inner.describe()}, or unset"


def check_params(params: dict, constraints: dict, owner: str) -> None:
    """``ValueError`` naming the first parameter that breaks its constraint."""
    for name, constraint in constraints.items():
        if name in params and not constraint.accepts(params[name]):
            raise ValueError(f"{owner}: {name} must be {constraint.describe()}, got {params[name]!r}")
