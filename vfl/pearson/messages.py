"""Messages of hetero Pearson correlation (the shares themselves travel as :mod:`protocols.mpc` messages)."""
from __future__ import annotations

import dataclasses

from protocols.messages import Message

PROTOCOL_VERSION = 1


@dataclasses.dataclass(frozen=True)
class PearsonSetup(Message):
    """Active → passives: the session's parties in order, the rows, the fixed point and who
    receives which blocks (as the job's ``[reveal]`` section says)."""

    KIND = "pearson.setup"
    version: int
    parties: list[str]
    n_rows: int
    frac_bits: int
    receivers: list[str]
    full_matrix: list[str]


@dataclasses.dataclass(frozen=True)
class PearsonReady(Message):
    """Passive → active: accepted; the names of the columns it correlates (they name the blocks
    of the parties that receive them, as they name the passive's part in the job report)."""

    KIND = "pearson.ready"
    features: list[str]


@dataclasses.dataclass(frozen=True)
class PearsonNames(Message):
    """Active → a passive: the column names of the parties whose blocks it will receive, and
    which party holds the key of each pair's cross product (``holders[k]`` with each of
    ``multipliers[k]``)."""

    KIND = "pearson.names"
    features: dict[str, list[str]]
    counts: dict[str, int]              # every party's column count (the shapes of every block)
    holders: list[str]
    multipliers: list[list[str]]
