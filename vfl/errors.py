"""Errors of the learning layer and of cross-party exchanges.

Every error has a ``category``: what another organisation is told when this party stops a job
because of it (with an error id; the detail stays in this party's log, see
:meth:`vfl.transport.Transport.public_reason`).
"""
from __future__ import annotations


class VFLError(Exception):
    """Base class of every error this engine raises on purpose."""

    category = "internal"


class ProtocolError(VFLError):
    """A peer sent something the protocol does not allow at this point."""

    category = "protocol"


class UnexpectedMessageError(ProtocolError):
    """A receive got a message of another kind than the protocol step expects."""

    def __init__(self, *, expected: str, received: str, peer: str):
        self.expected, self.received, self.peer = expected, received, peer
        super().__init__(f"expected {expected}, received {received} from {peer}")


class PeerTimeoutError(VFLError):
    """A peer did not answer in time (dead, stalled or unreachable)."""

    category = "timeout"

    def __init__(self, *, peer: str, waiting_for: str, timeout: float):
        self.peer, self.waiting_for, self.timeout = peer, waiting_for, timeout
        super().__init__(f"no {waiting_for} from {peer} within {timeout:g} s (peer gone or stalled)")


class PeerFailedError(VFLError):
    """A peer reported that it aborted the job."""

    category = "peer stopped"

    def __init__(self, *, peer: str, reason: str):
        self.peer, self.reason = peer, reason
        super().__init__(f"{peer} aborted the job: {reason}")


class NotFittedError(VFLError, ValueError):
    """A model method that needs ``fit`` was called before it."""

    category = "usage"


class DataError(VFLError, ValueError):
    """A party's input data is unusable; the message names the party and the column."""

    category = "data"


def error_category(exc: BaseException) -> str:
    """The category of any exception: its own ``category`` (this engine's errors and the
    protocol layer's carry one), else "internal"."""
    category = getattr(exc, "category", None)
    return category if isinstance(category, str) and category else "internal"
