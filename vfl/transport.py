"""The one interface through which learning code talks to other parties.

Two implementations with identical behaviour live in ``parties``: an in-process one (threads
and queues; unit tests and notebooks) and a ZeroMQ one (real processes). Both run every
message through the same wire codec, so byte counts and validation are the same.
"""
from __future__ import annotations

import abc
import contextlib
import dataclasses
from typing import Iterable

from vfl.errors import error_category
from vfl.messages import M, Message


@dataclasses.dataclass
class PeerStats:
    """What crossed the link to one peer, seen from this party."""

    messages_sent: int = 0
    bytes_sent: int = 0
    messages_received: int = 0
    bytes_received: int = 0
    seconds_waiting: float = 0.0   # time spent blocked in recv on this peer

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class Transport(abc.ABC):
    """Send typed messages to named peers and receive them with a bounded wait.

    ``recv`` takes the expected message class (or a tuple of classes); a message of any other
    kind raises :class:`vfl.errors.UnexpectedMessageError` naming the expected kind, the
    received kind and the peer. A wait that exceeds ``timeout`` raises
    :class:`vfl.errors.PeerTimeoutError`. ``timeout=None`` uses the transport's default;
    there is no unbounded wait.
    """

    party: str
    job: str                          # the id of this run of the job (fresh for every run)
    # True where one user owns every party (in-process runs, `vfl run --local`): peers may then
    # see the full text of this party's errors. Between organisations they see a category only.
    share_error_details: bool = False

    @property
    @abc.abstractmethod
    def peers(self) -> list[str]:
        """Names of the other parties of this job."""

    @abc.abstractmethod
    def send(self, peer: str, message: Message) -> None:
        """Send ``message`` to ``peer``."""

    @abc.abstractmethod
    def recv(self, peer: str, kind: type[M] | tuple[type[Message], ...], timeout: float | None = None) -> M:
        """Receive the next message from ``peer``; it must be of ``kind``."""

    def broadcast(self, message: Message, peers: Iterable[str] | None = None) -> None:
        """Send the same message to several peers (default: all)."""
        for peer in (self.peers if peers is None else peers):
            self.send(peer, message)

    @abc.abstractmethod
    def stats(self) -> dict[str, PeerStats]:
        """Per-peer counters of messages, bytes and seconds."""

    def register_public_key(self, public_key) -> None:
        """Let this party decode ciphertexts under ``public_key`` (its own key, say)."""

    def public_reason(self, error: BaseException) -> str:
        """What this party may tell its peers about ``error``: its category, or its full text
        where ``share_error_details`` (the detail belongs in this party's own log)."""
        if self.share_error_details:
            return f"{type(error).__name__}: {error}"
        return f"{error_category(error)} error"

    def note(self, event: str, **fields) -> None:
        """Record ``event`` (with plain-data ``fields``) in this party's audit log, if it keeps one.

        For facts a compliance officer asks about that no message shows, e.g. which
        implementation computed the PSI. Never for secrets or customer data.
        """

    def in_phase(self, name: str):
        """Context manager: count what is sent inside it under phase ``name`` (e.g. "psi")."""
        return contextlib.nullcontext()

    def close(self) -> None:
        """Release resources. Idempotent."""
