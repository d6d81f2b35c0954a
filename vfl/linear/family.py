"""Hetero logistic and linear regression as model families (job names ``logistic_regression``
and ``linear_regression``)."""
from __future__ import annotations

from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vfl.family import Curves, DataNeeds, ModelFamily, TrainingSummary
from vfl.linear.model import ActiveLinearRegression, ActiveLogisticRegression, PassiveLinearModel


class _LinearFamily(ModelFamily):
    passive_estimator = PassiveLinearModel
    passive_cap = "max_epochs"
    checkpoints = True
    rounds_param = "epochs"

    def summary(self, model) -> TrainingSummary:
        loss = "squared loss" if self.task == "regression" else (
            "Taylor loss" if model.approximation == "taylor" else "log loss")
        curves = Curves(model.loss_curve_, model.validation_loss_curve_, loss, "epoch")
        return TrainingSummary(curves, {"epochs": model.n_epochs_, "epoch_seconds": model.epoch_seconds_})


class LogisticRegressionFamily(_LinearFamily):
    name = "logistic_regression"
    task = "classification"
    data = DataNeeds(allow_nan=False, label="binary")
    active_estimator = ActiveLogisticRegression

    def baseline(self, params, x_train, y_train, x_eval):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        return "scikit-learn LogisticRegression (StandardScaler, C=1.0)", self.scikit_scores(model, x_train, y_train,
                                                                                               x_eval)


class LinearRegressionFamily(_LinearFamily):
    name = "linear_regression"
    task = "regression"
    data = DataNeeds(allow_nan=False, label="continuous")
    active_estimator = ActiveLinearRegression

    def baseline(self, params, x_train, y_train, x_eval):
        model = make_pipeline(StandardScaler(), LinearRegression())
        return "scikit-learn LinearRegression (StandardScaler)", self.scikit_scores(model, x_train, y_train, x_eval)


FAMILIES = (LogisticRegressionFamily(), LinearRegressionFamily())
