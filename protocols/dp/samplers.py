"""Exact samplers of integer noise (Canonne, Kamath and Steinke, "The Discrete Gaussian for
Differential Privacy", 2020, algorithms 1–3), in rational arithmetic.

Floating-point Laplace or Gaussian noise leaks through the set of values a float can take
(Mironov 2012). These samplers draw integers whose probabilities are exactly the stated ones:
every step is a uniform integer from :func:`secrets.randbelow` and a comparison of rationals.
Scale the values to integers first (fixed point), add the noise, scale back.

They cost microseconds to tens of microseconds a sample in Python: fine for per-row or
per-statistic noise, not for millions of values a second.
"""
from __future__ import annotations

import math
import secrets
from fractions import Fraction

import numpy as np


def _bernoulli(p: Fraction) -> bool:
    """True with probability exactly ``p`` (0 <= p <= 1)."""
    return secrets.randbelow(p.denominator) < p.numerator


def bernoulli_exp(gamma: Fraction) -> bool:
    """True with probability exactly ``exp(−gamma)``, ``gamma`` >= 0 rational."""
    gamma = Fraction(gamma)
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    whole = math.floor(gamma)
    for _ in range(whole):                       # exp(−γ) = exp(−1)^⌊γ⌋ · exp(−(γ − ⌊γ⌋))
        if not _bernoulli_exp_at_most_one(Fraction(1)):
            return False
    return _bernoulli_exp_at_most_one(gamma - whole)


def _bernoulli_exp_at_most_one(gamma: Fraction) -> bool:
    """exp(−γ) for 0 <= γ <= 1: the parity of the first k with Bernoulli(γ/k) false."""
    k = 1
    while _bernoulli(gamma / k):
        k += 1
    return k % 2 == 1


def discrete_laplace(scale) -> int:
    """An integer y with probability proportional to ``exp(−|y| / scale)`` (``scale`` > 0,
    rational: a float is taken at its exact value)."""
    t = Fraction(scale)
    if t <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    s, t = t.denominator, t.numerator            # scale = t / s
    while True:
        u = secrets.randbelow(t)
        if not bernoulli_exp(Fraction(u, t)):
            continue
        v = 0
        while bernoulli_exp(Fraction(1)):
            v += 1
        y = (u + t * v) // s
        negative = secrets.randbelow(2) == 1
        if negative and y == 0:                  # zero would otherwise be drawn twice as often
            continue
        return -y if negative else y


def discrete_gaussian(sigma) -> int:
    """An integer y with probability proportional to ``exp(−y² / (2σ²))`` (σ > 0)."""
    sigma2 = Fraction(sigma) ** 2
    if sigma2 <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    t = math.floor(Fraction(sigma)) + 1
    while True:
        y = discrete_laplace(t)
        if bernoulli_exp((abs(y) - sigma2 / t) ** 2 / (2 * sigma2)):
            return y


def discrete_gaussians(sigma, size: int) -> np.ndarray:
    """``size`` independent draws of :func:`discrete_gaussian` (int64)."""
    sigma = Fraction(sigma)
    return np.fromiter((discrete_gaussian(sigma) for _ in range(int(size))), dtype=np.int64, count=int(size))
