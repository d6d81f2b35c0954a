"""Which rows and columns a tree is grown on: row subsampling, GOSS, column subsampling.

All of it is statistical, drawn by the active party from its seeded ``numpy`` generator (never
a secret). A tree's row sample is the set of rows whose (g, h) the active encrypts and sends;
every other row of the job (unsampled, or held out for early stopping) is still routed through
the tree, so its score is updated without another round.

GOSS (gradient-based one-side sampling, LightGBM): keep the ``top_rate`` share of training rows
with the largest |g|, draw ``other_rate`` of the rest at random and weight their g and h by
``(1 − top_rate) / other_rate`` so the sums stay unbiased. The weight widens the fixed-point
slots by ``goss_extra_bits`` bits. GOSS reveals to the passives which rows are in the sample,
and the sample is enriched in rows the model gets wrong (docs/secureboost.md, leakage table).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class RowSample:
    rows: np.ndarray                # ascending indices of the rows whose g, h this tree uses
    weight: np.ndarray              # per sampled row: the factor on its g and h (1 unless GOSS)


@dataclasses.dataclass(frozen=True)
class Sampling:
    subsample: float = 1.0
    colsample_bytree: float = 1.0
    goss: bool = False
    top_rate: float = 0.2
    other_rate: float = 0.1

    @property
    def goss_weight(self) -> float:
        return (1.0 - self.top_rate) / self.other_rate

    @property
    def goss_extra_bits(self) -> int:
        """Integer bits the GOSS weight adds to |g| and h (0 without GOSS)."""
        return max(0, math.ceil(math.log2(self.goss_weight))) if self.goss else 0

    def _goss_counts(self, n: int) -> tuple[int, int]:
        n_top = min(max(1, int(self.top_rate * n)), n)
        return n_top, min(max(1, int(self.other_rate * n)), n - n_top)

    def sample_size(self, n_train: int) -> int:
        """|S| of every tree: public (declared in the setup, checked by the passives)."""
        if self.goss:
            return sum(self._goss_counts(n_train))
        if self.subsample >= 1.0:
            return n_train
        return min(max(2, int(round(self.subsample * n_train))), n_train)

    def rows(self, train: np.ndarray, g_abs: np.ndarray, rng: np.random.Generator) -> RowSample:
        """The rows of one tree among the training rows; ``g_abs``: |g| per row of the job."""
        if self.goss:
            return self._goss(train, g_abs, rng)
        if self.subsample >= 1.0:
            return RowSample(train, np.ones(len(train)))
        rows = np.sort(rng.choice(train, size=self.sample_size(len(train)), replace=False))
        return RowSample(rows, np.ones(len(rows)))

    def _goss(self, train: np.ndarray, g_abs: np.ndarray, rng: np.random.Generator) -> RowSample:
        n_top, n_other = self._goss_counts(len(train))
        order = train[np.argsort(-g_abs[train], kind="stable")]
        top, rest = order[:n_top], order[n_top:]
        other = rng.choice(rest, size=n_other, replace=False)
        rows = np.concatenate([top, other])
        weight = np.concatenate([np.ones(len(top)), np.full(len(other), self.goss_weight)])
        keep = np.argsort(rows)
        return RowSample(rows[keep], weight[keep])

    def columns(self, counts: list[int], rng: np.random.Generator) -> list[np.ndarray]:
        """Per party (active first) the ascending column indices one tree may split on: a share
        ``colsample_bytree`` of all columns of all parties, at least one."""
        total = sum(counts)
        if self.colsample_bytree >= 1.0:
            return [np.arange(c) for c in counts]
        k = max(1, int(round(self.colsample_bytree * total)))
        chosen = np.sort(rng.choice(total, size=k, replace=False))
        bounds = np.concatenate([[0], np.cumsum(counts)])
        return [chosen[(chosen >= a) & (chosen < b)] - a for a, b in zip(bounds[:-1], bounds[1:])]


class EarlyStopping:
    """Stop when the validation loss has not improved by ``tol`` for ``patience`` trees; the
    model then keeps the trees up to the best one."""

    def __init__(self, patience: int, tol: float):
        self.patience, self.tol = patience, tol
        self.best, self.best_trees, self.stale = math.inf, 0, 0

    def update(self, loss: float, n_trees: int) -> bool:
        """Record the loss after ``n_trees`` trees; True when training should stop."""
        if loss < self.best - self.tol:
            self.best, self.best_trees, self.stale = loss, n_trees, 0
        else:
            self.stale += 1
        return self.stale >= self.patience
