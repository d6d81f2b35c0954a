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


def bin_columns(x: np.ndarray, max_bins: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(codes, edges)``: codes[i, f] is the bin of x[i, f] (``MISSING`` for NaN)."""
    codes = np.empty(x.shape, dtype=np.int32)
    edges = []
    for f in range(x.shape[1]):
        e = quantile_edges(x[:, f], max_bins)
        col = x[:, f]
        codes[:, f] = np.where(np.isnan(col), MISSING, np.searchsorted(e, col, side="left"))
        edges.append(e)
    return codes, edges
