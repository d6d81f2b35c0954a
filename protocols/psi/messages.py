"""Every message of the PSI, shared by both roles.

Points travel as ``(n, 32)`` uint8 arrays (zero-copy frames on the wire), in chunks of at
most ``PsiSetup.chunk_size`` points: ``seq`` counts chunks from 0 and ``total`` is the number
of points in the whole stream, so a receiver knows when a stream ends and can check it.
"""
from __future__ import annotations

import dataclasses
import enum

import numpy as np

from protocols.messages import Message

PROTOCOL_VERSION = 2          # 2: the passive approves what the active will learn before it can


class PsiKind(str, enum.Enum):
    SETUP = "psi.setup"                    # active -> passives: job salt and options
    PASSIVE_MASKED = "psi.passive_masked"  # passive -> active: H(y)^b, shuffled
    ACTIVE_MASKED = "psi.active_masked"    # active -> passive: H(x)^a, shuffled
    REMASKED = "psi.remasked"              # active -> passive: H(y)^ab (its own order; shuffled if private)
    DOUBLE_MASKED = "psi.double_masked"    # passive -> active: H(x)^ab, same order as received
    ALIGNMENT = "psi.alignment"            # active -> passive: positions into its own stream
    ABORT = "psi.abort"                    # either way: the sender gave up (bad input)


@dataclasses.dataclass(frozen=True)
class PsiSetup(Message):
    KIND = PsiKind.SETUP.value
    version: int
    salt: bytes          # public per-job key of the id hash (domain separation, no reuse)
    private: bool        # True: passives learn only their alignment, not which ids matched
    chunk_size: int
    active_size: int     # |X|, declared before any passive sends anything (its policy may refuse)

    def __repr__(self) -> str:
        return (f"PsiSetup(version={self.version}, private={self.private}, chunk_size={self.chunk_size}, "
                f"active_size={self.active_size})")


@dataclasses.dataclass(frozen=True)
class _Points(Message):
    seq: int
    total: int
    points: np.ndarray   # (n, 32) uint8

    def __repr__(self) -> str:
        shape = getattr(self.points, "shape", None)
        return f"{type(self).__name__}(seq={self.seq}, total={self.total}, points={shape})"


@dataclasses.dataclass(frozen=True, repr=False)
class PsiPassiveMasked(_Points):
    KIND = PsiKind.PASSIVE_MASKED.value


@dataclasses.dataclass(frozen=True, repr=False)
class PsiActiveMasked(_Points):
    KIND = PsiKind.ACTIVE_MASKED.value


@dataclasses.dataclass(frozen=True, repr=False)
class PsiReMasked(_Points):
    KIND = PsiKind.REMASKED.value


@dataclasses.dataclass(frozen=True, repr=False)
class PsiDoubleMasked(_Points):
    KIND = PsiKind.DOUBLE_MASKED.value


@dataclasses.dataclass(frozen=True)
class PsiAlignment(Message):
    """Row ``i`` of the common order is the passive's point at ``positions[i]`` of its stream.

    ``size`` is the intersection size, or ``-1`` in private mode, where ``positions`` also
    holds filler rows the passive cannot tell from real ones.
    """

    KIND = PsiKind.ALIGNMENT.value
    positions: np.ndarray   # int64, into the passive's PsiPassiveMasked stream
    size: int

    def __repr__(self) -> str:
        return f"PsiAlignment(rows={len(self.positions)}, size={self.size})"


@dataclasses.dataclass(frozen=True)
class PsiAbort(Message):
    """The sender stopped (e.g. its table was rejected). ``reason`` never holds id values."""

    KIND = PsiKind.ABORT.value
    reason: str
