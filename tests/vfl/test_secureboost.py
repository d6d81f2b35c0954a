"""Hetero SecureBoost over the in-process transport, checked split for split against a plaintext
reference implementation of the same algorithm (tests/vfl/sbt_reference.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sbt_reference import (
    PARAMS,
    federated_tree,
    fit_federated,
    make_data,
    predict_federated,
    reference_fit,
    reference_predict,
)

from parties.transport.inprocess import InProcessNetwork
from protocols.paillier import PackedEncryptedVector
from vfl import handshake
from vfl.errors import DataError, NotFittedError, ProtocolError
from vfl.secureboost import ActiveSecureBoostClassifier, ActiveSecureBoostRegressor, PassiveSecureBoost
from vfl.secureboost.passive import PassiveTrainer
from vfl.secureboost.setup import capacity_bits, new_key, row_bits


# -- tests ---------------------------------------------------------------------------------------
def test_two_party_trees_equal_reference_split_for_split(packing_keypair, monkeypatch):
    parts, y = make_data()
    sent = []                               # (depth, nodes summed, nodes to split) per histogram message
    original = PassiveTrainer._send_histograms
    monkeypatch.setattr(PassiveTrainer, "_send_histograms", lambda self, tree, depth, *a: sent.append(
        (depth, len({(k - 1) // 2 for k in a[3]}) if depth else 1, len(a[3]))) or original(self, tree, depth, *a))
    net, active, passives = fit_federated(parts, y, packing_keypair[1])
    # below the root the passive sums one child per parent (the active subtracts for the other)
    assert all(nodes < split for depth, nodes, split in sent if depth >= 2) and any(d >= 2 for d, _, _ in sent)
    base, ref = reference_fit(parts, y, PARAMS)
    assert active.base_score_ == base
    owners = set()
    for t, ref_tree in enumerate(ref):
        fed = federated_tree(active, passives, t)
        assert fed == ref_tree, f"tree {t} differs"
        owners |= {v[1] for v in fed.values() if v[0] == "split"}
    assert owners == {0, 1}                # both parties won splits
    # the passive's lookup holds exactly its own nodes; the active holds no passive threshold
    assert all(active.trees_[t].owner[k] == 1 for t, k in passives[0].lookup_)
    assert all(np.isnan(tr.threshold[tr.owner == 1]).all() for tr in active.trees_)
    # prediction: one round, equal to the reference on new rows (with missing values)
    test_parts, _ = make_data(n=80, seed=5, missing=0.1)
    z = predict_federated(net, active, passives, test_parts)
    np.testing.assert_allclose(z, reference_predict(base, ref, test_parts), rtol=0, atol=1e-12)


def test_histograms_sent_a_column_at_a_time_give_the_same_trees(small_keypair, monkeypatch):
    import vfl.secureboost.passive as passive_module
    monkeypatch.setattr(passive_module, "BLOCK_ADDITIONS", 1)        # one column per message
    widths, direct = [], PassiveTrainer._direct
    monkeypatch.setattr(PassiveTrainer, "_direct", lambda self, gh, where, rows, layout: widths.append(
        len(layout)) or direct(self, gh, where, rows, layout))
    parts, y = make_data(n=150, n_features=(2, 3), seed=4)
    params = dict(n_estimators=2, max_depth=3, max_bins=8)
    net, active, passives = fit_federated(parts, y, small_keypair[1], **params)
    base, ref = reference_fit(parts, y, {**PARAMS, **params})
    for t in range(2):
        assert federated_tree(active, passives, t) == ref[t]
    assert set(widths) == {1} and len(widths) >= 2 * 3               # every message held one column


def test_three_party_trees_equal_reference_and_learn(packing_keypair):
    parts, y = make_data(n=150, n_features=(2, 2, 2), seed=3)
    params = dict(n_estimators=2, max_depth=2, max_bins=8, reg_lambda=0.5, gamma=0.01, min_child_weight=0.5)
    net, active, passives = fit_federated(parts, y, packing_keypair[1], **params)
    base, ref = reference_fit(parts, y, {**PARAMS, **params})
    for t in range(2):
        assert federated_tree(active, passives, t) == ref[t]
    z = predict_federated(net, active, passives, parts)
    np.testing.assert_allclose(z, reference_predict(base, ref, parts), atol=1e-12)
    assert np.mean((z > 0) == y) > 0.7
    # the bytes a passive sent per tree stay small: compressed histograms and bit-packed routes
    assert net["insurer"].stats()["bank"].bytes_sent < 400_000


def test_regression_equals_reference(packing_keypair):
    parts, y01 = make_data(n=160, seed=11)
    rng = np.random.default_rng(2)
    y = 30.0 * y01 + 5 * rng.normal(size=len(y01)) - 12.0
    params = dict(n_estimators=2, max_depth=2, learning_rate=0.5)
    net, active, passives = fit_federated(parts, y, packing_keypair[1], cls=ActiveSecureBoostRegressor, **params)
    base, ref = reference_fit(parts, y, {**PARAMS, **params}, loss="squared")
    assert active.base_score_ == base
    for t in range(2):
        assert federated_tree(active, passives, t) == ref[t]
    z = predict_federated(net, active, passives, parts)
    np.testing.assert_allclose(z, reference_predict(base, ref, parts), atol=1e-9)
    assert np.mean((z - y) ** 2) < np.var(y)


def test_first_trees_on_active_features_only(small_keypair):
    parts, y = make_data(n=120, seed=4)
    params = dict(n_estimators=3, max_depth=2, first_k_trees_active_only=2)
    net, active, passives = fit_federated(parts, y, small_keypair[1], **params)
    base, ref = reference_fit(parts, y, {**PARAMS, **params})
    for t in range(3):
        assert federated_tree(active, passives, t) == ref[t]
    assert passives[0].n_trees_ == 1 and {t for t, _ in passives[0].lookup_} <= {2}
    assert all((tree.owner <= 0).all() for tree in active.trees_[:2])
    z = predict_federated(net, active, passives, parts)
    np.testing.assert_allclose(z, reference_predict(base, ref, parts), atol=1e-12)


def test_save_load_roundtrip_predicts_the_same(small_keypair, tmp_path):
    parts, y = make_data(n=120, seed=7)
    net, active, passives = fit_federated(parts, y, small_keypair[1], n_estimators=2, max_depth=2)
    z = predict_federated(net, active, passives, parts)
    active.feature_names_in_ = ["a0", "a1", "a2"]
    passives[0].feature_names_in_ = ["p0", "p1", "p2"]
    active.save(tmp_path / "active.json")
    passives[0].save(tmp_path / "passive.json")
    a2 = ActiveSecureBoostClassifier.load(tmp_path / "active.json")
    p2 = PassiveSecureBoost.load(tmp_path / "passive.json")
    assert p2.lookup_ == passives[0].lookup_
    assert (a2.feature_names_in_, p2.feature_names_in_) == (["a0", "a1", "a2"], ["p0", "p1", "p2"])
    z2 = predict_federated(InProcessNetwork(["bank", "insurer"]), a2, [p2], parts)
    np.testing.assert_array_equal(z, z2)
    with pytest.raises(ValueError, match="passive party's"):
        ActiveSecureBoostClassifier.load(tmp_path / "passive.json")
    with pytest.raises(ValueError, match="logistic model, not a squared"):
        ActiveSecureBoostRegressor.load(tmp_path / "active.json")
    (tmp_path / "bad.json").write_text('{"format": "vfl-secureboost-model", "version": 9}')
    with pytest.raises(ValueError, match="version 9"):
        PassiveSecureBoost.load(tmp_path / "bad.json")
    imp = a2.feature_importances("split")
    assert sum(imp.values()) == sum(int((t.owner >= 0).sum()) for t in a2.trees_)
    gains = a2.feature_importances("gain")
    assert set(gains) == set(imp) and all(v > 0 for v in gains.values())
    assert {party for party, _ in imp} <= {"active", "insurer"}
    with pytest.raises(ValueError, match="kind"):
        a2.feature_importances("cover")


@pytest.mark.parametrize("param,value", [("n_estimators", 0), ("learning_rate", 0.0), ("max_depth", 0),
                                         ("max_depth", 13), ("max_bins", 1), ("min_child_weight", -1.0),
                                         ("reg_lambda", -0.1), ("gamma", -1.0), ("frac_bits", 4),
                                         ("first_k_trees_active_only", 11), ("n_estimators", 2.5)])
def test_invalid_hyperparameters(param, value, small_keypair):
    parts, y = make_data(n=20)
    model = ActiveSecureBoostClassifier(**{param: value})
    with pytest.raises(ValueError, match=param):
        model.fit(parts[0], y, transport=InProcessNetwork(["a", "b"])["a"], passives=["b"],
                  private_key=small_keypair[1])


def test_invalid_inputs_name_party_and_column(small_keypair):
    parts, y = make_data(n=20)
    t = InProcessNetwork(["bank", "b"])["bank"]
    bad = parts[0].copy()
    bad[3, 2] = np.inf
    with pytest.raises(DataError, match="bank: feature column 2"):
        ActiveSecureBoostClassifier().fit(bad, y, transport=t, passives=["b"], private_key=small_keypair[1])
    frame = pd.DataFrame({"age": parts[0][:, 0], "city": ["x"] * 20})
    with pytest.raises(DataError, match="bank: feature column 'city' is not numeric"):
        ActiveSecureBoostClassifier().fit(frame, y, transport=t, passives=["b"], private_key=small_keypair[1])
    with pytest.raises(DataError, match="bank: the label column has missing"):
        ActiveSecureBoostClassifier().fit(parts[0], np.where(y > 0, np.nan, 0), transport=t, passives=["b"],
                                          private_key=small_keypair[1])
    with pytest.raises(DataError, match="bank: the labels hold a single class"):
        ActiveSecureBoostClassifier().fit(parts[0], np.zeros(20), transport=t, passives=["b"],
                                          private_key=small_keypair[1])
    with pytest.raises(DataError, match="bank: classification needs labels 0, 1, …, K−1"):
        ActiveSecureBoostClassifier().fit(parts[0], y * 2, transport=t, passives=["b"], private_key=small_keypair[1])
    with pytest.raises(DataError, match="bank: 19 labels for 20 rows"):
        ActiveSecureBoostClassifier().fit(parts[0], y[1:], transport=t, passives=["b"], private_key=small_keypair[1])
    with pytest.raises(DataError, match="bank: labels lie up to"):
        ActiveSecureBoostRegressor(gradient_int_bits=4).fit(parts[0], y * 100, transport=t, passives=["b"],
                                                            private_key=small_keypair[1])
    with pytest.raises(ValueError, match="gradient_int_bits"):
        ActiveSecureBoostRegressor(gradient_int_bits=0).fit(parts[0], y, transport=t, passives=["b"])
    with pytest.raises(NotFittedError):
        ActiveSecureBoostClassifier().predict(parts[0], transport=t, passives=["b"])
    with pytest.raises(NotFittedError):
        PassiveSecureBoost().serve_scores(parts[1], transport=t, active="b")


def test_passive_refuses_small_key_and_misaligned_rows(small_keypair):
    parts, y = make_data(n=30)
    for passive, x, match in [(PassiveSecureBoost(), parts[1], "1024-bit key"),
                              (PassiveSecureBoost(allow_insecure_key_size_for_tests=True), parts[1][:-1], "aligned"),
                              (PassiveSecureBoost(max_estimators=1, allow_insecure_key_size_for_tests=True),
                               parts[1], "at most 1")]:
        net = InProcessNetwork(["bank", "insurer"], timeout=10)
        active = ActiveSecureBoostClassifier(n_estimators=2, verbose=False, workers=1)
        with pytest.raises(ProtocolError, match=match):
            net.run({"bank": lambda t: active.fit(parts[0], y, transport=t, passives=["insurer"],
                                                  private_key=small_keypair[1]),
                     "insurer": lambda t, p=passive, x=x: p.fit(x, transport=t, active="bank")})


def test_the_scheme_a_passive_accepts_and_the_one_auto_picks(small_ou_keypair):
    parts, y = make_data(n=30)
    net = InProcessNetwork(["bank", "insurer"], timeout=10)
    active = ActiveSecureBoostClassifier(n_estimators=2, verbose=False, workers=1)
    passive = PassiveSecureBoost(allow_insecure_key_size_for_tests=True, schemes=["paillier"])
    with pytest.raises(ProtocolError, match="the job's key is ou, but this party accepts only paillier"):
        net.run({"bank": lambda t: active.fit(parts[0], y, transport=t, passives=["insurer"],
                                              private_key=small_ou_keypair[1]),
                 "insurer": lambda t: passive.fit(parts[1], transport=t, active="bank")})
    with pytest.raises(ValueError, match="scheme='paillier' but the key given is ou"):
        ActiveSecureBoostClassifier(scheme="paillier", verbose=False).fit(
            parts[0], y, transport=InProcessNetwork(["bank", "insurer"])["bank"], passives=["insurer"],
            private_key=small_ou_keypair[1])
    for bad in (["ou", "ou"], [], ["rsa"], "ou"):
        with pytest.raises(ValueError, match="schemes"):
            PassiveSecureBoost(schemes=bad)._validate_params()
    # auto: OU while a row's 2K slots fit its 616-bit plaintext (2048-bit key), else Paillier
    assert capacity_bits("ou", 2048) == 616 and capacity_bits("paillier", 2048) == 2046
    assert new_key("auto", 2048, 616).public_key.scheme == "ou"
    assert new_key("auto", 2048, 617).public_key.scheme == "paillier"
    assert new_key("paillier", 2048, 10).public_key.scheme == "paillier"
    # 16 classes of a 20,000-row table need 32 slots of 29 bits: only Paillier holds them
    assert row_bits(n_outputs=16, int_bits=1, frac_bits=12, sample_rows=20_000) == 32 * 29


def _scripted_active(sk, n, script):
    """An active that follows ``script(t, gh)`` after the setup, to test the passive's guards."""
    from protocols.paillier import PackedEncryptedVector as P
    from vfl.secureboost import messages as msg

    def role(t):
        t.register_public_key(sk.public_key)
        t.send("insurer", msg.Setup(public_key=sk.public_key, n_rows=n, n_estimators=2, max_depth=2,
                                    max_bins=8, frac_bits=32, sample_rows=n))
        t.recv("insurer", handshake.Ready)
        gh = P.encrypt(sk, np.tile([0.5, 0.25], n), frac_bits=32, int_bits=1, sum_terms=n, slots=2, workers=1)
        script(t, gh, msg)
    return role


@pytest.mark.parametrize("case,match", [("entry", "was not offered"), ("node", "not a child"),
                                        ("length", "2 values in each"), ("rows", "did not list"),
                                        ("order", "ascending rows"), ("columns", "this party has 3"),
                                        ("end", "ended training at 7 trees"), ("float_rows", "not integers"),
                                        ("sample", "expected 40 ascending rows"), ("scale", "another key or scale"),
                                        ("thin_node", "fewer than 2 sampled rows"), ("twice", "malformed split")])
def test_passive_rejects_a_deviating_active(small_keypair, case, match):
    parts, _ = make_data(n=40)
    n = 40

    rows, cols = np.arange(n), np.arange(3)

    def script(t, gh, msg):
        bad = {"length": dict(gh=gh.take(range(n - 1))), "order": dict(rows=rows[::-1].copy()),
               "columns": dict(features=np.array([0, 3])), "float_rows": dict(rows=rows.astype(float)),
               "sample": dict(rows=rows[:-1], gh=gh.take(range(n - 1))),
               "scale": dict(gh=PackedEncryptedVector.encrypt(small_keypair[1], np.tile([0.5, 0.25], n), frac_bits=20,
                                                              int_bits=1, sum_terms=n, slots=2, workers=1))}
        if case in bad:
            t.send("insurer", msg.GradHess(**{"tree": 0, "gh": gh, "rows": rows, "features": cols, **bad[case]}))
            return
        if case == "end":
            t.send("insurer", msg.FitEnd(n_trees=7))
            return
        t.send("insurer", msg.GradHess(tree=0, gh=gh, rows=rows, features=cols))
        of_row = np.zeros(n, np.int64)
        if case == "rows":
            of_row[0] = 5
        if case == "thin_node":
            t.send("insurer", msg.Nodes(tree=0, depth=0, node_ids=np.array([0]), node_of_row=of_row))
            t.recv("insurer", msg.Histograms)
            t.send("insurer", msg.Splits(tree=0, depth=0, node_ids=np.array([0]), features=np.array([0]),
                                         entries=np.array([0]), default_left=np.array([False])))
            left = t.recv("insurer", msg.LeftRows).left
            of_row = np.where(left, 1, 2)
            of_row[np.flatnonzero(left)[1:]] = 2             # node 1 keeps a single row
            t.send("insurer", msg.Nodes(tree=0, depth=1, node_ids=np.array([1, 2]), node_of_row=of_row))
            return
        t.send("insurer", msg.Nodes(tree=0, depth=0, node_ids=np.array([1 if case == "node" else 0]),
                                    node_of_row=of_row if case != "node" else of_row + 1))
        if case in ("node", "rows"):
            return
        t.recv("insurer", msg.Histograms)
        ids, entry = (np.array([0, 0]), 1) if case == "twice" else (np.array([0]), 99)
        t.send("insurer", msg.Splits(tree=0, depth=0, node_ids=ids, features=np.zeros(len(ids), np.int64),
                                     entries=np.full(len(ids), entry), default_left=np.zeros(len(ids), bool)))

    net = InProcessNetwork(["bank", "insurer"], timeout=10)
    passive = PassiveSecureBoost(allow_insecure_key_size_for_tests=True, workers=1)
    with pytest.raises(ProtocolError, match=match):
        net.run({"bank": _scripted_active(small_keypair[1], n, script),
                 "insurer": lambda t: passive.fit(parts[1], transport=t, active="bank")})


@pytest.mark.parametrize("case", ["sizes", "leftrows", "wrapping sizes"])
def test_active_rejects_a_deviating_passive(small_keypair, case):
    from vfl.secureboost import messages as msg
    parts, y = make_data(n=40)

    def passive(t):
        t.recv("bank", msg.Setup)
        t.send("bank", handshake.Ready(n_features=4 if case == "wrapping sizes" else 1))
        gh = t.recv("bank", msg.GradHess).gh
        t.recv("bank", msg.Nodes)
        if case == "wrapping sizes":           # int64 sizes whose sum wraps around to 3 entries
            sizes = np.array([[2**62, 2**62, 2**62, 2**62 + 3]], np.int64)
            t.send("bank", msg.Histograms(tree=0, depth=0, node_ids=np.array([0]), first=0, sizes=sizes,
                                          masks=np.zeros(0, bool),
                                          sums=gh.group_sums([np.arange(40)] * 3, pad_to=40).compress(workers=1)))
            return
        if case == "sizes":
            t.send("bank", msg.Histograms(tree=0, depth=0, node_ids=np.array([0]), first=0, sizes=np.array([[3]]),
                                          masks=np.zeros(0, bool), sums=gh.take([0])))
            return
        entries = gh.group_sums([np.arange(40)] * 2, pad_to=40).compress(workers=1)   # entry 0 and one candidate
        t.send("bank", msg.Histograms(tree=0, depth=0, node_ids=np.array([0]), first=0, sizes=np.array([[2]]),
                                      masks=np.zeros(0, bool), sums=entries))
        t.recv("bank", msg.Splits)
        t.send("bank", msg.LeftRows(tree=0, depth=0, left=np.zeros(3, bool)))

    net = InProcessNetwork(["bank", "insurer"], timeout=10)
    active = ActiveSecureBoostClassifier(n_estimators=1, max_depth=2, verbose=False, workers=1)
    with pytest.raises(ProtocolError, match="insurer sent"):
        net.run({"bank": lambda t: active.fit(parts[0], y, transport=t, passives=["insurer"],
                                              private_key=small_keypair[1]),
                 "insurer": passive})


@pytest.mark.parametrize("case,match", [("layout", "packed 2 × 20 bits, not 12 × 20"),
                                        ("beyond p", "overflow"), ("trailing slot", "overflow")])
def test_an_ou_active_decrypts_only_the_layout_it_expects(small_ou_keypair, case, match):
    """An OU key holder must not decrypt ciphertexts of plaintexts >= p into values it acts on
    (the split it picks would leak p): it decrypts only its own packed layout, whose 275 bits
    (1024-bit key) stay 64 bits below any possible p, and refuses bits beyond the last value."""
    import gmpy2

    from vfl.secureboost import messages as msg
    pk, sk = small_ou_keypair
    parts, y = make_data(n=40)

    def passive(t):
        t.recv("bank", msg.Setup)
        t.send("bank", handshake.Ready(n_features=1))
        gh = t.recv("bank", msg.GradHess).gh
        t.recv("bank", msg.Nodes)
        entries = gh.group_sums([np.arange(40)] * 2, pad_to=40)          # entry 0 and one candidate
        if case != "layout":
            entries = entries.compress(workers=1)
            shift = pk.p_bits if case == "beyond p" else entries.slot_bits * 4    # past p / into an unused slot
            last = entries.ciphertexts[-1] * gmpy2.powmod(pk.g, 1 << shift, pk.n) % pk.n
            entries = PackedEncryptedVector(pk, entries.ciphertexts[:-1] + [last], length=entries.length,
                                            exponent=entries.exponent, slot_bits=entries.slot_bits,
                                            slots=entries.slots, offset=entries.offset, max_slot=entries.max_slot)
        t.send("bank", msg.Histograms(tree=0, depth=0, node_ids=np.array([0]), first=0, sizes=np.array([[2]]),
                                      masks=np.zeros(0, bool), sums=entries))

    net = InProcessNetwork(["bank", "insurer"], timeout=10)
    active = ActiveSecureBoostClassifier(n_estimators=1, max_depth=2, verbose=False, workers=1)
    with pytest.raises(ProtocolError, match=match):
        net.run({"bank": lambda t: active.fit(parts[0], y, transport=t, passives=["insurer"], private_key=sk),
                 "insurer": passive})


def test_uninformative_passive_owns_no_nodes_and_prediction_still_works(small_keypair):
    parts, y = make_data(n=60, seed=9)
    useless = np.column_stack([np.full(60, np.nan), np.full(60, 3.0)])     # all missing, constant
    params = dict(n_estimators=2, max_depth=2)
    net, active, passives = fit_federated([parts[0], useless], y, small_keypair[1], **params)
    base, ref = reference_fit([parts[0], useless], y, {**PARAMS, **params})
    assert passives[0].lookup_ == {}
    for t in range(2):
        assert federated_tree(active, passives, t) == ref[t]
    z = predict_federated(net, active, passives, [parts[0], useless])
    np.testing.assert_allclose(z, reference_predict(base, ref, [parts[0], useless]), atol=1e-12)
