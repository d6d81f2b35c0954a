"""The default solver (full-batch L-BFGS) reaches scikit-learn's optimum of the same objective:
mean loss + alpha/2·‖w‖² is C = 1/(alpha·n) (Ridge(alpha·n) for squared loss), the same
standardization, an unpenalized intercept — on generated tables of other shapes (heavy tails,
correlated columns, 3 parties), both protocols, logistic and linear."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import log_loss, r2_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

from parties.transport.inprocess import InProcessNetwork
from vfl.errors import DataError
from vfl.linear import (
    ActiveLinearRegression,
    ActiveLogisticRegression,
    PassiveLinearRegression,
    PassiveLogisticRegression,
)

ALPHA = 1e-4


def _table(kind: str, n: int = 1500, seed: int = 0):
    rng = np.random.default_rng(seed)
    if kind == "heavy":              # lognormal and Student-t columns: far from Gaussian
        x = np.column_stack([rng.lognormal(0, 1.1, n), rng.standard_t(3, n), rng.lognormal(1, 0.8, n),
                             rng.normal(size=n), rng.standard_t(4, n), rng.exponential(2.0, n)])
    else:                            # strongly correlated columns (pairs at 0.95)
        base = rng.normal(size=(n, 3))
        x = np.column_stack([base, base + 0.3 * rng.normal(size=(n, 3))])
    w = rng.normal(size=x.shape[1])
    z = StandardScaler().fit_transform(x) @ w * 0.8 - 0.5
    return x, z, rng


def _fit(x, y, parts: list[slice], *, protocol: str, linear: bool, key):
    names = ["bank"] + [f"p{i}" for i in range(1, len(parts))]
    active_cls, passive_cls = (ActiveLinearRegression, PassiveLinearRegression) if linear else \
        (ActiveLogisticRegression, PassiveLogisticRegression)
    active = active_cls(protocol=protocol, alpha=ALPHA, key_bits=1024, verbose=False)
    passives = {n: passive_cls(allow_insecure_key_size_for_tests=True, key_bits=1024) for n in names[1:]}
    roles = {"bank": lambda t: active.fit(x[:, parts[0]], y, transport=t, passives=names[1:], private_key=key)}
    for n, s in zip(names[1:], parts[1:]):
        roles[n] = lambda t, n=n, s=s: passives[n].fit(x[:, s], transport=t, active="bank")
    InProcessNetwork(names, timeout=120).run(roles)
    scaler = StandardScaler().fit(x)
    coef = np.concatenate([active.coef_, *(passives[n].coef_ for n in names[1:])])
    return active, lambda xx: scaler.transform(xx) @ coef + active.intercept_


@pytest.mark.parametrize("kind, parts, protocol", [
    ("heavy", [slice(0, 3), slice(3, 6)], "label_key"),
    ("correlated", [slice(0, 2), slice(2, 4), slice(4, 6)], "feature_key"),
])
def test_logistic_regression_reaches_scikit_learn_s_optimum(small_keypair, kind, parts, protocol):
    x, z, rng = _table(kind)
    y = (rng.random(len(z)) < expit(z)).astype(int)
    train, test = np.arange(1200), np.arange(1200, 1500)
    model, score = _fit(x[train], y[train], parts, protocol=protocol, linear=False, key=small_keypair[1])
    scaler = StandardScaler().fit(x[train])
    ref = LogisticRegression(C=1 / (ALPHA * len(train)), tol=1e-10, max_iter=10000).fit(scaler.transform(x[train]),
                                                                                         y[train])
    ours_loss = log_loss(y[train], expit(score(x[train])))
    ref_loss = log_loss(y[train], ref.predict_proba(scaler.transform(x[train]))[:, 1])
    assert abs(ours_loss - ref_loss) < 1e-3
    assert abs(model.loss_curve_[-1] - ours_loss) < 1e-9          # the curve is the training log-loss
    auc = roc_auc_score(y[test], score(x[test]))
    assert abs(auc - roc_auc_score(y[test], ref.decision_function(scaler.transform(x[test])))) < 0.002
    assert model.solver == "lbfgs" and model.n_epochs_ < 100      # stopped by the gradient-norm rule


@pytest.mark.parametrize("protocol", ["label_key", "feature_key"])
def test_linear_regression_reaches_ridge_s_optimum(small_keypair, protocol):
    x, z, rng = _table("heavy", seed=3)
    y = 3.0 * z + rng.standard_t(5, len(z))
    train, test = np.arange(1200), np.arange(1200, 1500)
    model, score = _fit(x[train], y[train], [slice(0, 4), slice(4, 6)], protocol=protocol, linear=True,
                        key=small_keypair[1])
    scaler = StandardScaler().fit(x[train])
    ref = Ridge(alpha=ALPHA * len(train)).fit(scaler.transform(x[train]), y[train])
    ours = 0.5 * np.mean((score(x[train]) - y[train]) ** 2)
    theirs = 0.5 * np.mean((ref.predict(scaler.transform(x[train])) - y[train]) ** 2)
    assert abs(ours - theirs) / theirs < 1e-3
    assert abs(r2_score(y[test], score(x[test])) - r2_score(y[test], ref.predict(scaler.transform(x[test])))) < 0.002


def test_separable_classes_without_a_penalty_are_refused(small_keypair):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 4))
    y = (x[:, 0] + x[:, 2] > 0).astype(int)
    active = ActiveLogisticRegression(penalty="none", epochs=60, key_bits=1024, verbose=False)
    passive = PassiveLogisticRegression(allow_insecure_key_size_for_tests=True)
    with pytest.raises(DataError, match="separable"):
        InProcessNetwork(["bank", "p1"], timeout=60).run({
            "bank": lambda t: active.fit(x[:, :2], y, transport=t, passives=["p1"], private_key=small_keypair[1]),
            "p1": lambda t: passive.fit(x[:, 2:], transport=t, active="bank")})


def test_l1_needs_the_sgd_solver():
    with pytest.raises(ValueError, match='penalty "l1" needs solver "sgd"'):
        ActiveLogisticRegression(penalty="l1")._validate_params()
    ActiveLogisticRegression(penalty="l1", solver="sgd")._validate_params()
