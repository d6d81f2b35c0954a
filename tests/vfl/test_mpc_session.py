"""The secret-sharing session over the in-process transport: dealer-free triples, Beaver
products, truncation and reveals among 2 and 3 parties; what the hub sees of relayed shares."""
from __future__ import annotations

import numpy as np
import pytest

from parties.transport.inprocess import InProcessNetwork
from protocols.mpc.messages import CrossOffer, CrossReply, OtBase, OtCorrect, OtExtend, Shares
from protocols.mpc.ring import decode, encode, random_ring, reconstruct, share
from protocols.mpc.triples import TripleShape
from vfl.errors import ProtocolError
from vfl.mpc import MpcSession


def _session(t, names, source="ot"):
    return MpcSession(t, names, key_bits=1024, min_key_bits=1024, workers=1, triples=source)


@pytest.mark.parametrize("source", ["ot", "paillier"])
@pytest.mark.parametrize("names", [["bank", "insurer"], ["bank", "insurer", "telco"]])
def test_dealer_free_triples_and_fixed_point_products(names, source):
    n = len(names)
    rng = np.random.default_rng(7)
    X, Y, v, w = rng.normal(size=(6, 5)), rng.normal(size=(5, 2)), rng.normal(size=30), rng.normal(size=30)
    xs, ys, vs, ws = (share(encode(a), n) for a in (X, Y, v, w))
    shapes = [TripleShape("matrix", 6, 5, 2), TripleShape("elementwise", 30)]

    def role(i):
        def run(t):
            s = _session(t, names, source)
            for shape in shapes:
                s.generate_triples(shape, 2)
            triples = [s.triples.take(shape) for shape in shapes]          # checked below; the others used
            z = s.truncate(s.multiply(xs[i], ys[i], tag="xy", matrix=True), 16, tag="t1")
            u = s.truncate(s.multiply(vs[i], ws[i], tag="vw"), 16, tag="t2")
            return (s.reveal(z, [names[-1]], tag="r1"), s.reveal(u, names, tag="r2"),
                    [(tr.a, tr.b, tr.c) for tr in triples], s.triples.budget())
        return run

    out = InProcessNetwork(names, timeout=60).run({p: role(i) for i, p in enumerate(names)})
    for k, shape in enumerate(shapes):                    # every triple: a·b = c over all parties' shares
        a, b, c = (reconstruct([out[p][2][k][j] for p in names]) for j in range(3))
        assert np.array_equal(c, shape.product(a, b))
    assert np.abs(decode(out[names[-1]][0]) - X @ Y).max() < 1e-3
    assert all(out[p][0] is None for p in names[:-1])     # revealed to the last party only
    for p in names:
        assert np.abs(decode(out[p][1]) - v * w).max() < 1e-3
        assert out[p][3] == {"made": 4, "used": 4, "left": 0, "multiplications_made": 2 * (60 + 30)}


def test_products_over_ot_between_two_passives_cross_the_hub_unreadable():
    """An OLE between two passives: the hub relays the base-OT points, U and the corrections,
    learns no share, and U is not the receiver's bits in the clear."""
    names = ["hub", "p1", "p2"]
    x, y = random_ring(300), random_ring(300)
    net = InProcessNetwork(names, timeout=60, record=True)

    def role(name):
        def run(t):
            s = _session(t, names)
            first = s.ole("p1", "p2", tag="xy", length=300, x=x if name == "p1" else None,
                          y=y if name == "p2" else None, chunk=128)
            again = s.ole("p1", "p2", tag="xy2", length=300, x=x if name == "p1" else None,
                          y=y if name == "p2" else None)
            return first, again, s.ot_multiplications
        return run

    out = net.run({p: role(p) for p in names})
    assert out["hub"] == (None, None, 0)
    for k in (0, 1):
        assert np.array_equal(out["p1"][k] + out["p2"][k], x * y)
    assert not np.array_equal(out["p1"][0], out["p1"][1])          # a fresh stream for the second product
    seen = [m for _, m in net["hub"].received]
    assert sum(isinstance(m, OtBase) for m in seen) == 2              # base OTs once for the pair
    assert sum(isinstance(m, OtExtend) for m in seen) == 3 + 1        # 300 values in chunks of 128, then one
    bits = np.packbits(((y[:128, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8))
    first_u = next(m.matrix for m in seen if isinstance(m, OtExtend))
    assert not any(np.array_equal(row[:len(bits)], bits) for row in first_u)


def test_ot_refuses_values_of_another_length_than_declared():
    names = ["bank", "insurer"]

    def role(name):
        def run(t):
            s = _session(t, names)
            return s.ole("bank", "insurer", tag="n", length=4, x=random_ring(3) if name == "bank" else None,
                         y=random_ring(4) if name == "insurer" else None)
        return run
    with pytest.raises(Exception, match="not the declared \\(4,\\)"):
        InProcessNetwork(names, timeout=10).run({p: role(p) for p in names})


def test_the_hub_relays_ciphertexts_and_masked_shares_only():
    """Between two passives every message crosses the hub: it must see neither share of a value
    revealed to them (shares are masked with their pair key) nor a plaintext of the offers."""
    names = ["hub", "p1", "p2"]
    secret = encode(np.arange(12, dtype=float).reshape(3, 4))
    s1, s2 = share(secret, 2)
    net = InProcessNetwork(names, timeout=60, record=True)

    def role(name):
        def run(t):
            s = _session(t, names)
            mine = {"p1": s1, "p2": s2}.get(name)
            got = s.reveal(mine, ["p1", "p2"], holders=["p1", "p2"], tag="block", shape=(3, 4))
            x = np.arange(8, dtype=np.uint64).reshape(4, 2) if name == "p1" else None
            y = np.ones((1, 4), dtype=np.uint64) if name == "p2" else None
            crossed = s.cross("p1", ["p2"], tag="c", x=x, y=y, rows=4, cols=2, outputs={"p2": 1})
            return got, crossed
        return run

    out = net.run({p: role(p) for p in names})
    assert np.array_equal(out["p1"][0], secret) and np.array_equal(out["p2"][0], secret)
    assert out["hub"] == (None, None)
    seen = [m for _, m in net["hub"].received]
    relayed = [m.values for m in seen if isinstance(m, Shares)]
    assert len(relayed) == 2
    for values in relayed:
        assert not np.array_equal(values, s1) and not np.array_equal(values, s2)
        assert not np.array_equal(relayed[0] + relayed[1], secret)
    assert any(isinstance(m, CrossOffer) for m in seen) and any(isinstance(m, CrossReply) for m in seen)
    assert np.array_equal(out["p1"][1]["p2"] + out["p2"][1], np.ones((1, 4), dtype=np.uint64) @
                          np.arange(8, dtype=np.uint64).reshape(4, 2))


def test_an_opening_under_the_wrong_tag_is_refused():
    names = ["a", "b"]

    def role(name):
        def run(t):
            s = _session(t, names)
            return s.open(np.zeros(3, dtype=np.uint64), tag="e" if name == "a" else "f")
        return run

    with pytest.raises(ProtocolError, match="expected values of 'e' from b, received values of 'f'"):
        InProcessNetwork(names, timeout=20).run({p: role(p) for p in names})


@pytest.mark.parametrize("source", ["ot", "paillier"])
@pytest.mark.parametrize("shape", [TripleShape("matrix", 1, 4, 30), TripleShape("matrix", 30, 4, 1),
                                   TripleShape("matrix", 7, 3, 5)])
def test_matrix_triples_in_either_orientation(shape, source):
    """Either source, either orientation (Paillier offers a tall a transposed; OT carries the
    longer side in its messages): a·b = c among 3 parties."""
    names = ["a", "b", "c"]

    def role(t):
        s = _session(t, names, source)
        s.generate_triples(shape, 1)
        tr = s.triples.take(shape)
        return tr.a, tr.b, tr.c, s._transpose_cheaper(shape), s.ot_multiplications

    out = InProcessNetwork(names, timeout=60).run({p: role for p in names})
    a, b, c = (reconstruct([out[p][j] for p in names]) for j in range(3))
    assert np.array_equal(c, a @ b)
    assert out["a"][3] == (shape.m > shape.n)
    assert out["a"][4] == (4 * shape.multiplications if source == "ot" else 0)     # 2 peers, both ways


@pytest.mark.parametrize("words,rounds", [(64 * 2 * 12, 3),      # all 10 rows of X, one of its columns a round
                                         (64 * 2 * 3, 12)])      # 3 rows (4 blocks), one column: 12 rounds
def test_a_matrix_product_over_ot_in_several_rounds(monkeypatch, words, rounds):
    import vfl.mpc
    monkeypatch.setattr(vfl.mpc, "OLE_WORDS", words)
    names = ["bank", "insurer"]
    x, y = random_ring((10, 3)), random_ring((3, 2))

    def role(name):
        def run(t):
            s = _session(t, names)
            return s.ole_matrix("bank", "insurer", tag="m", rows=10, inner=3, cols=2,
                                x=x if name == "bank" else None, y=y if name == "insurer" else None)
        return run
    net = InProcessNetwork(names, timeout=30, record=True)
    out = net.run({p: role(p) for p in names})
    assert np.array_equal(out["bank"] + out["insurer"], (x[:, :, None] * y[None, :, :]).sum(axis=1, dtype=np.uint64))
    assert sum(isinstance(m, OtExtend) for _, m in net["bank"].received) == rounds
    corrections = [m.values.size for _, m in net["insurer"].received if isinstance(m, OtCorrect)]
    assert max(corrections) <= words


@pytest.mark.parametrize("names", [["bank", "insurer"], ["bank", "insurer", "telco"]])
def test_a_plaintext_matrix_times_a_shared_vector_in_fixed_point(names):
    """The linear step of a shared model: a passive's columns times shared weights, and their
    transpose times a shared residual; every party ends with shares, the product is exact
    before truncation and within fixed-point error after."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 4))
    w, d = rng.normal(size=(4, 1)), rng.normal(size=(200, 1))
    ws, ds = share(encode(w), len(names)), share(encode(d), len(names))
    owner = names[-1]

    def role(i):
        def run(t):
            s = _session(t, names)
            mine = encode(x) if s.me == owner else None
            z = s.plain_times_shared(owner, ws[i], tag="z", rows=200, x=mine)
            g = s.plain_times_shared(owner, ds[i], tag="g", rows=4, x=None if mine is None else mine.T.copy())
            return s.reveal(s.truncate(z, 16, tag="tz"), names, tag="rz"), \
                s.reveal(s.truncate(g, 16, tag="tg"), names, tag="rg")
        return run

    out = InProcessNetwork(names, timeout=60).run({p: role(i) for i, p in enumerate(names)})
    z, g = decode(out[names[0]][0]), decode(out[names[0]][1])
    assert np.abs(z - x @ w).max() < 1e-3 and np.abs(g - x.T @ d).max() < 1e-2


def test_three_party_truncation_of_a_value_the_hub_holds_no_share_of():
    """Shared between the two passives only (the hub's share zero): handed to party 1, the sum
    is the value itself, which the local truncation gets wrong unless party 1 re-randomizes its
    pair with the hub first."""
    names = ["hub", "p1", "p2"]
    value = encode(np.array([3.25, -7.5, 1000.0, 0.0]), 32)
    s1, s2 = share(value, 2)

    def role(name):
        def run(t):
            s = _session(t, names)
            mine = {"p1": s1, "p2": s2}.get(name, np.zeros(4, np.uint64))
            return s.reveal(s.truncate(mine, 16, tag="t"), names, tag="r")
        return run
    out = InProcessNetwork(names, timeout=30).run({p: role(p) for p in names})
    np.testing.assert_allclose(decode(out["hub"]), [3.25, -7.5, 1000.0, 0.0], atol=1e-4)
