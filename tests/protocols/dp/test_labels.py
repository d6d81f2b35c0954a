"""Randomized response on labels, with and without a prior: the output probabilities are the
stated ones, so the release is ε-label-DP; inputs are checked."""
from __future__ import annotations

import math

import numpy as np
import pytest

from protocols.dp import keep_probability, randomized_response, rr_with_prior, uniform


def _close(observed, p, n):
    return abs(observed - p) <= 4.5 * math.sqrt(p * (1 - p) / n) + 1e-12


@pytest.mark.parametrize("k,epsilon", [(2, 0.5), (2, 3.0), (4, 1.0)])
def test_randomized_response_has_the_stated_probabilities(k, epsilon):
    n = 40_000
    for true in range(k):
        out = randomized_response(np.full(n, true), k, epsilon)
        keep = math.exp(epsilon) / (math.exp(epsilon) + k - 1)
        assert keep == pytest.approx(keep_probability(epsilon, k))
        for o in range(k):
            assert _close((out == o).mean(), keep if o == true else (1 - keep) / (k - 1), n), (true, o)


def test_the_privacy_loss_of_randomized_response_is_epsilon():
    """The largest ratio P(out = o | y) / P(out = o | y') over labels and outputs is e^ε."""
    k, epsilon, n = 3, 1.2, 60_000
    rates = np.array([[(randomized_response(np.full(n, y), k, epsilon) == o).mean() for o in range(k)]
                      for y in range(k)])
    assert np.log(rates.max(axis=0) / rates.min(axis=0)).max() == pytest.approx(epsilon, abs=0.08)


def test_rr_with_prior_follows_the_prior():
    n, epsilon = 40_000, 1.0
    confident = np.tile([0.9, 0.05, 0.03, 0.02], (n, 1))       # m = 1 maximizes the score: the top class only
    assert (rr_with_prior(np.full(n, 2), confident, epsilon) == 0).all()
    uniform_prior = np.full((n, 3), 1 / 3)                       # no information: plain 3-ary RR
    out = rr_with_prior(np.full(n, 1), uniform_prior, epsilon)
    keep = keep_probability(epsilon, 3)
    assert _close((out == 1).mean(), keep, n) and _close((out == 0).mean(), (1 - keep) / 2, n)
    two = np.tile([0.45, 0.45, 0.05, 0.05], (n, 1))             # the set of the two likely classes
    for true, expect in ((1, {1: keep_probability(epsilon, 2), 0: 1 - keep_probability(epsilon, 2)}),
                         (3, {0: 0.5, 1: 0.5})):                 # outside the set: uniform over it
        out = rr_with_prior(np.full(n, true), two, epsilon)
        assert set(np.unique(out)) <= set(expect)
        for o, p in expect.items():
            assert _close((out == o).mean(), p, n), (true, o)


def test_rr_with_prior_is_epsilon_label_dp_for_any_prior():
    rng = np.random.default_rng(0)                               # the test's prior, not a mechanism's draw
    epsilon, n, k = 0.8, 30_000, 4
    for _ in range(3):
        prior = rng.dirichlet(np.ones(k))
        rates = np.array([[(rr_with_prior(np.full(n, y), np.tile(prior, (n, 1)), epsilon) == o).mean()
                           for o in range(k)] for y in range(k)])
        used = rates.max(axis=0) > 0
        ratio = rates[:, used].max(axis=0) / np.maximum(rates[:, used].min(axis=0), 1e-12)
        assert np.log(ratio).max() <= epsilon + 0.1


def test_uniform_and_bad_input():
    u = uniform(10_000)
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.02
    with pytest.raises(ValueError, match="epsilon must be a positive finite number"):
        randomized_response([0, 1], 2, 0)
    with pytest.raises(ValueError, match="labels must be integers 0..1"):
        randomized_response([0, 2], 2, 1.0)
    with pytest.raises(ValueError, match="k >= 2 classes"):
        randomized_response([0], 1, 1.0)
    with pytest.raises(ValueError, match="2 labels for a prior of 3 rows"):
        rr_with_prior([0, 1], np.full((3, 2), 0.5), 1.0)
    with pytest.raises(ValueError, match="prior must be"):
        rr_with_prior([0], [[0.5, np.nan]], 1.0)
