"""The validation rows an estimator holds out of training for early stopping (shared by models)."""
from __future__ import annotations

import numpy as np


def validation_split(n_rows: int, *, early_stopping: bool, fraction: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(train, validation)`` row indices, both ascending; no validation rows without early stopping.

    Not stratified, on purpose: the passives learn which rows are held out (they score them
    but never receive their gradients), so the draw must not depend on the labels. A stratified
    draw is a label-dependent pattern that a passive knowing the seed could partly invert. The
    split is statistical, not secret: it comes from the estimator's seeded generator.
    """
    rows = np.arange(n_rows)
    if not early_stopping:
        return rows, rows[:0]      # keep the caller's row order
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {fraction}")
    n_val = min(max(1, int(round(fraction * n_rows))), n_rows - 1)
    val = rng.choice(n_rows, size=n_val, replace=False)
    return np.setdiff1d(rows, val), np.sort(val)
