"""SecureBoost on row samples (subsample, GOSS), column samples, with early stopping, and with
K > 2 classes (softmax, multi-output trees): split for split against the plaintext reference."""
from __future__ import annotations

import json

import numpy as np
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
from scipy.special import softmax

from parties.transport.inprocess import InProcessNetwork
from vfl import handshake
from vfl.errors import DataError, ProtocolError
from vfl.secureboost import ActiveSecureBoostClassifier, ActiveSecureBoostRegressor, PassiveSecureBoost
from vfl.secureboost import messages as msg
from vfl.secureboost.sampling import EarlyStopping, Sampling


def _check_against_reference(parts, y, sk, loss="logistic", n_classes=2, cls=ActiveSecureBoostClassifier,
                             names=("bank", "insurer", "telco"), **params):
    net, active, passives = fit_federated(parts, y, sk, cls=cls, names=names, **params)
    base, ref = reference_fit(parts, y, {**PARAMS, **params}, loss=loss, n_classes=n_classes)
    assert len(active.trees_) == len(ref)
    for t, ref_tree in enumerate(ref):
        assert federated_tree(active, passives, t) == ref_tree, f"tree {t} differs"
    z = predict_federated(net, active, passives, parts)
    np.testing.assert_allclose(z, reference_predict(base, ref, parts), rtol=0, atol=1e-9)
    return net, active, passives, z


def _grad_hess_received(net, party):
    return [m for _, m in net[party].received if isinstance(m, msg.GradHess)]


def test_row_and_column_samples_equal_reference(packing_keypair):
    parts, y = make_data(n=240, n_features=(3, 4), seed=21)
    params = dict(n_estimators=4, max_depth=3, subsample=0.6, colsample_bytree=0.6, random_state=5)
    net, active, passives = fit_federated(parts, y, packing_keypair[1], **params)
    _check_against_reference(parts, y, packing_keypair[1], **params)
    # a second fit with the same seed is the same model; the passive received only the sampled rows
    net2 = InProcessNetwork(["bank", "insurer"], timeout=60, record=True)
    again = ActiveSecureBoostClassifier(**{**PARAMS, **params}, verbose=False, workers=1)
    passive = PassiveSecureBoost(allow_insecure_key_size_for_tests=True, workers=1)
    net2.run({"bank": lambda t: again.fit(parts[0], y, transport=t, passives=["insurer"],
                                          private_key=packing_keypair[1]),
              "insurer": lambda t: passive.fit(parts[1], transport=t, active="bank")})
    assert [federated_tree(again, [passive], t) for t in range(4)] == \
        [federated_tree(active, passives, t) for t in range(4)]
    received = _grad_hess_received(net2, "insurer")
    assert received and all(len(m.rows) == round(0.6 * 240) and len(m.gh) == 2 * len(m.rows) for m in received)
    assert len({tuple(m.rows.tolist()) for m in received}) == len(received)       # a fresh sample per tree
    assert all(set(m.features.tolist()) < set(range(4)) for m in received)       # only some of its columns


def test_goss_equals_reference_and_weights_the_rest(small_keypair):
    parts, y = make_data(n=300, seed=8)
    params = dict(n_estimators=3, max_depth=2, goss=True, top_rate=0.3, other_rate=0.2, random_state=1)
    net, active, passives, z = _check_against_reference(parts, y, small_keypair[1], **params)
    assert np.mean((z > 0) == y) > 0.7


def test_goss_sample_keeps_the_largest_gradients():
    rng = np.random.default_rng(0)
    g_abs = rng.random(1000)
    train = np.arange(0, 1000, 2)                     # only even rows may be sampled
    sample = Sampling(goss=True, top_rate=0.1, other_rate=0.2).rows(train, g_abs, rng)
    assert len(sample.rows) == 50 + 100 and set(sample.rows.tolist()) <= set(train.tolist())
    top = train[np.argsort(-g_abs[train])[:50]]
    assert set(top.tolist()) <= set(sample.rows.tolist())
    assert np.all(sample.weight[np.isin(sample.rows, top)] == 1.0)
    assert np.allclose(sample.weight[~np.isin(sample.rows, top)], 0.9 / 0.2)
    assert Sampling(goss=True, top_rate=0.1, other_rate=0.2).goss_extra_bits == 3
    assert (np.diff(sample.rows) > 0).all()


def test_column_sample_spans_all_parties():
    rng = np.random.default_rng(3)
    draws = [Sampling(colsample_bytree=0.5).columns([3, 5, 2], rng) for _ in range(200)]
    assert all(sum(len(c) for c in d) == 5 for d in draws)
    assert all(c.max(initial=-1) < n for d in draws for c, n in zip(d, [3, 5, 2]))
    assert {len(d[2]) for d in draws} >= {0, 1, 2}             # a party may get none in a tree
    assert [len(c) for c in Sampling(colsample_bytree=0.01).columns([3, 5], rng)] in ([1, 0], [0, 1])


def test_early_stopping_equals_reference_and_trims_the_passive(small_keypair):
    parts, y = make_data(n=260, seed=13)
    y = np.where(np.random.default_rng(1).random(len(y)) < 0.35, 1 - y, y)     # noisy labels: overfits soon
    params = dict(n_estimators=25, max_depth=4, learning_rate=0.8, early_stopping=True, validation_fraction=0.3,
                  n_iter_no_change=2, random_state=4)
    net, active, passives, _ = _check_against_reference(parts, y, small_keypair[1], **params)
    assert 1 <= active.n_estimators_ < 25
    assert len(active.validation_loss_curve_) == active.n_estimators_ + 2        # the stale trees were grown
    assert np.argmin(active.validation_loss_curve_) == active.n_estimators_ - 1
    assert {t for t, _ in passives[0].lookup_} <= set(range(active.n_estimators_))
    assert passives[0].n_trees_ == active.n_estimators_


def test_multiclass_three_parties_equals_reference(packing_keypair):
    parts, y = make_data(n=240, n_features=(2, 2, 2), seed=6, n_classes=3)
    params = dict(n_estimators=3, max_depth=3, learning_rate=0.5)
    net, active, passives, z = _check_against_reference(parts, y, packing_keypair[1], loss="softmax",
                                                        n_classes=3, **params)
    assert z.shape == (240, 3) and active.loss_ == "softmax" and active.trees_[0].value.shape[1] == 3
    assert np.mean(z.argmax(axis=1) == y) > 0.6
    names = net.parties
    proba = net.run({"bank": lambda t: active.predict_proba(parts[0], transport=t, passives=names[1:]),
                     **{n: lambda t, m=m, x=x: m.serve_scores(x, transport=t, active="bank")
                        for n, m, x in zip(names[1:], passives, parts[1:])}})["bank"]
    np.testing.assert_allclose(proba, softmax(z, axis=1))
    # one ciphertext per row carries all three classes' (g, h)
    record = InProcessNetwork(["bank", "insurer"], timeout=60, record=True)
    passive = PassiveSecureBoost(allow_insecure_key_size_for_tests=True, workers=1)
    model = ActiveSecureBoostClassifier(**{**PARAMS, **params, "n_estimators": 1}, verbose=False, workers=1)
    record.run({"bank": lambda t: model.fit(parts[0], y, transport=t, passives=["insurer"],
                                            private_key=packing_keypair[1]),
                "insurer": lambda t: passive.fit(parts[1], transport=t, active="bank")})
    (gh,) = _grad_hess_received(record, "insurer")
    assert gh.gh.slots == 6 and len(gh.gh.ciphertexts) == 240


def test_multiclass_with_goss_and_early_stopping_equals_reference(small_keypair):
    parts, y = make_data(n=300, seed=2, n_classes=4)
    params = dict(n_estimators=6, max_depth=2, goss=True, top_rate=0.3, other_rate=0.3, early_stopping=True,
                  n_iter_no_change=2, validation_fraction=0.2, random_state=9, colsample_bytree=0.8)
    _check_against_reference(parts, y, small_keypair[1], loss="softmax", n_classes=4, **params)


def test_multiclass_save_load_predicts_the_same(small_keypair, tmp_path):
    parts, y = make_data(n=150, seed=4, n_classes=3)
    net, active, passives = fit_federated(parts, y, small_keypair[1], n_estimators=2, max_depth=2)
    z = predict_federated(net, active, passives, parts)
    active.save(tmp_path / "active.json")
    loaded = ActiveSecureBoostClassifier.load(tmp_path / "active.json")
    assert loaded.loss_ == "softmax" and loaded.base_score_ == active.base_score_
    assert loaded.classes_.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(predict_federated(net, loaded, passives, parts), z)
    with pytest.raises(ValueError, match="softmax model, not a squared one"):
        ActiveSecureBoostRegressor.load(tmp_path / "active.json")
    doc = json.loads((tmp_path / "active.json").read_text())
    doc["model"]["trees"][1]["value"] = [0.0] * len(doc["model"]["trees"][1]["value"])
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="leaf values do not match"):
        ActiveSecureBoostClassifier.load(tmp_path / "bad.json")


def test_regression_with_subsample_equals_reference(small_keypair):
    parts, y01 = make_data(n=200, seed=17)
    y = 10.0 * y01 + np.random.default_rng(0).normal(size=200)
    params = dict(n_estimators=3, max_depth=2, subsample=0.5, colsample_bytree=0.7, random_state=2)
    _check_against_reference(parts, y, small_keypair[1], loss="squared", cls=ActiveSecureBoostRegressor, **params)


def test_early_stopping_rule():
    stop = EarlyStopping(patience=2, tol=0.01)
    assert [stop.update(v, i + 1) for i, v in enumerate([1.0, 0.9, 0.895, 0.95, 0.5])] == \
        [False, False, False, True, False]
    assert stop.best_trees == 5


@pytest.mark.parametrize("param,value", [("subsample", 0.0), ("subsample", 1.5), ("colsample_bytree", 0),
                                         ("goss", 1), ("top_rate", 1.0), ("other_rate", 0.0),
                                         ("validation_fraction", 1.0), ("n_iter_no_change", 0), ("tol", -1.0),
                                         ("random_state", 1.5), ("early_stopping", "yes")])
def test_invalid_sampling_hyperparameters(param, value, small_keypair):
    parts, y = make_data(n=20)
    with pytest.raises(ValueError, match=param):
        ActiveSecureBoostClassifier(**{param: value}).fit(parts[0], y, transport=InProcessNetwork(["a", "b"])["a"],
                                                          passives=["b"], private_key=small_keypair[1])


def test_goss_conflicts_and_bad_classes(small_keypair):
    parts, y = make_data(n=20)
    t = InProcessNetwork(["a", "b"])["a"]
    with pytest.raises(ValueError, match="top_rate \\+ other_rate"):
        ActiveSecureBoostClassifier(goss=True, top_rate=0.6, other_rate=0.5).fit(parts[0], y, transport=t,
                                                                                 passives=["b"])
    with pytest.raises(ValueError, match="choose one"):
        ActiveSecureBoostClassifier(goss=True, subsample=0.5).fit(parts[0], y, transport=t, passives=["b"])
    with pytest.raises(DataError, match="a: classification needs labels .* found \\[3.0\\]"):
        ActiveSecureBoostClassifier().fit(parts[0], np.where(y > 0, 3, y), transport=t, passives=["b"],
                                          private_key=small_keypair[1])
    with pytest.raises(DataError, match="a: 20 classes; at most 16"):
        ActiveSecureBoostClassifier().fit(parts[0], np.arange(20), transport=t, passives=["b"],
                                          private_key=small_keypair[1])


def test_own_entries_stay_exact_for_large_sums():
    from vfl.secureboost.splits import own_entries
    rng = np.random.default_rng(5)
    codes = rng.integers(-1, 4, size=(300, 1)).astype(np.int32)
    for bound in (2 ** 20, 2 ** 52):                  # float bin sums exact / not exact: both paths
        gi = rng.integers(-bound, bound, size=(300, 2))
        hi = rng.integers(0, bound, size=(300, 2))
        (f, gl, hl), = own_entries(codes, gi, hi, [4], [0])
        ok = codes[:, 0] >= 0
        assert gl[0].tolist() == [int(v) for v in gi[ok].sum(axis=0)]
        top = max(b for b in range(4) if (codes[:, 0] == b).any() and b < codes[ok, 0].max())
        assert gl[-1].tolist() == [int(v) for v in gi[ok & (codes[:, 0] <= top)].sum(axis=0)]
        assert hl[0].tolist() == [int(v) for v in hi[ok].sum(axis=0)]


def test_slots_that_do_not_fit_the_key_fail_before_the_passives_are_asked(small_keypair):
    parts, _ = make_data(n=48)
    t = InProcessNetwork(["a", "b"])["a"]
    with pytest.raises(ValueError, match="32 slots of 56 bits .* do not fit a 1024-bit paillier key"):
        ActiveSecureBoostClassifier(frac_bits=48).fit(parts[0], np.arange(48) % 16, transport=t, passives=["b"],
                                                      private_key=small_keypair[1])
    assert t.stats()["b"].messages_sent == 0


@pytest.mark.parametrize("n_features", [0, 10 ** 9])       # a float is refused by the codec
def test_active_refuses_an_implausible_feature_count(small_keypair, n_features):
    parts, y = make_data(n=40)

    def passive(t):
        t.recv("bank", msg.Setup)
        t.send("bank", handshake.Ready(n_features=n_features))

    net = InProcessNetwork(["bank", "insurer"], timeout=10)
    active = ActiveSecureBoostClassifier(n_estimators=1, verbose=False, workers=1)
    with pytest.raises(ProtocolError, match="insurer declared"):
        net.run({"bank": lambda t: active.fit(parts[0], y, transport=t, passives=["insurer"],
                                              private_key=small_keypair[1]),
                 "insurer": passive})


def test_early_stop_cancels_the_prefetched_randomizers(small_keypair, monkeypatch):
    """With a real pool (workers=2) the key holder prefetches the next tree's randomizers;
    an early stop must cancel the one left over, not leave it running."""
    import vfl.secureboost.active as active_module
    handles = []
    real = active_module.prefetch_randomizers

    def spy(*args, **kwargs):
        handles.append(real(*args, **kwargs))
        handles[-1].cancelled = 0
        cancel = handles[-1].cancel
        handles[-1].cancel = lambda h=handles[-1]: setattr(h, "cancelled", h.cancelled + 1) or cancel()
        return handles[-1]

    monkeypatch.setattr(active_module, "prefetch_randomizers", spy)
    parts, y = make_data(n=200, seed=13)
    y = np.where(np.random.default_rng(1).random(len(y)) < 0.35, 1 - y, y)
    net = InProcessNetwork(["bank", "insurer"], timeout=120)
    model = ActiveSecureBoostClassifier(**{**PARAMS, "n_estimators": 25, "max_depth": 3, "learning_rate": 0.8,
                                           "early_stopping": True, "validation_fraction": 0.3,
                                           "n_iter_no_change": 1, "random_state": 4}, verbose=False, workers=2)
    passive = PassiveSecureBoost(allow_insecure_key_size_for_tests=True, workers=1)
    net.run({"bank": lambda t: model.fit(parts[0], y, transport=t, passives=["insurer"],
                                         private_key=small_keypair[1]),
             "insurer": lambda t: passive.fit(parts[1], transport=t, active="bank")})
    grown = len(model.validation_loss_curve_)
    assert grown < 25 and len(handles) == grown                 # one prefetch after every tree grown
    assert [h.cancelled for h in handles] == [0] * (grown - 1) + [1]
