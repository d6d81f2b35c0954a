"""The validation rows an estimator holds out of training for early stopping (shared by models)."""
from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split


def validation_split(n_rows: int, labels: np.ndarray, *, early_stopping: bool, fraction: float,
                     stratify: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(train, validation)`` row indices, both ascending; no validation rows without early stopping.

    The split is statistical, not secret: it comes from the estimator's seeded generator.
    """
    rows = np.arange(n_rows)
    if not early_stopping:
        return rows, rows[:0]      # keep the caller's row order
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {fraction}")
    train, val = train_test_split(rows, test_size=fraction, stratify=labels if stratify else None,
                                  random_state=int(rng.integers(2**31)))
    return np.sort(train), np.sort(val)
