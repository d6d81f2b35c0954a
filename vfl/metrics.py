"""Evaluation metrics: AUC and KS for classifiers, RMSE and R² for regressors."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import r2_score, roc_auc_score, roc_curve


def ks_statistic(y_true, scores) -> float:
    """Kolmogorov–Smirnov: the largest gap between the TPR and FPR curves."""
    fpr, tpr, _ = roc_curve(y_true, scores)
    return float(np.max(tpr - fpr))


def classification_metrics(y_true, scores) -> dict:
    y_true = np.asarray(y_true)
    if len(np.unique(y_true)) < 2:
        return {"auc": float("nan"), "ks": float("nan")}
    return {"auc": float(roc_auc_score(y_true, scores)), "ks": ks_statistic(y_true, scores)}


def regression_metrics(y_true, predictions) -> dict:
    y_true, predictions = np.asarray(y_true, float), np.asarray(predictions, float)
    return {"rmse": float(np.sqrt(np.mean((y_true - predictions) ** 2))),
            "r2": float(r2_score(y_true, predictions))}
