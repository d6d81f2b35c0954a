"""Exact integer noise: the discrete Laplace and Gaussian samplers match their distributions,
and every draw comes from the operating system, not from a seeded generator."""
from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest

from protocols.dp import bernoulli_exp, discrete_gaussian, discrete_laplace


@pytest.fixture(autouse=True)
def no_seeded_generators(monkeypatch):
    """A draw from Python's or numpy's generators would fail the test."""
    def refuse(*_, **__):
        raise AssertionError("a seeded generator was used")
    for name in ("random", "randrange", "randint", "getrandbits", "choice"):
        monkeypatch.setattr(random, name, refuse)
    monkeypatch.setattr(np.random, "default_rng", refuse)
    monkeypatch.setattr(np.random, "random", refuse)


@pytest.mark.parametrize("gamma", [Fraction(0), Fraction(1, 3), Fraction(1), Fraction(5, 2)])
def test_bernoulli_exp_has_the_stated_rate(gamma):
    n = 20_000
    hits = sum(bernoulli_exp(gamma) for _ in range(n))
    p = math.exp(-gamma)
    assert abs(hits / n - p) <= 4 * math.sqrt(p * (1 - p) / n) + 1e-9


def test_discrete_laplace_matches_its_pmf():
    t, n = Fraction(3, 2), 20_000
    draws = np.array([discrete_laplace(t) for _ in range(n)])
    q = math.exp(-1 / t)
    for y in range(-3, 4):                       # P(y) = (1 − q) / (1 + q) · q^|y|
        p = (1 - q) / (1 + q) * q ** abs(y)
        assert abs((draws == y).mean() - p) <= 4 * math.sqrt(p * (1 - p) / n), y
    assert abs(draws.var() - 2 * q / (1 - q) ** 2) < 0.1 * 2 * q / (1 - q) ** 2


@pytest.mark.parametrize("sigma", [0.7, 3, 12.5])
def test_discrete_gaussian_matches_its_pmf(sigma):
    n = 8_000
    draws = np.array([discrete_gaussian(sigma) for _ in range(n)])
    support = np.arange(-int(12 * sigma) - 2, int(12 * sigma) + 3)
    weights = np.exp(-support.astype(float) ** 2 / (2 * sigma ** 2))
    pmf = weights / weights.sum()
    var = float((pmf * support ** 2).sum())
    assert abs(draws.mean()) < 5 * math.sqrt(var / n)
    assert abs(draws.var() / var - 1) < 0.08
    p0 = pmf[support == 0][0]
    assert abs((draws == 0).mean() - p0) <= 4 * math.sqrt(p0 * (1 - p0) / n)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        bernoulli_exp(Fraction(-1))
    with pytest.raises(ValueError, match="scale must be > 0"):
        discrete_laplace(0)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        discrete_gaussian(0.0)
