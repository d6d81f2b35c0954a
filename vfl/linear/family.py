"""Hetero logistic and linear regression as model families (job names ``logistic_regression``
and ``linear_regression``)."""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vfl.family import Curves, DataNeeds, ModelFamily, TrainingSummary
from vfl.linear.model import ActiveLinearRegression, ActiveLogisticRegression, PassiveLinearModel
from vfl.linear.optim import logistic_loss


class _LinearFamily(ModelFamily):
    passive_estimator = PassiveLinearModel
    passive_cap = "max_epochs"
    checkpoints = True
    rounds_param = "epochs"

    def summary(self, model) -> TrainingSummary:
        loss = "squared loss" if self.task == "regression" else (
            "Taylor loss" if model.approximation == "taylor" else "log loss")
        unit = "iteration" if model.solver == "lbfgs" else "epoch"
        curves = Curves(model.loss_curve_, model.validation_loss_curve_, loss, unit)
        return TrainingSummary(curves, {"solver": model.solver, "epochs": model.n_epochs_,
                                        "epoch_seconds": model.epoch_seconds_})

    def _penalty(self, params: dict, n_rows: int) -> tuple[str, float]:
        """The job's penalty and its strength in scikit-learn's terms (docs/hetero_lr.md)."""
        h = {**self.hyperparameters(), **params}
        return h["penalty"], float(h["alpha"]) * n_rows


class LogisticRegressionFamily(_LinearFamily):
    name = "logistic_regression"
    label_privacy = True
    feature_privacy = True
    task = "classification"
    data = DataNeeds(allow_nan=False, label="binary")
    active_estimator = ActiveLogisticRegression

    def baseline(self, params, x_train, y_train, x_eval):
        """scikit-learn's optimum of the same objective: mean log-loss + alpha/2·‖w‖² is
        C = 1/(alpha·n) (l1: alpha·‖w‖₁ is C = 1/(alpha·n) with liblinear's l1); same scaling,
        unpenalized intercept."""
        penalty, strength = self._penalty(params, len(x_train))
        if penalty == "none" or strength == 0:
            lr, label = LogisticRegression(penalty=None, max_iter=10000, tol=1e-8), "no penalty"
        elif penalty == "l1":
            lr, label = LogisticRegression(penalty="l1", C=1 / strength, solver="saga", max_iter=20000,
                                           tol=1e-8), f"l1, C={1 / strength:.4g}"
        else:
            lr, label = LogisticRegression(C=1 / strength, max_iter=10000, tol=1e-8), f"l2, C={1 / strength:.4g}"
        name = f"scikit-learn LogisticRegression (StandardScaler, {label})"
        return name, self.scikit_scores(make_pipeline(StandardScaler(), lr), x_train, y_train, x_eval)

    def training_loss(self, y_true, scores) -> float:
        return logistic_loss(np.asarray(scores, float), np.asarray(y_true, float))


class LinearRegressionFamily(_LinearFamily):
    name = "linear_regression"
    task = "regression"
    data = DataNeeds(allow_nan=False, label="continuous")
    active_estimator = ActiveLinearRegression

    def baseline(self, params, x_train, y_train, x_eval):
        """½·mean squared error + alpha/2·‖w‖² is Ridge(alpha·n); l1 is Lasso(alpha)."""
        penalty, strength = self._penalty(params, len(x_train))
        if penalty == "none" or strength == 0:
            lr, label = LinearRegression(), "LinearRegression"
        elif penalty == "l1":
            a = strength / len(x_train)
            lr, label = Lasso(alpha=a, max_iter=100000), f"Lasso(alpha={a:.4g})"
        else:
            lr, label = Ridge(alpha=strength), f"Ridge(alpha={strength:.4g})"
        return f"scikit-learn {label} (StandardScaler)", self.scikit_scores(make_pipeline(StandardScaler(), lr),
                                                                            x_train, y_train, x_eval)

    def training_loss(self, y_true, scores) -> float:
        return float(0.5 * np.mean((np.asarray(scores, float) - np.asarray(y_true, float)) ** 2))


FAMILIES = (LogisticRegressionFamily(), LinearRegressionFamily())
