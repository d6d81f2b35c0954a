"""Hetero SecureBoost as model families (job names ``secureboost`` and ``secureboost_regression``).
Both accept missing feature values: every split learns where they go."""
from __future__ import annotations

from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from protocols.paillier import SCHEMES
from vfl.family import Curves, DataNeeds, ModelFamily, TrainingSummary
from vfl.secureboost.model import ActiveSecureBoostClassifier, ActiveSecureBoostRegressor, PassiveSecureBoost


class _SecureBoostFamily(ModelFamily):
    passive_estimator = PassiveSecureBoost
    passive_cap = "max_estimators"
    checkpoints = True
    rounds_param = "n_estimators"

    def summary(self, model) -> TrainingSummary:
        names = getattr(model, "feature_names_in_", None) or [f"feature {i}" for i in range(model.n_features_in_)]
        importance = {}
        for (party, index), gain in model.feature_importances("gain").items():
            importance[names[index] if party == "active" else f"{party}:feature {index}"] = round(gain, 6)
        dropped = len(model.loss_curve_) > len(model.trees_)          # early stopping kept fewer trees
        curves = Curves(model.loss_curve_, model.validation_loss_curve_,
                        "half squared error" if model.loss_ == "squared" else "log loss", "tree",
                        kept=len(model.trees_) if dropped else None)
        return TrainingSummary(curves, {
            "trees": len(model.trees_), "scheme": model.scheme_, "tree_seconds": model.tree_seconds_,
            "phases": getattr(model, "phases_", {}),
            "feature_importance_gain": dict(sorted(importance.items(), key=lambda kv: -kv[1]))})

    baseline_estimator: type       # scikit-learn's histogram GBDT for the task

    def schemes(self, params: dict) -> tuple[str, ...]:
        scheme = {**self.hyperparameters(), **params}["scheme"]
        return SCHEMES if scheme == "auto" else (scheme,)

    def passive_figures(self, model) -> dict:
        return {"phases": getattr(model, "phases_", {})}

    def baseline(self, params, x_train, y_train, x_eval):
        """scikit-learn's histogram GBDT with the job's trees, depth, bins, learning rate and L2."""
        h = {**self.hyperparameters(), **params}
        model = self.baseline_estimator(max_iter=h["n_estimators"], learning_rate=h["learning_rate"],
                                        max_depth=h["max_depth"], max_bins=min(h["max_bins"], 255),
                                        l2_regularization=h["reg_lambda"], min_samples_leaf=1, early_stopping=False)
        name = f"scikit-learn {self.baseline_estimator.__name__} (same trees, depth, bins, learning rate, L2)"
        return name, self.scikit_scores(model, x_train, y_train, x_eval)


class SecureBoostClassifierFamily(_SecureBoostFamily):
    name = "secureboost"
    label_privacy = True
    gradient_privacy = True
    task = "classification"
    data = DataNeeds(allow_nan=True, label="classes", streams=True)
    active_estimator = ActiveSecureBoostClassifier
    baseline_estimator = HistGradientBoostingClassifier


class SecureBoostRegressorFamily(_SecureBoostFamily):
    name = "secureboost_regression"
    task = "regression"
    data = DataNeeds(allow_nan=True, label="continuous", streams=True)
    active_estimator = ActiveSecureBoostRegressor
    baseline_estimator = HistGradientBoostingRegressor


FAMILIES = (SecureBoostClassifierFamily(), SecureBoostRegressorFamily())
