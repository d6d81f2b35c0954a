"""A scorecard's plain computation: feature selection, points per bin, reason codes, and the
figures a credit team reads off a scorecard (KS, gains and lift, population stability).

Points follow the usual convention. The logistic model gives the log-odds of an event
(default) ``z = b + Σ_j w_j·(WOE_j − μ_j)/σ_j``; the score is ``offset − factor·z`` with
``factor = pdo / ln 2`` and ``offset = base_score − factor·ln(base_odds)``: the score is
``offset + factor·ln(odds)`` of the non-event:event odds, so a customer at ``base_score`` has
odds ``base_odds`` and every ``pdo`` points more double them.
Feature j's bin b is worth ``−factor·w_j·(WOE_jb − μ_j)/σ_j`` points, the base points are
``offset − factor·b``, and a customer's score is the base points plus their bins' points.
"""
from __future__ import annotations

import math

import numpy as np


def scaling(pdo: float, base_score: float, base_odds: float) -> tuple[float, float]:
    """(factor, offset) of the score ``offset − factor·z``."""
    factor = pdo / math.log(2)
    return factor, base_score - factor * math.log(base_odds)


def feature_points(coef: np.ndarray, mean: np.ndarray, scale: np.ndarray, woe: list[np.ndarray],
                   factor: float) -> list[np.ndarray]:
    """Points per bin of each feature, from its fitted coefficient on standardized WOE."""
    return [-factor * float(w) * (np.asarray(v, float) - m) / s for w, m, s, v in zip(coef, mean, scale, woe)]


def row_points(index: np.ndarray, points: list[np.ndarray]) -> np.ndarray:
    """Points of every row (rows × features) from its bin of each feature."""
    return np.column_stack([p[index[:, j]] for j, p in enumerate(points)]) if points else np.zeros((len(index), 0))


def lost_points(index: np.ndarray, points: list[np.ndarray]) -> np.ndarray:
    """Per row and feature, how many points the row's bin costs against the feature's best bin."""
    got = row_points(index, points)
    best = np.array([p.max() for p in points]) if points else np.zeros(0)
    return best[None, :] - got


def top_reasons(lost: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` features that cost each row most points: (feature index, points lost), −1 and 0
    where a row has fewer features or loses nothing."""
    n, m = lost.shape
    order = np.argsort(-lost, axis=1, kind="stable")[:, :k] if m else np.zeros((n, 0), np.int64)
    got = np.take_along_axis(lost, order, axis=1) if m else np.zeros((n, 0))
    idx = np.full((n, k), -1, np.int64)
    pts = np.zeros((n, k))
    idx[:, :order.shape[1]], pts[:, :order.shape[1]] = order, got
    idx[pts <= 1e-9] = -1
    pts[pts <= 1e-9] = 0.0
    return idx, pts


def select_by_iv(iv: dict[str, float], n_bins: dict[str, int], min_iv: float, top_k: int | None) -> list[str]:
    """The features kept by information value: IV ≥ ``min_iv``, above 0 and more than one bin (a
    single bin, or bins of one default rate, make a constant WOE), the ``top_k`` highest if set;
    highest IV first."""
    ranked = sorted((k for k in iv if iv[k] >= min_iv and iv[k] > 0 and n_bins[k] > 1), key=lambda k: (-iv[k], k))
    return ranked[:top_k] if top_k is not None else ranked


def drop_correlated(keys: list[str], corr: np.ndarray, iv: dict[str, float],
                    max_corr: float) -> tuple[list[str], list[dict]]:
    """Of every pair with |correlation| above ``max_corr``, drop the feature with the lower IV
    (pairs taken strongest first); returns the kept keys (in order) and what was dropped, why."""
    pairs = sorted(((abs(corr[i, j]), i, j) for i in range(len(keys)) for j in range(i + 1, len(keys))
                    if abs(corr[i, j]) > max_corr), reverse=True)
    dropped: dict[int, dict] = {}
    for r, i, j in pairs:
        if i in dropped or j in dropped:
            continue
        lose, keep = (i, j) if (iv[keys[i]], keys[j]) < (iv[keys[j]], keys[i]) else (j, i)
        dropped[lose] = {"feature": keys[lose], "correlated_with": keys[keep],
                         "correlation": round(float(corr[i, j]), 6)}
    return [k for n, k in enumerate(keys) if n not in dropped], [dropped[n] for n in sorted(dropped)]


# -- figures of a scorecard on some rows -------------------------------------------------------------

def ks(y: np.ndarray, z: np.ndarray) -> tuple[float, dict]:
    """Kolmogorov–Smirnov statistic of event vs non-event scores, and the curve (101 points of
    the population share, ranked riskiest first) for the plot."""
    y, z = np.asarray(y, int), np.asarray(z, float)
    order = np.argsort(-z, kind="stable")
    events = np.cumsum(y[order]) / max(y.sum(), 1)
    nonevents = np.cumsum(1 - y[order]) / max((1 - y).sum(), 1)
    gap = events - nonevents
    at = np.linspace(0, len(z) - 1, 101).round().astype(int)
    curve = {"population": [round(float((k + 1) / len(z)), 4) for k in at],
             "events": [round(float(events[k]), 4) for k in at],
             "nonevents": [round(float(nonevents[k]), 4) for k in at]}
    return float(gap.max()), curve


def gains(y: np.ndarray, z: np.ndarray, bands: int = 10) -> list[dict]:
    """Gains and lift by band of the population ranked riskiest first (deciles by default)."""
    y, z = np.asarray(y, int), np.asarray(z, float)
    order = np.argsort(-z, kind="stable")
    rate, total = y.mean() if len(y) else 0.0, max(int(y.sum()), 1)
    out, cum = [], 0
    for k, part in enumerate(np.array_split(order, bands)):
        if not len(part):
            continue
        ev = int(y[part].sum())
        cum += ev
        out.append({"band": k + 1, "rows": len(part), "events": ev, "event_rate": round(ev / len(part), 6),
                    "cumulative_events_captured": round(cum / total, 6),
                    "lift": round(float(ev / len(part) / rate), 6) if rate else None})
    return out


def score_bands(scores: np.ndarray, bands: int = 10) -> np.ndarray:
    """Inner edges of ``bands`` equal-population bands of the training scores."""
    return np.unique(np.quantile(np.asarray(scores, float), np.linspace(0, 1, bands + 1)[1:-1]))


def band_shares(scores: np.ndarray, edges: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(np.asarray(edges, float), np.asarray(scores, float), side="right")
    return np.bincount(idx, minlength=len(edges) + 1) / max(len(scores), 1)


def population_stability_index(expected: np.ndarray, actual: np.ndarray, floor: float = 1e-4) -> float:
    """``Σ (a − e)·ln(a / e)`` over score bands (shares floored at 10⁻⁴ so an empty band stays
    finite). Rule of thumb: < 0.1 stable, 0.1–0.25 some shift, > 0.25 a shifted population."""
    e, a = np.maximum(np.asarray(expected, float), floor), np.maximum(np.asarray(actual, float), floor)
    return float(np.sum((a - e) * np.log(a / e)))
