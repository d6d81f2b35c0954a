"""Split finding on (G, H) sums: the XGBoost gain with ``reg_lambda``, ``gamma``,
``min_child_weight`` and a learned default direction for missing values.

Sums arrive as exact fixed-point integers (``frac_bits`` fractional bits), decrypted from a
passive's histogram or summed in the clear by the active over its own columns; both go through
the same functions, so the same sums give bit-identical gains.

Entries of one (node, feature): entry 0 is the sum over the node's non-missing rows ("every
non-missing row goes left"); entries 1.. are the left-child sums of the split candidates.
The missing rows' sums are the node's total minus entry 0.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from vfl.secureboost.binning import MISSING


@dataclasses.dataclass(frozen=True)
class TreeParams:
    max_depth: int
    min_child_weight: float
    reg_lambda: float
    gamma: float
    frac_bits: int


@dataclasses.dataclass(frozen=True)
class Best:
    gain: float
    entry: int
    default_left: bool


def candidate_bins(codes: np.ndarray, n_bins: int) -> np.ndarray:
    """Bins b whose rule "bin <= b" splits these rows' non-missing values into two non-empty
    parts: the non-empty bins except the last. Empty bins would repeat a partition."""
    present = np.flatnonzero(np.bincount(codes[codes != MISSING], minlength=n_bins))
    return present[:-1]


def entry_gains(gl: np.ndarray, hl: np.ndarray, g: np.ndarray, h: np.ndarray, p: TreeParams) -> np.ndarray:
    """Gains of the splits whose left child has integer sums (gl, hl); -inf where invalid.

    ``gl, hl``: (entries, K) for K outputs; ``g, h``: the node's (K,) totals. The gain of a
    multi-output split is the sum of the per-output XGBoost gains (``gamma`` once); a child is
    valid when every output's hessian sum is positive on both sides and the hessians summed
    over outputs reach ``min_child_weight`` on both sides. K = 1 is the ordinary XGBoost rule.
    """
    s = 2.0 ** -p.frac_bits
    gl_f, hl_f = gl.astype(np.float64) * s, hl.astype(np.float64) * s
    g_f, h_f = g.astype(np.float64) * s, h.astype(np.float64) * s
    gr_f, hr_f = g_f - gl_f, h_f - hl_f
    lam = p.reg_lambda
    terms = gl_f * gl_f / (hl_f + lam) + gr_f * gr_f / (hr_f + lam) - g_f * g_f / (h_f + lam)
    gain = 0.5 * terms.sum(axis=1) - p.gamma
    mcw = p.min_child_weight
    valid = ((hl > 0) & (hl < h)).all(axis=1) & (hl_f.sum(axis=1) >= mcw) & (hr_f.sum(axis=1) >= mcw)
    return np.where(valid, gain, -np.inf)


def best_entry(gl: np.ndarray, hl: np.ndarray, g: np.ndarray, h: np.ndarray, p: TreeParams) -> Best | None:
    """The best (entry, default direction) of one (node, feature), or None if nothing is valid.

    Missing rows go right first, then left; ties keep the earlier option (strictly greater wins).
    """
    gl, hl = _2d(gl), _2d(hl)
    g, h = np.asarray(g, np.int64).reshape(-1), np.asarray(h, np.int64).reshape(-1)
    g_miss, h_miss = g - gl[0], h - hl[0]
    right = entry_gains(gl, hl, g, h, p)
    left = entry_gains(gl + g_miss, hl + h_miss, g, h, p)
    both = np.column_stack([right, left]).reshape(-1)      # entry 0 right, entry 0 left, entry 1 right…
    i = int(np.argmax(both))
    if not both[i] > 0.0:
        return None
    return Best(gain=float(both[i]), entry=i // 2, default_left=bool(i % 2))


def _2d(sums) -> np.ndarray:
    a = np.asarray(sums, dtype=np.int64)
    return a.reshape(len(a), -1)


def leaf_value(g: np.ndarray, h: np.ndarray, p: TreeParams, learning_rate: float) -> np.ndarray:
    """Leaf weights per output, −lr·G/(H + λ); 0 for a leaf without weight (no sampled rows, λ = 0)."""
    s = 2.0 ** -p.frac_bits
    g_f, denom = np.asarray(g, np.float64) * s, np.asarray(h, np.float64) * s + p.reg_lambda
    safe = np.where(denom > 0, denom, 1.0)
    return np.where(denom > 0, -learning_rate * g_f / safe, 0.0)


def child_ids(node: int) -> tuple[int, int]:
    return 2 * node + 1, 2 * node + 2


def own_entries(codes: np.ndarray, gi: np.ndarray, hi: np.ndarray, n_bins: list[int], features):
    """Plaintext entries for the active's own columns at one node: per feature in ``features``
    (f, gl, hl) with (entries, K) sums; entry j >= 1 is ``candidate_bins``'s j-th bin (entry 0:
    all non-missing). ``codes, gi, hi``: the node's rows that carry gradients this tree."""
    out = []
    # float64 bin sums are exact while every partial sum stays below 2^53 (integer inputs)
    exact = len(gi) * max(int(np.abs(gi).max(initial=0)), int(hi.max(initial=0))) < 2 ** 53
    for f in features:
        nb = n_bins[f]
        col = codes[:, f]
        ok = col != MISSING
        gsum, hsum = _bin_sums(col[ok], gi[ok], nb, exact), _bin_sums(col[ok], hi[ok], nb, exact)
        bins = candidate_bins(col, nb)
        gcum, hcum = np.cumsum(gsum, axis=0), np.cumsum(hsum, axis=0)
        out.append((f, np.concatenate([gcum[-1:], gcum[bins]]), np.concatenate([hcum[-1:], hcum[bins]])))
    return out


def _bin_sums(codes: np.ndarray, values: np.ndarray, n_bins: int, exact: bool) -> np.ndarray:
    """(n_bins, K) int64 sums of ``values`` rows per bin code."""
    if exact:
        sums = [np.bincount(codes, weights=values[:, j], minlength=n_bins) for j in range(values.shape[1])]
        return np.rint(np.column_stack(sums)).astype(np.int64)
    out = np.zeros((n_bins, values.shape[1]), np.int64)
    np.add.at(out, codes, values)
    return out
