"""Who learns which block of the correlation matrix, from a job's ``[reveal]`` section.

Block (i, j) holds the correlations of party i's columns with party j's. It is revealed to
every party in ``receivers`` (default: all of them) that owns columns of it, and to every
party in ``full_matrix`` (default: none). A party's own block (i, i) it computes alone; it
goes to the ``full_matrix`` parties only.
"""
from __future__ import annotations

import dataclasses

DEFAULT_RECEIVERS = None        # every party of the job


@dataclasses.dataclass(frozen=True)
class RevealPlan:
    parties: tuple[str, ...]
    receivers: tuple[str, ...]
    full_matrix: tuple[str, ...]

    @classmethod
    def from_section(cls, section: dict | None, parties) -> "RevealPlan":
        section = section or {}
        check_section(section)
        parties = tuple(parties)
        receivers = tuple(section.get("receivers", parties))
        full = tuple(section.get("full_matrix", ()))
        unknown = sorted((set(receivers) | set(full)) - set(parties))
        if unknown:
            raise ValueError(f"[reveal] names {unknown}, which are not parties of the job {list(parties)}")
        return cls(parties, receivers, full)

    def block_receivers(self, i: str, j: str) -> list[str]:
        """The parties that learn block (i, j), in session order."""
        owners = {i, j}
        chosen = {p for p in self.receivers if p in owners} | set(self.full_matrix)
        if i == j:
            chosen = set(self.full_matrix) - {i}
        return [p for p in self.parties if p in chosen]

    def learners_of(self, party: str) -> set[str]:
        """Every other party that learns a correlation involving ``party``'s columns."""
        out = set()
        for other in self.parties:
            out |= set(self.block_receivers(party, other))
        return out - {party}


def check_section(section: dict) -> None:
    unknown = sorted(set(section) - {"receivers", "full_matrix"})
    if unknown:
        raise ValueError(f"unknown keys {unknown} (known: ['full_matrix', 'receivers'])")
    for key in ("receivers", "full_matrix"):
        value = section.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(set(value)) != len(value):
            raise ValueError(f"{key} must be a list of distinct party names, got {value!r}")
