"""Binning one party's own columns, and WOE/IV from event counts (plain computation).

Every party bins its own columns with the same rules, so a centralized computation with the same
bins gives the same counts, hence the same WOE and IV exactly:

- numeric columns: ``quantile`` edges (default) or ``equal_width`` edges over the non-missing
  values, at most ``n_bins`` bins; edges that coincide are merged. Bins are (−∞, e0], (e0, e1], …;
- categorical columns (text): one bin per category, in sorted order; categories with fewer than
  ``min_bin_size`` rows pooled into one "other" bin (which also takes categories never seen);
- missing values (NaN, empty cells) get a bin of their own, after the others;
- bins smaller than ``min_bin_size`` rows are merged until none is — a numeric bin into its
  smaller neighbour, a small missing-value bin or "other" bin into the column's largest bin — so
  no revealed count or WOE describes a handful of customers;
- optionally (``monotone``), adjacent numeric bins are merged until WOE is monotone over them
  (:func:`monotone_groups`).

WOE of bin b: ``ln(((events_b + ½) / (events + ½)) / ((nonevents_b + ½) / (nonevents + ½)))`` —
the ½ keeps empty classes finite (stated, and used by the reference in the tests); IV is
``Σ_b (events_b/events − nonevents_b/nonevents) · WOE_b``.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from vfl.validation import is_categorical

METHODS = ("quantile", "equal_width")
SMOOTHING = 0.5
MAX_CATEGORY_CHARS = 256


def category_values(column: pd.Series) -> np.ndarray:
    """A categorical column as an object array of strings, None where missing."""
    return np.array([None if pd.isna(v) else str(v) for v in column], dtype=object)


@dataclasses.dataclass(frozen=True)
class ColumnBins:
    """How one column's values map to bins: numeric edges or a category table, and where the
    missing values go. Bins are numbered ``0 .. n_bins-1``."""

    kind: str                                  # "numeric" or "categorical"
    n_bins: int
    edges: tuple[float, ...] = ()              # numeric: bins 0..len(edges) by these cut points
    categories: tuple[str, ...] = ()           # categorical: category k -> bin category_bins[k]
    category_bins: tuple[int, ...] = ()
    other_bin: int | None = None               # categorical: rare and unseen categories
    missing_bin: int | None = None             # None: no missing value in training (then the largest bin)
    numeric_map: tuple[int, ...] = ()          # numeric: raw bin (by edges) -> bin, after merging
    largest_bin: int = 0                       # where values with nowhere else to go are put

    @property
    def ordered(self) -> int:
        """How many leading bins are ordered (numeric bins by their edges); 0 for categories."""
        return len(self.edges) + 1 if self.kind == "numeric" else 0

    def assign(self, values) -> np.ndarray:
        """The bin of every value (missing values, and unseen categories, as stated above)."""
        if self.kind == "numeric":
            v = np.asarray(values, dtype=float)
            raw = np.searchsorted(np.asarray(self.edges, float), v, side="left")
            out = np.asarray(self.numeric_map, np.int64)[raw] if self.numeric_map else raw.astype(np.int64)
            missing = np.isnan(v)
        else:
            v = np.asarray(values, dtype=object)
            table = dict(zip(self.categories, self.category_bins))
            fallback = self.other_bin if self.other_bin is not None else self.largest_bin
            out = np.array([table.get(c, fallback) for c in v], dtype=np.int64)
            missing = np.array([c is None for c in v], dtype=bool)
        if missing.any():
            out[missing] = self.missing_bin if self.missing_bin is not None else self.largest_bin
        return out

    def merged(self, new_of_old: np.ndarray) -> "ColumnBins":
        """These bins with bin b renamed ``new_of_old[b]`` (several bins onto one: merged)."""
        m = np.asarray(new_of_old, np.int64)
        if self.kind == "numeric":
            numeric_map = tuple(int(m[b]) for b in (self.numeric_map or range(len(self.edges) + 1)))
            return dataclasses.replace(self, n_bins=int(m.max()) + 1, numeric_map=numeric_map,
                                       missing_bin=None if self.missing_bin is None else int(m[self.missing_bin]),
                                       largest_bin=int(m[self.largest_bin]))
        return dataclasses.replace(self, n_bins=int(m.max()) + 1,
                                   category_bins=tuple(int(m[b]) for b in self.category_bins),
                                   other_bin=None if self.other_bin is None else int(m[self.other_bin]),
                                   missing_bin=None if self.missing_bin is None else int(m[self.missing_bin]),
                                   largest_bin=int(m[self.largest_bin]))

    def describe(self) -> list[str]:
        """A label per bin for scorecard tables: ranges, categories, "missing"."""
        labels: list[list[str]] = [[] for _ in range(self.n_bins)]
        if self.kind == "numeric":
            edges = [-np.inf, *self.edges, np.inf]
            raw = list(self.numeric_map or range(len(self.edges) + 1))
            for b in range(self.n_bins):
                members = [k for k, t in enumerate(raw) if t == b]
                if members:
                    labels[b].append(f"({_num(edges[members[0]])}, {_num(edges[members[-1] + 1])}]")
        else:
            for c, b in zip(self.categories, self.category_bins):
                labels[b].append(repr(c))
            if self.other_bin is not None:
                labels[self.other_bin].append("other")
        if self.missing_bin is not None:
            labels[self.missing_bin].append("missing")
        return [" or ".join(parts) or "(empty)" for parts in labels]

    def to_doc(self) -> dict:
        return {"kind": self.kind, "n_bins": self.n_bins, "edges": list(self.edges),
                "categories": list(self.categories),
                "category_bins": list(self.category_bins), "other_bin": self.other_bin,
                "missing_bin": self.missing_bin, "numeric_map": list(self.numeric_map), "largest_bin": self.largest_bin}

    @classmethod
    def from_doc(cls, doc: dict) -> "ColumnBins":
        return cls(kind=doc["kind"], n_bins=int(doc["n_bins"]), edges=tuple(float(e) for e in doc["edges"]),
                   categories=tuple(str(c) for c in doc["categories"]),
                   category_bins=tuple(int(b) for b in doc["category_bins"]), other_bin=doc["other_bin"],
                   missing_bin=doc["missing_bin"], numeric_map=tuple(int(b) for b in doc["numeric_map"]),
                   largest_bin=int(doc["largest_bin"]))


def _num(v: float) -> str:
    return "inf" if v == np.inf else "-inf" if v == -np.inf else f"{v:.6g}"


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


def merge_small(values: np.ndarray, edges: np.ndarray, min_size: int) -> np.ndarray:
    """Drop edges until every non-missing bin holds at least ``min_size`` rows (or one bin is left)."""
    edges = np.asarray(edges, float)
    v = values[~np.isnan(values)]
    while len(edges):
        counts = np.bincount(np.searchsorted(edges, v, side="left"), minlength=len(edges) + 1)
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


def numeric_bins(values: np.ndarray, n_bins: int, method: str, min_size: int) -> ColumnBins:
    """Bins of one numeric column (NaN: missing)."""
    values = np.asarray(values, float)
    if np.isnan(values).all():
        return ColumnBins("numeric", 1, missing_bin=0)
    edges = merge_small(values, edges_for(values, n_bins, method), min_size)
    n_numeric = len(edges) + 1
    counts = np.bincount(np.searchsorted(edges, values[~np.isnan(values)], side="left"), minlength=n_numeric)
    largest = int(np.argmax(counts))
    n_missing = int(np.isnan(values).sum())
    if n_missing >= min_size and counts.sum() < min_size:
        return ColumnBins("numeric", 1, missing_bin=0)       # a few values among many missing: one bin
    if n_missing >= min_size:
        return ColumnBins("numeric", n_numeric + 1, edges=tuple(edges.tolist()), missing_bin=n_numeric,
                          largest_bin=largest)
    # no missing values, or too few for a bin of their own: they join the largest bin
    return ColumnBins("numeric", n_numeric, edges=tuple(edges.tolist()),
                      missing_bin=largest if n_missing else None, largest_bin=largest)


def categorical_bins(values, min_size: int) -> ColumnBins:
    """Bins of one categorical column (None: missing): one per category of ``min_size`` rows or
    more, in sorted order, then "other" for the rest, then missing; an "other" or missing part
    smaller than ``min_size`` joins the largest bin (with nothing else, rare categories and
    missing values share one bin)."""
    v = np.asarray(values, dtype=object)
    present = np.array([c is not None for c in v], dtype=bool)
    cats, counts = np.unique(v[present].astype(str), return_counts=True) if present.any() else ([], [])
    kept = [str(c) for c, n in zip(cats, counts) if n >= min_size]
    sizes = [int(n) for n in counts if n >= min_size]
    rare = int(sum(n for n in counts if n < min_size))
    n_missing = int((~present).sum())
    other = missing = None
    if rare >= min_size or (rare and not kept and n_missing < min_size):
        other = len(sizes)
        sizes.append(rare)
    if n_missing >= min_size or (n_missing and not sizes):
        missing = len(sizes)
        sizes.append(n_missing)
    largest = int(np.argmax(sizes)) if sizes else 0
    table = {c: k for k, c in enumerate(kept)}
    rare_to = other if other is not None else largest
    all_cats = [str(c) for c in cats]
    return ColumnBins("categorical", max(len(sizes), 1), categories=tuple(all_cats),
                      category_bins=tuple(table.get(c, rare_to) for c in all_cats), other_bin=other,
                      missing_bin=missing if missing is not None else (largest if n_missing else None),
                      largest_bin=largest)


def fit_column(column: pd.Series, n_bins: int, method: str, min_size: int) -> ColumnBins:
    """The bins of one column of a party's table, by its kind."""
    if is_categorical(column):
        return categorical_bins(category_values(column), min_size)
    return numeric_bins(column.to_numpy(dtype=float), n_bins, method, min_size)


def column_values(column: pd.Series, bins: ColumnBins):
    """A column's values as :meth:`ColumnBins.assign` takes them."""
    return category_values(column) if bins.kind == "categorical" else column.to_numpy(dtype=float)


def woe_iv(events: np.ndarray, totals: np.ndarray) -> tuple[np.ndarray, float]:
    """WOE per bin and the column's IV from per-bin event counts and row counts."""
    events, totals = np.asarray(events, float), np.asarray(totals, float)
    nonevents = totals - events
    e, ne = events.sum(), nonevents.sum()
    de, dne = (events + SMOOTHING) / (e + SMOOTHING), (nonevents + SMOOTHING) / (ne + SMOOTHING)
    woe = np.log(de / dne)
    iv = float(np.sum((events / max(e, 1.0) - nonevents / max(ne, 1.0)) * woe))
    return woe, iv


def monotone_groups(counts: np.ndarray, events: np.ndarray, ordered: int) -> np.ndarray:
    """New bin of every bin such that WOE is monotone over the first ``ordered`` bins (numeric
    bins in edge order; the rest — missing, categories — keep their own bins).

    The direction is the sign of the count-weighted correlation of bin position and event rate
    (ties: increasing). Adjacent bins that break it are merged, the first break first, until
    none is left: pool-adjacent-violators, which ends in the same pools whichever break is
    merged first and keeps the most bins a monotone sequence of pooled bins can have.
    """
    counts, events = np.asarray(counts, float), np.asarray(events, float)
    n = len(counts)
    if ordered < 3:
        return np.arange(n)
    c, e = counts[:ordered], events[:ordered]
    total_e, total_n = events.sum(), (counts - events).sum()
    pos = np.arange(ordered, dtype=float)
    rate = e / np.maximum(c, 1.0)
    w = c / c.sum()
    trend = float(np.sum(w * (pos - np.sum(w * pos)) * (rate - np.sum(w * rate))))
    sign = -1.0 if trend < 0 else 1.0
    pools = [[k] for k in range(ordered)]
    pc, pe = list(c), list(e)

    def woe(k):
        return np.log(((pe[k] + SMOOTHING) / (total_e + SMOOTHING))
                      / ((pc[k] - pe[k] + SMOOTHING) / (total_n + SMOOTHING)))

    k = 0
    while k < len(pools) - 1:
        if sign * (woe(k + 1) - woe(k)) < 0:            # a break: pool k and k+1, look back
            pools[k] += pools.pop(k + 1)
            pc[k] += pc.pop(k + 1)
            pe[k] += pe.pop(k + 1)
            k = max(k - 1, 0)
        else:
            k += 1
    out = np.empty(n, np.int64)
    for g, members in enumerate(pools):
        out[members] = g
    out[ordered:] = np.arange(len(pools), len(pools) + n - ordered)
    return out
