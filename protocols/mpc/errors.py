"""Errors of the secret-sharing engine."""
from __future__ import annotations

from protocols.mpc.ring import RingError


class MpcError(Exception):
    """Base class of the engine's deliberate errors."""


class MpcProtocolError(MpcError):
    """A peer's message does not fit the protocol (wrong tag, layout, size or key)."""

    category = "protocol"


class TripleBudgetError(MpcError):
    """An operation needs more correlated randomness (triples) than was generated for it."""

    category = "internal"


RingError.category = "data"

__all__ = ["MpcError", "MpcProtocolError", "RingError", "TripleBudgetError"]
