"""Hetero LR with the passives' own keys (protocol="feature_key"): the same model as the
label-key protocol, no encryption by the active, and the passive's guards."""
from __future__ import annotations

import numpy as np
import pytest

from parties.transport.inprocess import InProcessNetwork
from vfl import datasets, handshake
from vfl.errors import ProtocolError
from vfl.linear import ActiveLinearRegression, ActiveLogisticRegression, PassiveLogisticRegression, feature_key
from vfl.linear import messages as msg
from vfl.linear.feature_key import Layout, pack_rows, unpack


@pytest.fixture(scope="module")
def breast():
    guest, host = datasets.load_hetero("breast")
    df = guest.merge(host, on="id", suffixes=("_g", "_h"))
    xg = df[[c for c in df.columns if c.endswith("_g")]].to_numpy()
    xh = host.set_index("id").loc[df["id"]].to_numpy()
    return xg, xh, df["y"].to_numpy()


def _fit(xa, xps, y, sk, *, cls=ActiveLogisticRegression, record=False, **params):
    names = ["bank"] + [f"p{i}" for i in range(len(xps))]
    net = InProcessNetwork(names, timeout=60, record=record)
    active = cls(epochs=3, batch_size=64, learning_rate=0.3, random_state=0, verbose=False, key_bits=1024, **params)
    passives = [PassiveLogisticRegression(allow_insecure_key_size_for_tests=True, key_bits=1024) for _ in xps]
    roles = {"bank": lambda t: active.fit(xa, y, transport=t, passives=names[1:], private_key=sk)}
    for name, model, x in zip(names[1:], passives, xps):
        roles[name] = lambda t, m=model, x=x: m.fit(x, transport=t, active="bank")
    net.run(roles)
    return net, active, passives


@pytest.mark.parametrize("parties,chunk,solver", [(1, None, "sgd"), (2, None, "lbfgs"), (1, 97, "lbfgs"),
                                                  (2, 97, "sgd")])
def test_feature_key_gives_the_label_key_model(breast, small_keypair, parties, chunk, solver, monkeypatch):
    if chunk:                                       # [[X_p]] in several chunks, the last one short
        monkeypatch.setattr(feature_key, "FEATURE_CHUNK", chunk)
    xg, xh, y = breast
    xps = [xh] if parties == 1 else [xh[:, :10], xh[:, 10:]]
    _, a1, p1 = _fit(xg, xps, y, small_keypair[1], solver=solver)
    net, a2, p2 = _fit(xg, xps, y, small_keypair[1], solver=solver, protocol="feature_key", record=True)
    np.testing.assert_array_equal(a1.coef_, a2.coef_)
    assert a1.intercept_ == a2.intercept_ and a1.loss_curve_ == a2.loss_curve_
    for m1, m2 in zip(p1, p2):
        np.testing.assert_array_equal(m1.coef_, m2.coef_)
    # the active encrypted nothing: the passives received no residuals, only gradients under their keys
    kinds = {type(m).__name__ for _, m in net["p0"].received}
    assert "Residual" not in kinds and "EncryptedGradient" in kinds
    got = [m for _, m in net["bank"].received if isinstance(m, msg.EncryptedFeatures)]
    assert len(got) == parties and got[0].public_key.n_bits == 1024
    assert got[0].n_ciphertexts == len(y) * -(-xps[0].shape[1] // got[0].per_ct)       # every row, once
    chunks = [m.features for sender, m in net["bank"].received
              if sender == "p0" and isinstance(m, msg.EncryptedFeatureChunk)]
    assert sum(len(c) for c in chunks) == got[0].n_ciphertexts
    assert len(chunks) == -(-got[0].n_ciphertexts // (chunk or feature_key.FEATURE_CHUNK))
    if parties == 2 and chunk:           # the active reads both headers, then a chunk from each in turn
        order = [(sender, type(m).__name__) for sender, m in net["bank"].received
                 if isinstance(m, (msg.EncryptedFeatures, msg.EncryptedFeatureChunk))]
        assert order[:4] == [("p0", "EncryptedFeatures"), ("p1", "EncryptedFeatures"),
                             ("p0", "EncryptedFeatureChunk"), ("p1", "EncryptedFeatureChunk")]


def test_feature_key_linear_regression_matches_label_key(small_keypair):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 6))
    y = x @ np.array([1.5, -2.0, 0.5, 1.0, 0.0, 3.0]) + 0.1 * rng.normal(size=300)
    _, a1, p1 = _fit(x[:, :3], [x[:, 3:]], y, small_keypair[1], cls=ActiveLinearRegression)
    _, a2, p2 = _fit(x[:, :3], [x[:, 3:]], y, small_keypair[1], cls=ActiveLinearRegression, protocol="feature_key")
    np.testing.assert_array_equal(a1.coef_, a2.coef_)
    np.testing.assert_array_equal(p1[0].coef_, p2[0].coef_)


def test_signed_slots_round_trip():
    layout = Layout(n_features=7, slot_bits=20, per_ct=3)
    rng = np.random.default_rng(0)
    q = rng.integers(-2 ** 12, 2 ** 12, size=(5, 7)).astype(object)
    packed = pack_rows(q, layout)
    assert len(packed) == 5 * layout.groups
    d = rng.integers(-50, 50, size=5)
    totals = [sum(int(d[i]) * packed[i * layout.groups + g] for i in range(5)) for g in range(layout.groups)]
    assert unpack(totals, layout) == [int(v) for v in (d @ q.astype(np.int64))]
    with pytest.raises(ValueError, match="beyond the last slot"):
        unpack([totals[0] + (1 << 60), *totals[1:]], layout)


def test_passive_refuses_a_gradient_of_another_scale(breast, small_keypair):
    from protocols.paillier import EncryptedVector
    xg, xh, y = breast

    def active(t):
        setup = msg.Setup(public_key=None, task="logistic", n_rows=len(y), train_index=np.arange(len(y)),
                          val_index=np.arange(0), epochs=1, batch_size=64, batch_seed=1, learning_rate=0.1,
                          lr_schedule="constant", lr_decay=0.0, penalty="none", alpha=0.0, residual_frac_bits=24,
                          protocol="feature_key")
        t.send("p", setup)
        t.recv("p", handshake.Ready)
        header = t.recv("p", msg.EncryptedFeatures)
        received = 0
        while received < header.n_ciphertexts:
            received += len(t.recv("p", msg.EncryptedFeatureChunk).features)
        theirs = header.public_key
        t.recv("p", msg.PartialScores)
        t.send("p", msg.EncryptedGradient(EncryptedVector.encrypt(theirs, [1.0], frac_bits=20, int_bits=8)))

    net = InProcessNetwork(["bank", "p"], timeout=10)
    passive = PassiveLogisticRegression(allow_insecure_key_size_for_tests=True, key_bits=1024)
    with pytest.raises(ProtocolError, match="under another key, length or scale"):
        net.run({"bank": active, "p": lambda t: passive.fit(xh, transport=t, active="bank")})


def test_passive_refuses_a_small_own_key_and_unknown_protocols(breast, small_keypair):
    xg, xh, y = breast
    for passive, protocol, match in [(PassiveLogisticRegression(key_bits=1024), "feature_key", "own 1024-bit key"),
                                     (PassiveLogisticRegression(), "carrier_pigeon", "unknown protocol")]:
        net = InProcessNetwork(["bank", "p"], timeout=10)
        active = ActiveLogisticRegression(epochs=1, batch_size=64, verbose=False, protocol="feature_key")
        active.protocol = protocol                         # bypass the active's own check
        from vfl.linear import setup as lr_setup
        with pytest.raises((ProtocolError, ValueError), match=match if protocol == "feature_key" else "protocol"):
            net.run({"bank": lambda t: active.fit(xg, y, transport=t, passives=["p"], private_key=small_keypair[1]),
                     "p": lambda t, m=passive: m.fit(xh, transport=t, active="bank")})
        del lr_setup


def test_offset_multiexp_equals_signed_multiexp_and_weighted_sum_decrypts(small_keypair):
    from gmpy2 import mpz

    from protocols.paillier import EncryptedVector
    from protocols.paillier.multiexp import offset_multiexp, signed_multiexp
    pk, sk = small_keypair
    rng = np.random.default_rng(3)
    bases = [mpz(int(v)) for v in rng.integers(2, 2 ** 62, size=40)]
    for scalars in ([int(v) for v in rng.integers(-2 ** 20, 2 ** 20, size=40)], [-5] * 40, [0] * 40, [7] * 40):
        assert offset_multiexp(bases, scalars, pk.nsquare, 21) == signed_multiexp(bases, scalars, pk.nsquare)
    with pytest.raises(ValueError, match="outside"):
        offset_multiexp(bases[:1], [2 ** 21], pk.nsquare, 21)
    v, w = rng.normal(size=30), rng.normal(size=30) * 0.4
    enc = EncryptedVector.encrypt(sk, v, frac_bits=16, int_bits=4)
    total = enc.weighted_sum(w, frac_bits=24, scalar_bits=25).decrypt(sk)
    expected = (enc.matmul(w.reshape(1, -1), frac_bits=24)).decrypt(sk)
    assert total.tolist() == expected.tolist() and abs(total[0] - v @ w) < 1e-4


@pytest.mark.parametrize("case,match", [
    ("key", "512-bit key, below the 1024-bit minimum"), ("invertible", "not valid ciphertexts"),
    ("rows", "announced encrypted features that do not match"),
    ("extra", "expected lr.partial_scores, received lr.encrypted_feature_chunk"),
    ("overlong", "after 300 of 569 ciphertexts"), ("scale", "after 0 of 569 ciphertexts"),
    ("empty_chunk", "does not match its header")])
def test_active_refuses_bad_encrypted_features(breast, small_keypair, case, match):
    from gmpy2 import mpz

    from protocols.paillier import EncryptedVector, generate_keypair
    xg, xh, y = breast
    pk = generate_keypair(512 if case == "key" else 1024, allow_insecure_key_size_for_tests=True)[0]

    def passive(t):
        t.recv("bank", msg.Setup)
        t.send("bank", handshake.Ready(n_features=3))
        n = len(y) - (1 if case == "rows" else 0)
        enc = EncryptedVector.encrypt(pk, np.zeros(n), frac_bits=0, int_bits=200)
        if case == "invertible":
            enc = EncryptedVector(pk, [mpz(pk.n)] + enc.ciphertexts[1:], 0, enc.mag_bits)
        t.send("bank", msg.EncryptedFeatures(public_key=pk, slot_bits=75, per_ct=3, n_ciphertexts=n))
        if case == "scale":              # (a chunk under another key never gets here: the codec drops it)
            enc = EncryptedVector.encrypt(pk, np.zeros(n), frac_bits=8, int_bits=200)
        if case == "empty_chunk":
            t.send("bank", msg.EncryptedFeatureChunk(enc[:0]))
        t.send("bank", msg.EncryptedFeatureChunk(enc[:300]))
        t.send("bank", msg.EncryptedFeatureChunk(enc[:300] if case == "overlong" else enc[300:]))
        if case == "extra":
            t.send("bank", msg.EncryptedFeatureChunk(enc[:1]))
            t.send("bank", msg.PartialScores(np.zeros(n)))   # what the active reads next otherwise

    net = InProcessNetwork(["bank", "p"], timeout=10)
    active = ActiveLogisticRegression(epochs=1, batch_size=64, verbose=False, key_bits=1024, protocol="feature_key")
    with pytest.raises(ProtocolError, match=match):
        net.run({"bank": lambda t: active.fit(xg, y, transport=t, passives=["p"]), "p": passive})
