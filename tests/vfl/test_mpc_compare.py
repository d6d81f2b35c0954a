"""Secure comparison on shares (vfl/mpc.py): ANDs of bits over OT, AND triples made by the
parties, the sign of a shared value by a parallel-prefix adder, bits back to the ring, ReLU and
clipping; 2 and 3 parties, edge values included."""
from __future__ import annotations

import numpy as np
import pytest

from parties.transport.inprocess import InProcessNetwork
from protocols.mpc import ot
from protocols.mpc.errors import TripleBudgetError
from protocols.mpc.ring import decode, encode, share
from vfl.mpc import MpcSession

NAMES = {2: ["bank", "insurer"], 3: ["bank", "insurer", "telco"]}


def _run(names, fn):
    def role(i):
        def run(t):
            return fn(MpcSession(t, names, key_bits=1024, min_key_bits=1024, workers=1), i)
        return run
    return InProcessNetwork(names, timeout=120).run({p: role(i) for i, p in enumerate(names)})


def test_ands_of_two_parties_bits_over_ot():
    sender, receiver = ot.OleSender("r"), ot.OleReceiver("s")
    receiver.accept(sender.reply(receiver.offer()))
    rng = np.random.default_rng(0)
    for m in (1, 9, 4096):
        x, y = rng.integers(0, 2, m, dtype=np.uint8), rng.integers(0, 2, m, dtype=np.uint8)
        mine, corrections = sender.and_bits(x, receiver.start_bits(y))
        assert np.array_equal(mine ^ receiver.finish_bits(corrections), x & y)
    receiver.start_bits(np.ones(9, np.uint8))
    with pytest.raises(ot.OtError, match="AND corrections of uint8 \\(1,\\), not uint8 \\(2,\\)"):
        receiver.finish_bits(np.zeros(1, np.uint8))
    with pytest.raises(ValueError, match="bits \\(0 or 1\\)"):
        ot.OleReceiver().start_bits(np.array([0, 2], np.uint8))


@pytest.mark.parametrize("parties", [2, 3])
def test_and_triples_and_shared_ands(parties):
    names = NAMES[parties]
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 2, 500, dtype=np.uint8), rng.integers(0, 2, 500, dtype=np.uint8)
    xs = [x] + [np.zeros(500, np.uint8)] * (parties - 1)            # x at party 0, y at the last party
    ys = [np.zeros(500, np.uint8)] * (parties - 1) + [y]

    def fn(s, i):
        s.generate_bit_triples(500)
        triple = [t.copy() for t in s._bit_triples]
        z = s.and_shared(xs[i], ys[i], tag="and")
        with pytest.raises(TripleBudgetError):
            s.and_shared(xs[i], ys[i], tag="again")                  # each triple once
        return triple, z

    out = _run(names, fn)
    u, v, w = (np.bitwise_xor.reduce([out[p][0][k] for p in names]) for k in range(3))
    assert np.array_equal(w, u & v) and 150 < u.sum() < 350
    assert np.array_equal(np.bitwise_xor.reduce([out[p][1] for p in names]), x & y)


EDGES = [0.0, -1 / 65536, 1 / 65536, 8.0, -8.0, 1000.0, -1000.0, 2.0 ** 40, -(2.0 ** 40)]


@pytest.mark.parametrize("parties", [2, 3])
def test_the_sign_of_shared_values_and_relu_and_clip(parties):
    names = NAMES[parties]
    v = np.concatenate([np.random.default_rng(2).normal(scale=20, size=300), EDGES])
    shares = share(encode(v), parties)

    def fn(s, i):
        neg = s.negative(shares[i], tag="neg")
        relu = s.relu(shares[i], tag="relu")
        clipped = s.clip(shares[i], -8.0, 8.0, tag="clip")
        return [s.reveal(x, names, tag=f"r{k}") for k, x in enumerate((neg, relu, clipped))]

    out = _run(names, fn)[names[0]]
    assert np.array_equal(out[0].view(np.int64), (v < 0).astype(np.int64))
    assert np.abs(decode(out[1]) - np.maximum(v, 0)).max() < 1e-4
    assert np.abs(decode(out[2]) - np.clip(v, -8, 8)).max() < 1e-4


def test_bits_back_to_the_ring_from_every_party():
    names = NAMES[3]
    rng = np.random.default_rng(3)
    parts = [rng.integers(0, 2, 200, dtype=np.uint8) for _ in names]

    def fn(s, i):
        return s.reveal(s.bit_to_ring(parts[i], tag="b2a"), names, tag="r")

    out = _run(names, fn)
    assert np.array_equal(out["bank"], np.bitwise_xor.reduce(parts).astype(np.uint64))


def test_clip_needs_an_interval():
    def fn(s, i):
        with pytest.raises(ValueError, match="lo < hi"):
            s.clip(np.zeros(2, np.uint64), 1.0, 1.0, tag="c")
        return True
    assert all(_run(NAMES[2], fn).values())
