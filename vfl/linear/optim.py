"""Plain-text pieces of the optimizer: learning-rate schedules, penalties, the Taylor loss."""
from __future__ import annotations

import math

import numpy as np

SCHEDULES = ("constant", "inverse")
PENALTIES = ("none", "l2", "l1")


def learning_rate_at(base: float, schedule: str, decay: float, epoch: int) -> float:
    """``constant``: base; ``inverse``: base / (1 + decay·epoch)."""
    if schedule == "constant":
        return base
    if schedule == "inverse":
        return base / (1.0 + decay * epoch)
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; choose one of {SCHEDULES}")


def apply_update(coef: np.ndarray, grad: np.ndarray, lr: float, penalty: str, alpha: float) -> np.ndarray:
    """One SGD step; L2 as weight decay, L1 as a proximal soft-threshold."""
    if penalty == "l2":
        return coef - lr * (grad + alpha * coef)
    stepped = coef - lr * grad
    if penalty == "l1":
        return np.sign(stepped) * np.maximum(np.abs(stepped) - lr * alpha, 0.0)
    return stepped


def taylor_logistic_loss(z: np.ndarray, y_pm: np.ndarray) -> float:
    """Second-order Taylor expansion of log(1 + e^(−yz)) at 0: log 2 − ½·y·z + ⅛·z²."""
    return float(np.mean(math.log(2.0) - 0.5 * y_pm * z + 0.125 * z * z))


def logistic_loss(z: np.ndarray, y01: np.ndarray) -> float:
    """Mean log-loss log(1 + e^(−y'z)) with y' = 2y − 1, computed stably."""
    return float(np.mean(np.logaddexp(0.0, -(2.0 * y01 - 1.0) * z)))
