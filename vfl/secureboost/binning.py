"""Quantile binning (each party bins only its own columns).

A feature with edges ``e_0 < … < e_{B-2}`` has ``B`` bins: bin ``b`` holds ``e_{b-1} < x <= e_b``
(bin 0: ``x <= e_0``, last bin: ``x > e_{B-2}``). A split "bin <= b" is therefore the threshold
rule ``x <= e_b``. Missing values (NaN) get the code ``-1`` and no bin: each split learns a
default direction for them (as XGBoost does).
"""
from __future__ import annotations

import numpy as np

MISSING = -1


def quantile_edges(values: np.ndarray, max_bins: int) -> np.ndarray:
    """At most ``max_bins − 1`` increasing edges from the non-missing values of one column."""
    v = values[~np.isnan(values)]
    if len(v) == 0:
        return np.empty(0)
    distinct = np.unique(v)
    if len(distinct) <= max_bins:
        return distinct[:-1]                       # one bin per distinct value
    qs = np.quantile(v, np.linspace(0.0, 1.0, max_bins + 1)[1:-1])
    edges = np.unique(qs)
    return edges[edges < distinct[-1]]             # an edge at the maximum would leave an empty bin


def code_dtype(max_bins: int) -> np.dtype:
    """The smallest signed integer type that holds every code (``MISSING`` included)."""
    return np.dtype(np.int8 if max_bins <= 127 else np.int16)


def apply_edges(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin of each value under ``edges`` (``MISSING`` for NaN)."""
    return np.where(np.isnan(values), MISSING, np.searchsorted(edges, values, side="left"))


def bin_columns(x: np.ndarray, max_bins: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(codes, edges)``: codes[i, f] is the bin of x[i, f] (``MISSING`` for NaN)."""
    codes = np.empty(x.shape, dtype=code_dtype(max_bins))
    edges = []
    for f in range(x.shape[1]):
        e = quantile_edges(x[:, f], max_bins)
        codes[:, f] = apply_edges(x[:, f], e)
        edges.append(e)
    return codes, edges


SAMPLE_VALUES = 50_000_000     # 400 MB of float64: the most values a streamed table's edges come from


def bin_blocks(x, max_bins: int, *, max_values: int = SAMPLE_VALUES) -> tuple[np.ndarray, list[np.ndarray]]:
    """:func:`bin_columns` for a table read a chunk at a time (a :class:`vfl.jobs.data.ColumnFile`),
    in two passes: the edges, then the codes. Memory: the codes (one byte a value up to 127
    bins) and at most ``max_values`` float64 values, never the table.

    When rows × columns ≤ ``max_values`` the edges are computed from every row: the same codes
    and edges as :func:`bin_columns` of the whole table. A larger table's edges come from every
    k-th row (k = ⌈rows × columns / max_values⌉): quantiles of a systematic sample of m rows,
    off by a rank error of the order of 1/√m (≈ 0.25% at m = 166,000, 300 columns).
    """
    n, p = x.shape
    step = max(1, -(-n * p // max_values))
    sample = (x.iloc[np.arange(0, n, step)] if step > 1 else x).to_numpy()
    edges = [quantile_edges(sample[:, f], max_bins) for f in range(p)]
    del sample
    codes = np.empty((n, p), dtype=code_dtype(max_bins))
    for index, values in x.blocks():
        for f in range(p):
            codes[index, f] = apply_edges(values[:, f], edges[f])
    return codes, edges
