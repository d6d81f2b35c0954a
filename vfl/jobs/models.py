"""The models a job can name, and how each role trains, scores and stores them."""
from __future__ import annotations

import dataclasses
from typing import Callable

from vfl.linear import ActiveLinearRegression, ActiveLogisticRegression, PassiveLinearModel
from vfl.linear.setup import check_hyperparameters as check_linear
from vfl.secureboost import ActiveSecureBoostClassifier, ActiveSecureBoostRegressor, PassiveSecureBoost
from vfl.secureboost.setup import check_hyperparameters as check_trees


@dataclasses.dataclass(frozen=True)
class ModelKind:
    task: str                       # "classification" or "regression"
    active: type
    passive: type
    passive_cap: str                # the passive's keyword for its own cap on rounds (epochs or trees)
    score: Callable                 # passive side of federated scoring: (model, x, transport, active) -> rows
    check: Callable                 # hyperparameter validation of the active estimator (before any crypto)


def _linear_score(model, x, transport, active):
    return model.score(x, transport=transport, active=active)


def _tree_score(model, x, transport, active):
    return model.predict_rows(x, transport=transport, active=active)


MODEL_KINDS = {
    "logistic_regression": ModelKind("classification", ActiveLogisticRegression, PassiveLinearModel,
                                     "max_epochs", _linear_score, check_linear),
    "linear_regression": ModelKind("regression", ActiveLinearRegression, PassiveLinearModel,
                                   "max_epochs", _linear_score, check_linear),
    "secureboost": ModelKind("classification", ActiveSecureBoostClassifier, PassiveSecureBoost,
                             "max_estimators", _tree_score, check_trees),
    "secureboost_regression": ModelKind("regression", ActiveSecureBoostRegressor, PassiveSecureBoost,
                                        "max_estimators", _tree_score, check_trees),
}


def model_kind(name: str) -> ModelKind:
    try:
        return MODEL_KINDS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODEL_KINDS)}") from None
