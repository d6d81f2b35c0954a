"""Rows held out of training: a job's evaluation rows, and an estimator's early-stopping rows."""
from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from vfl.errors import DataError


def evaluation_split(ids, labels, *, test_size: float, seed: int, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` positions of a job's aligned rows; ``test`` is empty when ``test_size`` is 0.

    Drawn with the job's seed over the rows sorted by id, so the split does not depend on the
    (random) order PSI agreed on: same data and seed, same split. Stratified by ``labels`` for
    classifiers, so small or imbalanced sets keep every class among the held-out rows.
    Training rows stay in id order: batches are reproducible.
    """
    rows = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    if test_size <= 0:
        return rows, rows[:0]
    try:
        _, test = train_test_split(rows, test_size=test_size, random_state=seed,
                                   stratify=np.asarray(labels)[rows] if stratify else None)
    except ValueError as exc:
        raise DataError(f"cannot hold out {test_size:.0%} of {len(rows)} aligned rows: {exc}") from None
    return rows[np.isin(rows, test, invert=True)], np.sort(test)


def evaluation_rows(train_rows: np.ndarray, test_rows: np.ndarray) -> np.ndarray:
    """The rows a job's evaluation scores: the held-out rows, or the training rows when none are
    held out (scoring training rows tells the active each passive's final partial scores on them,
    so it happens only when there is nothing else to evaluate on)."""
    return test_rows if len(test_rows) else train_rows


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
