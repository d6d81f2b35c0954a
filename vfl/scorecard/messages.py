"""Messages of the scorecard pipeline (binning, correlation and regression reuse their own)."""
from __future__ import annotations

import dataclasses

import numpy as np

from protocols.messages import Message

PROTOCOL_VERSION = 1


@dataclasses.dataclass(frozen=True)
class ScorecardSetup(Message):
    """Active → passives: the job's parties in order, the points scaling and how many reason
    codes a prediction asks for; whether selection correlates features."""

    KIND = "scorecard.setup"
    version: int
    parties: list[str]
    n_rows: int
    pdo: float
    base_score: float
    base_odds: float
    reason_codes: int
    correlate: bool


@dataclasses.dataclass(frozen=True)
class ScorecardReady(Message):
    """Passive → active: the fewest of its features it lets a scorecard use (a single one would
    make its per-row points its bin) and whether it names its features in reason codes."""

    KIND = "scorecard.ready"
    min_features: int
    share_reasons: bool


@dataclasses.dataclass(frozen=True)
class Candidates(Message):
    """Active → a passive (when selection correlates): which of its columns (by position) go into
    the correlation, the fixed point, every party's candidate count and who holds each pair's key."""

    KIND = "scorecard.candidates"
    columns: np.ndarray
    frac_bits: int
    counts: dict[str, int]
    holders: list[str]
    multipliers: list[list[str]]


@dataclasses.dataclass(frozen=True)
class Selection(Message):
    """Active → a passive: the positions of its columns the scorecard keeps (none: it takes no
    part in the regression and scores zero points)."""

    KIND = "scorecard.selection"
    columns: np.ndarray


@dataclasses.dataclass(frozen=True)
class PassiveCard(Message):
    """Passive → active, once fitted: the most points its features can give (for reason codes
    that name the passive as a whole) and, if it shares reasons, its kept features' names."""

    KIND = "scorecard.card"
    max_points: float
    names: list[str]


@dataclasses.dataclass(frozen=True)
class PointsRequest(Message):
    """Active → passives: send your points for these rows (and up to ``reasons`` reason codes)."""

    KIND = "scorecard.points_request"
    n_rows: int
    reasons: int


@dataclasses.dataclass(frozen=True)
class PartialPoints(Message):
    """Passive → active: its points per row; where it shares reasons, per row its features
    (by position in its kept features; −1: none) that cost the most points, and how many."""

    KIND = "scorecard.points"
    points: np.ndarray
    reason_features: np.ndarray
    reason_points: np.ndarray
