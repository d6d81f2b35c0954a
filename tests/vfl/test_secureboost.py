"""Hetero SecureBoost over the in-process transport, checked split for split against a plaintext
reference implementation of the same algorithm (same binning, same fixed-point g/h, same gains)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from parties.inprocess import InProcessNetwork
from protocols.paillier import PackedEncryptedVector
from vfl.errors import DataError, NotFittedError, ProtocolError
from vfl.secureboost import ActiveSecureBoostClassifier, ActiveSecureBoostRegressor, PassiveSecureBoost
from vfl.secureboost.binning import MISSING, bin_columns

PARAMS = dict(n_estimators=3, max_depth=3, learning_rate=0.3, max_bins=16, min_child_weight=1.0,
              reg_lambda=1.0, gamma=0.0, frac_bits=32)


# -- the plaintext reference ---------------------------------------------------------------------
def _gain(gl, hl, g, h, p):
    s = 2.0 ** -p["frac_bits"]
    glf, hlf, gf, hf = gl * s, hl * s, g * s, h * s
    grf, hrf = gf - glf, hf - hlf
    lam = p["reg_lambda"]
    if not (hl > 0 and hl < h and hlf >= p["min_child_weight"] and hrf >= p["min_child_weight"]):
        return -np.inf
    return 0.5 * (glf * glf / (hlf + lam) + grf * grf / (hrf + lam) - gf * gf / (hf + lam)) - p["gamma"]


def _best_feature(codes, edges, gi, hi, g, h, p):
    """Entries in natural order: all non-missing (threshold +inf), then each non-empty bin but the last."""
    ok = codes != MISSING
    present = sorted(set(codes[ok].tolist()))
    entries = [(np.inf, int(gi[ok].sum()), int(hi[ok].sum()))]
    entries += [(float(edges[b]), int(gi[ok & (codes <= b)].sum()), int(hi[ok & (codes <= b)].sum()))
                for b in present[:-1]]
    g_miss, h_miss = g - entries[0][1], h - entries[0][2]
    best = None
    for thr, gl, hl in entries:
        for default_left, (a, b) in ((False, (gl, hl)), (True, (gl + g_miss, hl + h_miss))):
            gain = _gain(a, b, g, h, p)
            if gain > 0 and (best is None or gain > best[0]):
                best = (gain, thr, default_left)
    return best


def reference_fit(parts, y, p, loss="logistic"):
    """parts: list of feature arrays in party order (active first). Returns (base, trees)."""
    binned = [bin_columns(x, p["max_bins"]) for x in parts]
    base = float(np.log(y.mean() / (1 - y.mean()))) if loss == "logistic" else float(y.mean())
    scores, trees = np.full(len(y), base), []
    for t in range(p["n_estimators"]):
        if loss == "logistic":
            prob = 1 / (1 + np.exp(-scores))
            g, h = prob - y, prob * (1 - prob)
        else:
            g, h = scores - y, np.ones(len(y))
        gi = np.rint(np.ldexp(g, p["frac_bits"])).astype(np.int64)
        hi = np.rint(np.ldexp(h, p["frac_bits"])).astype(np.int64)
        tree, leaf = {}, np.zeros(len(y), np.int64)
        usable = binned[:1] if t < p.get("first_k_trees_active_only", 0) else binned
        _grow(0, 0, np.arange(len(y)), parts, usable, gi, hi, p, tree, leaf)
        scores = scores + np.array([tree[k][1] for k in leaf])
        trees.append(tree)
    return base, trees


def _grow(k, depth, rows, parts, binned, gi, hi, p, tree, leaf):
    g, h = int(gi[rows].sum()), int(hi[rows].sum())
    s = 2.0 ** -p["frac_bits"]
    best = None
    if depth < p["max_depth"] and h * s >= 2 * p["min_child_weight"] and h > 0 and len(rows) >= 2:
        for party, (codes, edges) in enumerate(binned):
            for f in range(codes.shape[1]):
                found = _best_feature(codes[rows, f], edges[f], gi[rows], hi[rows], g, h, p)
                if found and (best is None or found[0] > best[0]):
                    best = (found[0], party, f, found[1], found[2])
    if best is None:
        tree[k] = ("leaf", -p["learning_rate"] * (g * s) / (h * s + p["reg_lambda"]))
        leaf[rows] = k
        return
    _, party, f, thr, dl = best
    tree[k] = ("split", party, f, thr, dl)
    left = _go_left(parts[party][rows, f], thr, dl)
    _grow(2 * k + 1, depth + 1, rows[left], parts, binned, gi, hi, p, tree, leaf)
    _grow(2 * k + 2, depth + 1, rows[~left], parts, binned, gi, hi, p, tree, leaf)


def _go_left(v, thr, dl):
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(v), dl, v <= thr)


def reference_predict(base, trees, parts):
    z = np.full(len(parts[0]), base)
    for tree in trees:
        for i in range(len(z)):
            k = 0
            while tree[k][0] == "split":
                _, party, f, thr, dl = tree[k]
                k = 2 * k + 1 if _go_left(parts[party][i:i + 1, f], thr, dl)[0] else 2 * k + 2
            z[i] += tree[k][1]
    return z


# -- helpers -------------------------------------------------------------------------------------
def make_data(n=200, n_features=(3, 3), missing=0.05, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, sum(n_features)))
    x[:, 1] = np.round(x[:, 1])                      # few distinct values: empty bins in nodes
    x[:, -2] = np.round(2 * x[:, -2]) / 2            # (one column at the active, one at a passive)
    y = (x[:, 0] + x[:, -1] - 0.7 * x[:, 2] + x[:, -2] ** 2 - 1 + 0.3 * rng.normal(size=n) > 0).astype(float)
    x[rng.random(x.shape) < missing] = np.nan
    bounds = np.cumsum((0,) + tuple(n_features))
    return [x[:, a:b] for a, b in zip(bounds[:-1], bounds[1:])], y


def federated_tree(model, passives, t):
    """The federated tree in the reference's shape (thresholds from each party's own part)."""
    tree, out = model.trees_[t], {}
    for k in np.flatnonzero(tree.owner >= -1).tolist():
        owner = int(tree.owner[k])
        if owner == -1:
            out[k] = ("leaf", float(tree.value[k]))
        elif owner == 0:
            out[k] = ("split", 0, int(tree.feature[k]), float(tree.threshold[k]), bool(tree.default_left[k]))
        else:
            f, thr, dl = passives[owner - 1].lookup_[(t, k)]
            out[k] = ("split", owner, f, thr, dl)
            assert (f, dl) == (int(tree.feature[k]), bool(tree.default_left[k]))
    return out


def fit_federated(parts, y, sk, names=("bank", "insurer", "telco"), cls=ActiveSecureBoostClassifier, **params):
    names = list(names)[:len(parts)]
    net = InProcessNetwork(names, timeout=60)
    active = cls(**{**PARAMS, **params}, verbose=False, workers=1)
    passives = [PassiveSecureBoost(allow_insecure_key_size_for_tests=True, workers=1) for _ in parts[1:]]
    roles = {names[0]: lambda t: active.fit(parts[0], y, transport=t, passives=names[1:], private_key=sk)}
    for name, model, x in zip(names[1:], passives, parts[1:]):
        roles[name] = lambda t, m=model, x=x: m.fit(x, transport=t, active=names[0])
    net.run(roles)
    return net, active, passives


def predict_federated(net, active, passives, parts):
    names = net.parties
    roles = {names[0]: lambda t: active.decision_function(parts[0], transport=t, passives=names[1:])}
    for name, model, x in zip(names[1:], passives, parts[1:]):
        roles[name] = lambda t, m=model, x=x: m.predict_rows(x, transport=t, active=names[0])
    return net.run(roles)[names[0]]


# -- tests ---------------------------------------------------------------------------------------
def test_two_party_trees_equal_reference_split_for_split(small_keypair, monkeypatch):
    parts, y = make_data()
    subtractions = []
    original = PackedEncryptedVector.minus_subset
    monkeypatch.setattr(PackedEncryptedVector, "minus_subset",
                        lambda self, other: subtractions.append(1) or original(self, other))
    net, active, passives = fit_federated(parts, y, small_keypair[1])
    assert subtractions                     # larger children came from parent − smaller sibling
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


def test_three_party_trees_equal_reference_and_learn(small_keypair):
    parts, y = make_data(n=150, n_features=(2, 2, 2), seed=3)
    params = dict(n_estimators=2, max_depth=2, max_bins=8, reg_lambda=0.5, gamma=0.01, min_child_weight=0.5)
    net, active, passives = fit_federated(parts, y, small_keypair[1], **params)
    base, ref = reference_fit(parts, y, {**PARAMS, **params})
    for t in range(2):
        assert federated_tree(active, passives, t) == ref[t]
    z = predict_federated(net, active, passives, parts)
    np.testing.assert_allclose(z, reference_predict(base, ref, parts), atol=1e-12)
    assert np.mean((z > 0) == y) > 0.7
    # the bytes a passive sent per tree stay small: compressed histograms and bit-packed routes
    assert net["insurer"].stats()["bank"].bytes_sent < 400_000


def test_regression_equals_reference(small_keypair):
    parts, y01 = make_data(n=160, seed=11)
    rng = np.random.default_rng(2)
    y = 30.0 * y01 + 5 * rng.normal(size=len(y01)) - 12.0
    params = dict(n_estimators=2, max_depth=2, learning_rate=0.5)
    net, active, passives = fit_federated(parts, y, small_keypair[1], cls=ActiveSecureBoostRegressor, **params)
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
        PassiveSecureBoost().predict_rows(parts[1], transport=t, active="b")


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


def _scripted_active(sk, n, script):
    """An active that follows ``script(t, gh)`` after the setup, to test the passive's guards."""
    from protocols.paillier import PackedEncryptedVector as P
    from vfl.secureboost import messages as msg

    def role(t):
        t.register_public_key(sk.public_key)
        t.send("insurer", msg.Setup(public_key=sk.public_key, n_rows=n, n_estimators=2, max_depth=2,
                                    max_bins=8, frac_bits=32))
        t.recv("insurer", msg.Ready)
        gh = P.encrypt(sk, np.tile([0.5, 0.25], n), frac_bits=32, int_bits=1, sum_terms=n, slots=2, workers=1)
        script(t, gh, msg)
    return role


@pytest.mark.parametrize("case,match", [("entry", "was not offered"), ("node", "not a child"),
                                        ("length", "2 values in each"), ("rows", "did not list"),
                                        ("order", "ascending rows"), ("columns", "this party has 3"),
                                        ("end", "ended training at 7 trees")])
def test_passive_rejects_a_deviating_active(small_keypair, case, match):
    parts, _ = make_data(n=40)
    n = 40

    rows, cols = np.arange(n), np.arange(3)

    def script(t, gh, msg):
        bad = {"length": dict(gh=gh.take(range(n - 1))), "order": dict(rows=rows[::-1].copy()),
               "columns": dict(features=np.array([0, 3]))}
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
        t.send("insurer", msg.Nodes(tree=0, depth=0, node_ids=np.array([1 if case == "node" else 0]),
                                    node_of_row=of_row if case != "node" else of_row + 1))
        if case in ("node", "rows"):
            return
        t.recv("insurer", msg.Histograms)
        t.send("insurer", msg.Splits(tree=0, depth=0, node_ids=np.array([0]), features=np.array([0]),
                                     entries=np.array([99]), default_left=np.array([False])))

    net = InProcessNetwork(["bank", "insurer"], timeout=10)
    passive = PassiveSecureBoost(allow_insecure_key_size_for_tests=True, workers=1)
    with pytest.raises(ProtocolError, match=match):
        net.run({"bank": _scripted_active(small_keypair[1], n, script),
                 "insurer": lambda t: passive.fit(parts[1], transport=t, active="bank")})


@pytest.mark.parametrize("case", ["sizes", "leftrows"])
def test_active_rejects_a_deviating_passive(small_keypair, case):
    from vfl.secureboost import messages as msg
    parts, y = make_data(n=40)

    def passive(t):
        t.recv("bank", msg.Setup)
        t.send("bank", msg.Ready(n_features=1))
        gh = t.recv("bank", msg.GradHess).gh
        t.recv("bank", msg.Nodes)
        if case == "sizes":
            t.send("bank", msg.Histograms(tree=0, depth=0, sizes=np.array([[3]]), sums=gh.take([0])))
            return
        entries = gh.group_sums([np.arange(40)] * 2, pad_to=40).compress(workers=1)   # entry 0 and one candidate
        t.send("bank", msg.Histograms(tree=0, depth=0, sizes=np.array([[2]]), sums=entries))
        t.recv("bank", msg.Splits)
        t.send("bank", msg.LeftRows(tree=0, depth=0, left=np.zeros(3, bool)))

    net = InProcessNetwork(["bank", "insurer"], timeout=10)
    active = ActiveSecureBoostClassifier(n_estimators=1, max_depth=2, verbose=False, workers=1)
    with pytest.raises(ProtocolError, match="insurer sent"):
        net.run({"bank": lambda t: active.fit(parts[0], y, transport=t, passives=["insurer"],
                                              private_key=small_keypair[1]),
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
