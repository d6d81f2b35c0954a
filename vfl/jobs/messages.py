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
