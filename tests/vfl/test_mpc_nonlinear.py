"""Sigmoids, reciprocal and inverse square root on shares: each recipe's result matches its
plaintext reference to fixed-point rounding, and σ itself to the recipe's documented error."""
from __future__ import annotations

import numpy as np
import pytest

from parties.transport.inprocess import InProcessNetwork
from protocols.mpc import approx
from protocols.mpc.ring import decode, encode, share
from protocols.mpc.triples import TripleShape, TrustedDealer
from vfl.mpc import MpcSession

# documented in docs/mpc.md: (method, interval half-width, max |recipe − σ| there, rounded up)
DOCUMENTED = [("t1", 1, 0.019), ("t3", 1, 0.0019), ("t5", 1, 0.0002), ("t3", 2, 0.048), ("t5", 2, 0.020),
              ("cheb7", 8, 0.030), ("cheb9", 8, 0.014), ("cheb15", 1, 0.00034), ("cheb15", 2, 0.0012),
              ("cheb15", 8, 0.0014)]


@pytest.mark.parametrize("method, half, bound", DOCUMENTED)
def test_documented_recipe_errors_hold(method, half, bound):
    assert approx.sigmoid_error(method, -half, half) <= bound


def _run(names, values: dict, fn, dealt_count: int, size: int):
    dealer = TrustedDealer(len(names))
    dealt = [dealer.deal(TripleShape("elementwise", size)) for _ in range(dealt_count)]
    shared = {k: share(encode(v), len(names)) for k, v in values.items()}

    def role(i):
        def run(t):
            s = MpcSession(t, names, workers=1)
            for d in dealt:
                s.triples.add(d[i])
            out = fn(s, {k: v[i] for k, v in shared.items()})
            return {k: s.reveal(v, [names[0]], tag=f"reveal/{k}") for k, v in out.items()}, s.triples.budget()
        return run
    return InProcessNetwork(names, timeout=60).run({n: role(i) for i, n in enumerate(names)})[names[0]]


@pytest.mark.parametrize("names", [["a", "b"], ["a", "b", "c"]])
def test_sigmoids_on_shares(names):
    x = np.linspace(-7.9, 7.9, 64)
    near = np.linspace(-1.9, 1.9, 64)
    methods = list(approx.SIGMOIDS)
    out, budget = _run(names, {"x": x, "near": near},
                       lambda s, v: {m: s.sigmoid(v["near" if m.startswith("t") else "x"], m, tag=m) for m in methods},
                       dealt_count=sum(approx.multiplications(m) for m in methods), size=64)
    for m in methods:
        arg = near if m.startswith("t") else x
        got = decode(out[m])
        # fixed-point rounding only (coefficients and truncations at f = 16; docs/mpc.md)
        assert np.abs(got - approx.sigmoid_plain(arg, m)).max() < 5e-4, m
        true = 1 / (1 + np.exp(-arg))
        assert np.abs(got - true).max() < approx.sigmoid_error(m, arg[0], arg[-1]) + 5e-4, m
    assert budget["left"] == 0          # exactly multiplications(m) Beaver products per recipe


@pytest.mark.parametrize("names", [["a", "b"], ["a", "b", "c"]])
def test_reciprocal_and_inverse_square_root(names):
    x = np.linspace(0.5, 50.0, 40)
    steps_r = approx.newton_steps("reciprocal", 0.5, 50.0, 16)
    steps_i = approx.newton_steps("inv_sqrt", 0.5, 50.0, 16)
    out, _ = _run(names, {"x": x},
                  lambda s, v: {"r": s.reciprocal(v["x"], 0.5, 50.0, tag="r"),
                                "i": s.inv_sqrt(v["x"], 0.5, 50.0, tag="i")},
                  dealt_count=2 * (steps_r - 1) + 3 * (steps_i - 1), size=40)
    ulp = 2.0 ** -16
    assert np.abs(decode(out["r"]) - 1 / x).max() < 8 * steps_r * ulp
    assert np.abs(decode(out["i"]) - 1 / np.sqrt(x)).max() < 8 * steps_i * ulp


def test_a_sigmoid_on_dealer_free_triples():
    names = ["a", "b"]
    x = np.linspace(-1, 1, 12)
    xs = share(encode(x), 2)

    def role(i):
        def run(t):
            s = MpcSession(t, names, key_bits=1024, min_key_bits=1024, workers=1)
            s.generate_triples(TripleShape("elementwise", 12), approx.multiplications("t3"))
            return s.reveal(s.sigmoid(xs[i], "t3", tag="s"), names, tag="r")
        return run
    out = InProcessNetwork(names, timeout=60).run({n: role(i) for i, n in enumerate(names)})
    assert np.abs(decode(out["b"]) - approx.sigmoid_plain(x, "t3")).max() < 2e-4


def test_newton_refuses_a_range_it_cannot_start_from():
    with pytest.raises(ValueError, match="0 < lo <= hi"):
        approx.newton_steps("reciprocal", 0, 1, 16)
    with pytest.raises(ValueError, match="too wide"):
        approx.newton_steps("inv_sqrt", 1e-30, 1e30, 16)
