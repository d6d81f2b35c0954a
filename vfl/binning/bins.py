"""Binning one party's own columns, and WOE/IV from event counts (plain computation).

Every party bins its own columns with the same rules, so a centralized computation with the same
bins gives the same counts, hence the same WOE and IV exactly:

- numeric columns: ``quantile`` edges (default) or ``equal_width`` edges over the non-missing
  values, at most ``n_bins`` bins; edges that coincide are merged;
- missing values (NaN) get a bin of their own, after the others;
- bins smaller than ``min_bin_size`` rows are merged into a neighbour (the smaller one) until none
  is, so no revealed count or WOE describes a handful of customers.

WOE of bin b: ``ln(((events_b + ½) / (events + ½)) / ((nonevents_b + ½) / (nonevents + ½)))`` —
the ½ keeps empty classes finite (stated, and used by the reference in the tests); IV is
``Σ_b (events_b/events − nonevents_b/nonevents) · WOE_b``.
"""
from __future__ import annotations

import numpy as np

METHODS = ("quantile", "equal_width")
SMOOTHING = 0.5


def edges_for(values: np.ndarray, n_bins: int, method: str) -> np.ndarray:
    """Inner cut points of one column's non-missing values (bins are (−∞, e0], (e0, e1], …)."""
    v = values[~np.isnan(values)]
    if not len(v):
        return np.zeros(0)
    if method == "quantile":
        cuts = np.quantile(v, np.linspace(0, 1, n_bins + 1)[1:-1])
    elif method == "equal_width":
        cuts = np.linspace(v.min(), v.max(), n_bins + 1)[1:-1]
    else:
        raise ValueError(f"unknown binning method {method!r}; choose one of {METHODS}")
    return np.unique(cuts[(cuts >= v.min()) & (cuts < v.max())])


def assign(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index of every row; missing values in bin ``len(edges) + 1``."""
    out = np.searchsorted(edges, values, side="left")
    out[np.isnan(values)] = len(edges) + 1
    return out


def merge_small(values: np.ndarray, edges: np.ndarray, min_size: int) -> np.ndarray:
    """Drop edges until every non-missing bin holds at least ``min_size`` rows (or one bin is left)."""
    edges = np.asarray(edges, float)
    while len(edges):
        counts = np.bincount(assign(values, edges), minlength=len(edges) + 2)[:len(edges) + 1]
        small = int(np.argmin(counts))
        if counts[small] >= min_size:
            break
        # merge the smallest bin with its smaller neighbour: drop the edge between them
        if small == 0:
            drop = 0
        elif small == len(counts) - 1:
            drop = small - 1
        else:
            drop = small - 1 if counts[small - 1] <= counts[small + 1] else small
        edges = np.delete(edges, drop)
    return edges


def column_bins(values: np.ndarray, n_bins: int, method: str, min_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(edges, bin of every row) for one column."""
    edges = merge_small(values, edges_for(values, n_bins, method), min_size)
    return edges, assign(values, edges)


def woe_iv(events: np.ndarray, totals: np.ndarray) -> tuple[np.ndarray, float]:
    """WOE per bin and the column's IV from per-bin event counts and row counts."""
    events, totals = np.asarray(events, float), np.asarray(totals, float)
    nonevents = totals - events
    e, ne = events.sum(), nonevents.sum()
    de, dne = (events + SMOOTHING) / (e + SMOOTHING), (nonevents + SMOOTHING) / (ne + SMOOTHING)
    woe = np.log(de / dne)
    iv = float(np.sum((events / max(e, 1.0) - nonevents / max(ne, 1.0)) * woe))
    return woe, iv
