"""Messages of the job flow around a model (the model's own messages live beside it)."""
from __future__ import annotations

import dataclasses

import numpy as np

from protocols.messages import Message


@dataclasses.dataclass(frozen=True)
class EvaluationSplit(Message):
    """Active → passives: positions (in the aligned order) of the training rows, in the order
    training uses them, and of the held-out rows."""
    KIND = "job.evaluation_split"
    train_index: np.ndarray
    test_index: np.ndarray


@dataclasses.dataclass(frozen=True)
class ResumeQuery(Message):
    """Active → passives, instead of the PSI when a run continues: the run, and the digest of
    the aligned ids and split every party recorded (:func:`vfl.checkpoint.alignment_digest`)."""
    KIND = "job.resume_query"
    run: str
    alignment: str


@dataclasses.dataclass(frozen=True)
class ResumeOffer(Message):
    """Passive → active: its alignment digest and the rounds it can continue from, as
    ``(first, last)`` rows (``last`` = -1: every later round)."""
    KIND = "job.resume_offer"
    alignment: str
    holds: np.ndarray


@dataclasses.dataclass(frozen=True)
class ResumeFrom(Message):
    """Active → passives: the round every party continues from (the last one all of them hold)."""
    KIND = "job.resume_from"
    round: int
