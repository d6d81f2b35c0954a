"""Evaluation metrics: AUC and KS for binary classifiers; macro one-vs-rest AUC, accuracy and
log-loss for K > 2 classes (scores of shape (n, K)); RMSE and R² for regressors."""
from __future__ import annotations

import numpy as np
from scipy.special import softmax
from sklearn.metrics import log_loss, r2_score, roc_auc_score, roc_curve


def ks_statistic(y_true, scores) -> float:
    """Kolmogorov–Smirnov: the largest gap between the TPR and FPR curves."""
    fpr, tpr, _ = roc_curve(y_true, scores)
    return float(np.max(tpr - fpr))


def classification_metrics(y_true, scores) -> dict:
    y_true, scores = np.asarray(y_true), np.asarray(scores, float)
    if scores.ndim == 2:
        return multiclass_metrics(y_true, scores)
    if len(np.unique(y_true)) < 2:
        return {"auc": float("nan"), "ks": float("nan")}
    return {"auc": float(roc_auc_score(y_true, scores)), "ks": ks_statistic(y_true, scores)}


def multiclass_metrics(y_true, scores) -> dict:
    """``scores``: raw per-class scores (softmax gives the probabilities)."""
    labels = np.arange(scores.shape[1])
    proba = softmax(scores, axis=1)
    present = np.unique(y_true)
    auc = float(roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels)) \
        if len(present) == len(labels) else float("nan")
    return {"auc": auc, "accuracy": float(np.mean(proba.argmax(axis=1) == y_true)),
            "log_loss": float(log_loss(y_true, proba, labels=labels))}


def regression_metrics(y_true, predictions) -> dict:
    y_true, predictions = np.asarray(y_true, float), np.asarray(predictions, float)
    return {"rmse": float(np.sqrt(np.mean((y_true - predictions) ** 2))),
            "r2": float(r2_score(y_true, predictions))}
