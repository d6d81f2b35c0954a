"""What a job produces, as types: the active party's training result, a passive's, a baseline,
and the predictions. :mod:`vfl.report` turns them into report.json, plots and a summary."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from vfl.errors import ProtocolError
from vfl.family import TrainingSummary


@dataclasses.dataclass(frozen=True)
class Scores:
    """Raw scores of some rows beside their truth (for metrics and ROC curves; never in report.json)."""

    truth: np.ndarray
    scores: np.ndarray


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Metrics of a model on the held-out rows or, when the job held none out, on its training rows."""

    training_metrics: dict | None   # only when no rows were held out
    metrics: dict | None            # held-out rows; None when the job held none out
    test: Scores | None
    figures: dict = dataclasses.field(default_factory=dict)   # the family's (ModelFamily.evaluation_figures)


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    """The active party's side of a training job."""

    job: str
    model: str
    n_intersection: int
    train_ids: list
    test_ids: list
    features: dict[str, list[str]]   # this party's own feature names
    summary: TrainingSummary
    evaluation: Evaluation | None    # None for families that train no scoring model
    seconds: dict[str, float]        # psi, train, total
    run: str | None = None           # the job's id: every party stores its part under it
    part_digest: str | None = None   # sha256 of this party's model part
    resumed_from: int | None = None  # a resumed run: the round (epoch, tree) it continued from
    privacy: dict | None = None      # [privacy]: ε, δ, the mechanism, its accounting (vfl.privacy)

    @property
    def n_train(self) -> int:
        return len(self.train_ids)

    @property
    def n_test(self) -> int:
        return len(self.test_ids)


@dataclasses.dataclass(frozen=True)
class PassiveResult:
    """What a passive reports back when its side of a training job ends (plain data on the wire)."""

    rows: int
    features: list[str]
    part_digest: str | None = None     # sha256 of the model part it saved (for the manifest)
    figures: dict = dataclasses.field(default_factory=dict)   # ModelFamily.passive_figures (timings)

    def to_wire(self) -> dict:
        out = {"rows": self.rows, "features": list(self.features), "part_digest": self.part_digest}
        return {**out, "figures": self.figures} if self.figures else out

    @classmethod
    def from_wire(cls, peer: str, raw) -> "PassiveResult":
        ok = isinstance(raw, dict) and isinstance(raw.get("rows"), int) and isinstance(raw.get("features"), list) \
            and all(isinstance(f, str) for f in raw["features"]) \
            and (raw.get("part_digest") is None or _is_digest(raw["part_digest"])) \
            and _is_figures(raw.get("figures", {}))
        if not ok:
            raise ProtocolError(f"{peer} reported its part of the job in an unexpected form")
        return cls(raw["rows"], list(raw["features"]), raw.get("part_digest"), dict(raw.get("figures", {})))


def _is_figures(value, depth: int = 0, budget: list | None = None) -> bool:
    """Plain figures: tables of names to numbers (or tables of them), at most 3 deep and 1000 values."""
    budget = [1000] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        return False
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return depth > 0
    return isinstance(value, dict) and depth < 3 and all(
        isinstance(k, str) and len(k) <= 64 and _is_figures(v, depth + 1, budget) for k, v in value.items())


def _is_digest(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


@dataclasses.dataclass(frozen=True)
class Baseline:
    """The same family trained centrally on the joined table, with the job's split."""

    model: str
    n_rows: int
    evaluation: Evaluation
    training_loss: float | None = None     # the family's loss on the training rows (its optimum's)


@dataclasses.dataclass(frozen=True)
class PredictionResult:
    """The active party's side of a prediction job: only it sees the scores."""

    job: str
    n_input: int
    predictions: pd.DataFrame

    @property
    def n_scored(self) -> int:
        return len(self.predictions)
