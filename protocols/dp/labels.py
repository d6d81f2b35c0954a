"""Randomized response on class labels: each row's label is replaced by a random one with a
probability that makes the release ε-label-DP (any two labels of a row are at most e^ε more or
less likely to give the same output). Everything trained on the released labels afterwards is
post-processing and spends no more ε.

- k-ary randomized response (Warner 1965; k classes): the true label with probability
  e^ε / (e^ε + k − 1), each other label with 1 / (e^ε + k − 1).
- RR with a prior (Ghazi, Golowich, Kumar, Manurangsi, Zhang, "Deep Learning with Label
  Differential Privacy", 2021): per row, a prior over the classes that does not depend on that
  row's label (a model of the row's features, trained on other rows' randomized labels, say).
  The row's k classes are cut to the m most likely under the prior, m chosen to maximize
  (prior mass of the m) × e^ε / (e^ε + m − 1); randomized response runs over those m, and a
  label outside them is answered by a uniform draw among them. Still ε-label-DP, and far less
  noisy when the prior is good.

Draws: 53-bit uniforms from :func:`secrets.token_bytes`, so each probability is met to within
2^-53 (and the privacy loss to within a relative 2^-50 or so).
"""
from __future__ import annotations

import math
import secrets

import numpy as np


def uniform(n: int) -> np.ndarray:
    """``n`` floats uniform on [0, 1), 53 random bits each, from the operating system."""
    words = np.frombuffer(secrets.token_bytes(8 * n), dtype=np.uint64)
    return (words >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def keep_probability(epsilon: float, k) -> np.ndarray | float:
    """e^ε / (e^ε + k − 1): the chance randomized response over ``k`` classes keeps a label."""
    _check_epsilon(epsilon)
    return 1.0 / (1.0 + (np.asarray(k, dtype=np.float64) - 1.0) * math.exp(-epsilon))


def randomized_response(labels, k: int, epsilon: float) -> np.ndarray:
    """Each label (an integer 0..k−1) kept with :func:`keep_probability`, otherwise replaced by
    one of the k − 1 others, uniformly."""
    y = _labels(labels, k)
    keep = uniform(len(y)) < keep_probability(epsilon, k)
    other = np.minimum(np.floor(uniform(len(y)) * (k - 1)).astype(np.int64), k - 2)
    other += other >= y                           # skip the true label: uniform over the others
    return np.where(keep, y, other)


def rr_with_prior(labels, prior, epsilon: float) -> np.ndarray:
    """Randomized response restricted, row by row, to the classes ``prior`` (n × k, rows
    summing to 1, independent of the row's own label) deems most likely."""
    p = np.asarray(prior, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2 or not np.isfinite(p).all() or (p < 0).any():
        raise ValueError("prior must be an n × k array (k >= 2) of finite non-negative numbers")
    n, k = p.shape
    y = _labels(labels, k)
    if len(y) != n:
        raise ValueError(f"{len(y)} labels for a prior of {n} rows")
    order = np.argsort(-p, axis=1, kind="stable")                  # classes by decreasing prior
    mass = np.cumsum(np.take_along_axis(p, order, axis=1), axis=1)
    size = np.arange(1, k + 1)
    keep_m = keep_probability(epsilon, size)                       # e^ε / (e^ε + m − 1), m = 1..k
    m = np.argmax(mass * keep_m, axis=1) + 1                       # the best set size per row
    rank = np.argmax(order == y[:, None], axis=1)                  # the true label's place in the order
    inside = rank < m
    keep = inside & (uniform(n) < keep_m[m - 1])
    u = uniform(n)
    pick_other = np.minimum(np.floor(u * np.maximum(m - 1, 1)).astype(np.int64), np.maximum(m - 2, 0))
    pick_other += pick_other >= rank                               # one of the m − 1 others of the set
    pick_any = np.minimum(np.floor(u * m).astype(np.int64), m - 1)  # any of the m
    place = np.where(inside, pick_other, pick_any)
    out = np.take_along_axis(order, place[:, None], axis=1)[:, 0]
    return np.where(keep, y, out)


def _labels(labels, k: int) -> np.ndarray:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ValueError(f"randomized response needs k >= 2 classes, got {k!r}")
    y = np.asarray(labels)
    if y.ndim != 1 or (len(y) and (not np.all(np.mod(y, 1) == 0) or y.min() < 0 or y.max() >= k)):
        raise ValueError(f"labels must be integers 0..{k - 1} in one dimension")
    return y.astype(np.int64)


def _check_epsilon(epsilon) -> None:
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0 < epsilon < math.inf:
        raise ValueError(f"epsilon must be a positive finite number, got {epsilon!r}")
