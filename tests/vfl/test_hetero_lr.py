"""Hetero LR/linear regression over the in-process transport (the wire codec included)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_regression
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from parties.transport.inprocess import InProcessNetwork
from vfl import datasets, handshake
from vfl.errors import DataError, NotFittedError, PeerFailedError, ProtocolError
from vfl.linear import (
    ActiveLinearRegression,
    ActiveLogisticRegression,
    PassiveLinearRegression,
    PassiveLogisticRegression,
)
from vfl.metrics import classification_metrics, regression_metrics


@pytest.fixture(scope="module")
def breast():
    guest, host = datasets.load_hetero("breast")
    df = guest.merge(host, on="id", suffixes=("_g", "_h"))
    y = df["y"].to_numpy()
    xg = df[[c for c in df.columns if c.endswith("_g")]].to_numpy()
    host_cols = [f"{c}_h" if c in guest.columns else c for c in host.columns if c != "id"]
    xh = df[host_cols].to_numpy()
    assert xg.shape[1] == 10 and xh.shape[1] == 20
    train, test = train_test_split(np.arange(len(df)), test_size=0.2, stratify=y, random_state=42)
    return xg, xh, y, train, test


def _passive(**kw):
    return PassiveLogisticRegression(allow_insecure_key_size_for_tests=True, **kw)


def _fit_and_score(net, active, passives: dict, xa, y, train, test):
    names = list(passives)
    roles = {"bank": lambda t: active.fit(xa[train], y[train], transport=t, passives=names,
                                          private_key=pytest.small_sk)}
    for name, (model, x) in passives.items():
        roles[name] = lambda t, m=model, x=x: m.fit(x[train], transport=t, active="bank")
    net.run(roles)
    roles = {"bank": lambda t: active.decision_function(xa[test], transport=t, passives=names)}
    for name, (model, x) in passives.items():
        roles[name] = lambda t, m=model, x=x: m.serve_scores(x[test], transport=t, active="bank")
    return net.run(roles)["bank"]


@pytest.fixture(autouse=True)
def _key(small_keypair):
    pytest.small_sk = small_keypair[1]


def test_two_party_logistic_matches_centralized_auc(breast):
    xg, xh, y, train, test = breast
    net = InProcessNetwork(["bank", "insurer"], timeout=60)
    active = ActiveLogisticRegression(epochs=40, batch_size=64, learning_rate=0.3, random_state=0, verbose=False)
    passive = _passive()
    scores = _fit_and_score(net, active, {"insurer": (passive, xh)}, xg, y, train, test)
    x = np.hstack([xg, xh])
    scaler = StandardScaler().fit(x[train])
    base = LogisticRegression(max_iter=2000).fit(scaler.transform(x[train]), y[train])
    base_auc = classification_metrics(y[test], base.decision_function(scaler.transform(x[test])))["auc"]
    auc = classification_metrics(y[test], scores)["auc"]
    assert auc >= base_auc - 0.005, (auc, base_auc)
    # each party holds only its own slice of the model
    assert active.coef_.shape == (xg.shape[1],) and passive.coef_.shape == (xh.shape[1],)
    assert active.loss_curve_[-1] < active.loss_curve_[0]
    # the passive sent: partial scores (8 floats × rows) and one packed ciphertext per batch
    sent = net["insurer"].stats()["bank"].bytes_sent
    assert 0 < sent < 2_000_000


def test_three_party_logistic(breast):
    xg, xh, y, train, test = breast
    net = InProcessNetwork(["bank", "insurer", "telco"], timeout=60)
    active = ActiveLogisticRegression(epochs=15, batch_size=64, learning_rate=0.3, random_state=1, verbose=False)
    parts = {"insurer": (_passive(), xh[:, :10]), "telco": (_passive(), xh[:, 10:])}
    scores = _fit_and_score(net, active, parts, xg, y, train, test)
    assert classification_metrics(y[test], scores)["auc"] > 0.97


def test_two_party_linear_regression_close_to_ols():
    x, target = make_regression(n_samples=300, n_features=8, noise=5.0, random_state=3)
    target = target / target.std()
    train, test = np.arange(240), np.arange(240, 300)
    net = InProcessNetwork(["bank", "insurer"], timeout=60)
    active = ActiveLinearRegression(epochs=30, batch_size=32, learning_rate=0.05, lr_schedule="constant",
                                    penalty="none", random_state=0, verbose=False)
    passive = PassiveLinearRegression(allow_insecure_key_size_for_tests=True)
    pred = _fit_and_score(net, active, {"insurer": (passive, x[:, 4:])}, x[:, :4], target, train, test)
    ols = LinearRegression().fit(x[train], target[train]).predict(x[test])
    ours, base = regression_metrics(target[test], pred), regression_metrics(target[test], ols)
    assert ours["r2"] > base["r2"] - 0.02, (ours, base)


def test_early_stopping_on_validation_split(breast):
    xg, xh, y, train, test = breast
    net = InProcessNetwork(["bank", "insurer"], timeout=60)
    active = ActiveLogisticRegression(epochs=60, batch_size=64, early_stopping=True, n_iter_no_change=2,
                                      tol=1e-2, random_state=0, verbose=False)
    passive = _passive()
    _fit_and_score(net, active, {"insurer": (passive, xh)}, xg, y, train, test)
    assert active.n_epochs_ < 60 and passive.n_epochs_ == active.n_epochs_
    assert len(active.validation_loss_curve_) == active.n_epochs_


def test_passive_refuses_small_batches_before_any_cryptography(breast):
    xg, xh, y, train, _ = breast
    net = InProcessNetwork(["bank", "insurer"], timeout=20)
    active = ActiveLogisticRegression(solver="sgd", epochs=2, batch_size=xh.shape[1], verbose=False)
    with pytest.raises((ProtocolError, PeerFailedError), match="batch size"):
        net.run({"bank": lambda t: active.fit(xg[train], y[train], transport=t, passives=["insurer"],
                                              private_key=pytest.small_sk),
                 "insurer": lambda t: _passive().fit(xh[train], transport=t, active="bank")})


def test_passive_caps_epochs(breast):
    xg, xh, y, train, _ = breast
    net = InProcessNetwork(["bank", "insurer"], timeout=20)
    active = ActiveLogisticRegression(epochs=50, batch_size=64, verbose=False)
    with pytest.raises((ProtocolError, PeerFailedError), match="at most 10"):
        net.run({"bank": lambda t: active.fit(xg[train], y[train], transport=t, passives=["insurer"],
                                              private_key=pytest.small_sk),
                 "insurer": lambda t: _passive(max_epochs=10).fit(xh[train], transport=t, active="bank")})


def test_passive_refuses_small_keys_by_default(breast):
    xg, xh, y, train, _ = breast
    net = InProcessNetwork(["bank", "insurer"], timeout=20)
    active = ActiveLogisticRegression(epochs=1, batch_size=64, verbose=False)
    with pytest.raises((ProtocolError, PeerFailedError), match="2048-bit minimum"):
        net.run({"bank": lambda t: active.fit(xg[train], y[train], transport=t, passives=["insurer"],
                                              private_key=pytest.small_sk),
                 "insurer": lambda t: PassiveLogisticRegression().fit(xh[train], transport=t, active="bank")})


@pytest.mark.parametrize("labels, match", [(np.full(10, 2.0), "labels 0/1"),
                                           (np.array([0.0] * 9 + [np.nan]), "missing")])
def test_bad_labels_named(labels, match):
    with pytest.raises(DataError, match=match):
        ActiveLogisticRegression().fit(np.ones((10, 2)), labels, transport=_NoTransport(), passives=[])


def test_non_numeric_feature_column_named():
    import pandas as pd
    frame = pd.DataFrame({"age": [1, 2], "city": ["a", "b"]})
    with pytest.raises(DataError, match="'city'"):
        ActiveLogisticRegression().fit(frame, [0, 1], transport=_NoTransport(), passives=[])


def test_unfitted_models_say_so():
    with pytest.raises(NotFittedError):
        ActiveLogisticRegression().predict(np.ones((2, 2)), transport=_NoTransport(), passives=[])
    with pytest.raises(NotFittedError):
        PassiveLogisticRegression().serve_scores(np.ones((2, 2)), transport=_NoTransport(), active="bank")


def test_invalid_hyperparameters_raise_in_fit(small_keypair):
    with pytest.raises(ValueError, match="penalty"):
        ActiveLogisticRegression(penalty="l3", verbose=False).fit(
            np.ones((10, 2)), np.arange(10) % 2, transport=_NoTransport(), passives=[], private_key=small_keypair[1])


def test_model_files_round_trip(tmp_path, breast):
    xg, xh, y, train, test = breast
    net = InProcessNetwork(["bank", "insurer"], timeout=60)
    active = ActiveLogisticRegression(epochs=2, batch_size=64, verbose=False)
    passive = _passive()
    first = _fit_and_score(net, active, {"insurer": (passive, xh)}, xg, y, train, test)
    active.save(tmp_path / "bank.json")
    passive.save(tmp_path / "insurer.json")
    a2 = ActiveLogisticRegression.load(tmp_path / "bank.json")
    p2 = PassiveLogisticRegression.load(tmp_path / "insurer.json")
    again = net.run({"bank": lambda t: a2.decision_function(xg[test], transport=t, passives=["insurer"]),
                     "insurer": lambda t: p2.serve_scores(xh[test], transport=t, active="bank")})["bank"]
    np.testing.assert_allclose(again, first)
    with pytest.raises(ValueError, match="passive party's model"):
        ActiveLogisticRegression.load(tmp_path / "insurer.json")
    assert "pickle" not in (tmp_path / "bank.json").read_text()


class _NoTransport:
    party = "bank"

    def register_public_key(self, pk):
        pass


def test_no_batch_is_smaller_than_the_batch_size():
    from vfl.linear.training import epoch_batches
    for n, size in [(455, 64), (130, 64), (64, 64), (1000, 1000), (1001, 1000)]:
        batches = epoch_batches(n, size, seed=1, epoch=0)
        assert min(len(b) for b in batches) >= min(size, n)
        assert sorted(np.concatenate(batches).tolist()) == list(range(n))


@pytest.mark.parametrize("change, match", [
    (lambda s: {"train_index": np.repeat(s.train_index[:1], len(s.train_index))}, "repeat a row"),
    (lambda s: {"val_index": s.train_index[:5]}, "overlap"),
    (lambda s: {"train_index": s.train_index[:10]}, "fewer than one batch"),
    (lambda s: {"n_rows": s.n_rows + 1}, "not aligned"),
    (lambda s: {"train_index": s.train_index + 10_000}, "out of range"),
])
def test_passive_refuses_crafted_setups(small_keypair, change, match):
    import dataclasses

    from vfl.linear import messages as msg
    from vfl.linear.setup import check_setup
    x = np.zeros((100, 3))
    setup = msg.Setup(public_key=small_keypair[0], task="logistic", n_rows=100, train_index=np.arange(80),
                      val_index=np.arange(80, 100), epochs=1, batch_size=16, batch_seed=1, learning_rate=0.1,
                      lr_schedule="constant", lr_decay=0.0, penalty="none", alpha=0.0, residual_frac_bits=24)
    check_setup(setup, _passive(), x, "bank")        # the honest setup passes
    with pytest.raises(ProtocolError, match=match):
        check_setup(dataclasses.replace(setup, **change(setup)), _passive(), x, "bank")


def test_passive_refuses_a_residual_that_breaks_the_setup(small_keypair):
    """A residual with another scale would shrink the mask relative to the gradient."""
    import dataclasses

    from protocols.paillier import EncryptedVector
    from vfl.linear import messages as msg
    from vfl.linear.training import PassiveTrainer

    pk, _ = small_keypair
    setup = msg.Setup(public_key=pk, task="logistic", n_rows=40, train_index=np.arange(40), val_index=np.arange(0),
                      epochs=1, batch_size=40, batch_seed=1, learning_rate=0.1, lr_schedule="constant",
                      lr_decay=0.0, penalty="none", alpha=0.0, residual_frac_bits=24)

    class OneMessage:
        def __init__(self, message):
            self.message = message

        def recv(self, peer, kind, timeout=None):
            return self.message

    for bad in (dict(frac_bits=30, int_bits=20), dict(frac_bits=24, int_bits=2)):
        residual = EncryptedVector.encrypt(pk, np.zeros(40), workers=1, **bad)
        trainer = PassiveTrainer(OneMessage(msg.Residual(residual)), "bank", setup, np.zeros((40, 3)),
                                 mask_bits=64, feature_frac_bits=16)
        with pytest.raises(ProtocolError, match="scale"):
            trainer._residual(40)
    good = EncryptedVector.encrypt(pk, np.zeros(40), workers=1, frac_bits=24, int_bits=20)
    other = dataclasses.replace(setup, public_key=generate_other_key())
    with pytest.raises(ProtocolError, match="another key"):
        PassiveTrainer(OneMessage(msg.Residual(good)), "bank", other, np.zeros((40, 3)), mask_bits=64,
                       feature_frac_bits=16)._residual(40)


def generate_other_key():
    from protocols.paillier import generate_keypair
    return generate_keypair(512, allow_insecure_key_size_for_tests=True)[0]


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_active_decrypts_no_more_than_a_gradient(breast, small_keypair, solver):
    """A passive that sends the residuals back as its "gradient" would have them decrypted."""
    from protocols.paillier import PackedEncryptedVector
    from vfl.linear import messages as msg
    xg, xh, y, train, _ = breast

    def passive(t):
        setup = t.recv("bank", msg.Setup)
        t.send("bank", handshake.Ready(n_features=2))
        rows = len(setup.train_index) if setup.batch_size >= len(setup.train_index) else setup.batch_size
        t.send("bank", msg.PartialScores(np.zeros(rows)))
        residual = t.recv("bank", msg.Residual).residual
        t.send("bank", msg.MaskedGradient(PackedEncryptedVector.from_vector(residual)))

    net = InProcessNetwork(["bank", "insurer"], timeout=10)
    active = ActiveLogisticRegression(solver=solver, epochs=1, batch_size=64, verbose=False)
    rows = 64 if solver == "sgd" else len(train)
    with pytest.raises(ProtocolError, match=f"insurer sent a masked gradient of {rows} values for its 2 features"):
        net.run({"bank": lambda t: active.fit(xg[train], y[train], transport=t, passives=["insurer"],
                                              private_key=small_keypair[1]), "insurer": passive})
