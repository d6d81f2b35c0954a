"""The losses SecureBoost boosts: gradients, starting scores and the loss value per row.

Scores have shape ``(n,)`` for one output (logistic, squared) and ``(n, K)`` for softmax with
K classes, where one multi-output tree per round carries a K-vector in every leaf (see
docs/secureboost.md: all K (g, h) pairs of a row travel in one packed ciphertext, so a round
costs one encryption per row whatever K is).
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit, log_softmax, softmax

LOSSES = ("logistic", "squared", "softmax")
EPS = 1e-12


def n_outputs(loss: str, n_classes: int) -> int:
    return n_classes if loss == "softmax" else 1


def base_score(loss: str, labels: np.ndarray, n_classes: int):
    """The constant score the first tree starts from: log-odds, mean, or log class priors."""
    if loss == "logistic":
        mean = float(np.clip(labels.mean(), 1e-6, 1 - 1e-6))
        return float(np.log(mean / (1.0 - mean)))
    if loss == "squared":
        return float(labels.mean())
    prior = np.bincount(labels.astype(np.int64), minlength=n_classes) / len(labels)
    return np.log(np.clip(prior, 1e-6, None)).tolist()


def gradients(loss: str, scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and second derivatives of the loss per row (and per class for softmax)."""
    if loss == "logistic":
        prob = expit(scores)
        return prob - labels, prob * (1.0 - prob)
    if loss == "squared":
        return scores - labels, np.ones(len(labels))
    prob = softmax(scores, axis=1)
    onehot = np.zeros_like(prob)
    onehot[np.arange(len(labels)), labels.astype(np.int64)] = 1.0
    return prob - onehot, prob * (1.0 - prob)


def mean_loss(loss: str, scores: np.ndarray, labels: np.ndarray) -> float:
    """Log-loss (logistic, softmax) or half the mean squared error, as the gradients above."""
    if len(labels) == 0:
        return float("nan")
    if loss == "logistic":
        return float(np.mean(np.logaddexp(0.0, scores) - labels * scores))
    if loss == "squared":
        return float(0.5 * np.mean((scores - labels) ** 2))
    logp = log_softmax(scores, axis=1)
    return float(-np.mean(logp[np.arange(len(labels)), labels.astype(np.int64)]))
