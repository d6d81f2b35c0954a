"""Errors of the learning layer and of cross-party exchanges."""
from __future__ import annotations


class VFLError(Exception):
    """Base class of every error this engine raises on purpose."""


class ProtocolError(VFLError):
    """A peer sent something the protocol does not allow at this point."""


class UnexpectedMessageError(ProtocolError):
    """A receive got a message of another kind than the protocol step expects."""

    def __init__(self, *, expected: str, received: str, peer: str):
        self.expected, self.received, self.peer = expected, received, peer
        super().__init__(f"expected {expected}, received {received} from {peer}")


class PeerTimeoutError(VFLError):
    """A peer did not answer in time (dead, stalled or unreachable)."""

    def __init__(self, *, peer: str, waiting_for: str, timeout: float):
        self.peer, self.waiting_for, self.timeout = peer, waiting_for, timeout
        super().__init__(f"no {waiting_for} from {peer} within {timeout:g} s (peer gone or stalled)")


class PeerFailedError(VFLError):
    """A peer reported that it aborted the job."""

    def __init__(self, *, peer: str, reason: str):
        self.peer, self.reason = peer, reason
        super().__init__(f"{peer} aborted the job: {reason}")


class NotFittedError(VFLError, ValueError):
    """A model method that needs ``fit`` was called before it."""


class DataError(VFLError, ValueError):
    """A party's input data is unusable; the message names the party and the column."""
