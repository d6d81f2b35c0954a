"""What both transports share: sequence numbers, inboxes, decoding, stats, audit, aborts.

An implementation only moves ``(header, raw frames)`` between parties (``_transmit``) and says
whether a peer is still alive (``_check_alive``); everything a peer can observe — bytes,
validation, errors — is decided here, once.
"""
from __future__ import annotations

import contextlib
import logging
import queue
import secrets
import threading
import time
from typing import Callable, Iterable, TypeVar

from parties.runtime.audit import AuditLog
from parties.runtime.errors import WireError
from parties.transport import codec
from parties.transport.messages import JobAbort
from vfl.errors import PeerFailedError, PeerTimeoutError, UnexpectedMessageError, error_category
from vfl.messages import Message
from vfl.transport import PeerStats, Transport

wire_log = logging.getLogger("parties.wire")
T = TypeVar("T")
_POLL = 0.1          # how often a blocked recv re-checks the peer's liveness


class JobInbox:
    """Received messages of one job, per peer, in order; replays and gaps are dropped."""

    def __init__(self, job: str, peers: Iterable[str], *, first_seq: dict[str, int] | None = None,
                 max_queued_bytes: int = 4 << 30):
        self.job = job
        self._queues = {p: queue.Queue() for p in peers}
        self._expected = {p: 0 for p in self._queues}
        self._expected.update(first_seq or {})
        self._queued = {p: 0 for p in self._queues}     # bytes received but not yet consumed
        self.max_queued_bytes = max_queued_bytes
        self._lock = threading.Lock()
        self.rejected = 0

    def deliver(self, peer: str, header: codec.Header, raws: list) -> bool:
        """Queue a message whose header was validated; False (and logged) if out of sequence."""
        with self._lock:
            expected = self._expected.get(peer)
            if expected is None:
                return self.reject(peer, f"{peer} is not a party of job {self.job}")
            if header.seq != expected:
                what = "replayed" if header.seq < expected else "out-of-order"
                return self.reject(peer, f"{what} {header.kind} (seq {header.seq}, expected {expected})")
            if self._queued[peer] + header.size > self.max_queued_bytes:
                return self.reject(peer, f"{header.kind} would queue more than {self.max_queued_bytes} unread bytes")
            self._expected[peer] = expected + 1
            self._queued[peer] += header.size
        self._queues[peer].put((header, raws))
        return True

    def reject(self, peer: str, reason: str) -> bool:
        self.rejected += 1
        wire_log.error("rejected message from %s in job %s: %s", peer, self.job, reason)
        return False

    def get(self, peer: str, timeout: float):
        try:
            item = self._queues[peer].get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None
        with self._lock:
            self._queued[peer] -= item[0].size
        return item


class LinkTransport(Transport):
    """Job-scoped transport over an inbox; subclasses implement ``_transmit``."""

    def __init__(self, party: str, job: str, peers: Iterable[str], *, keyring: codec.Keyring,
                 limits: codec.CodecLimits, timeout: float = 60.0, audit: AuditLog | None = None,
                 share_error_details: bool = False):
        self.party, self.job, self.share_error_details = party, job, share_error_details
        self._peers = [p for p in peers if p != party]
        self.keyring, self.limits, self.timeout, self.audit = keyring, limits, timeout, audit
        self.inbox = JobInbox(job, self._peers, max_queued_bytes=2 * limits.max_message_bytes)
        self._stats = {p: PeerStats() for p in self._peers}
        self._next_seq = {p: 0 for p in self._peers}
        self._lock = threading.Lock()
        self.phase: str | None = None
        self.closed = False

    @property
    def peers(self) -> list[str]:
        return list(self._peers)

    def register_public_key(self, public_key) -> None:
        """Make ciphertexts under ``public_key`` decodable when they arrive."""
        self.keyring.register(public_key)

    def public_reason(self, error: BaseException) -> str:
        """What peers are told (a protocol's own abort message too): :func:`failure_notice`."""
        return failure_notice(self, error)

    def note(self, event: str, **fields) -> None:
        if self.audit is not None:
            self.audit.event(job=self.job, event=event, **fields)

    @contextlib.contextmanager
    def in_phase(self, name: str):
        """Label messages sent inside the block with phase ``name`` in the audit log."""
        previous, self.phase = self.phase, name
        try:
            yield self
        finally:
            self.phase = previous

    # -- sending ----------------------------------------------------------------------------
    def send(self, peer: str, message: Message) -> None:
        self._send_message(peer, message)

    def _send_message(self, peer: str, message: Message, *, urgent: bool = False) -> None:
        self._require_peer(peer)
        with self._lock:
            seq = self._next_seq[peer]
            self._next_seq[peer] = seq + 1
        header, raws = codec.encode(message, job=self.job, seq=seq)
        size = codec.wire_size(header, raws)
        if size > self.limits.max_message_bytes:
            raise ValueError(f"{message.KIND} of {size} bytes exceeds the {self.limits.max_message_bytes}-byte "
                             "message limit; split it")
        if self.audit is not None:      # written ahead: the log never misses a message that left
            self.audit.record(job=self.job, peer=peer, kind=message.KIND, seq=seq, nbytes=size,
                              phase=self.phase or message.KIND.split(".")[0], sha256=codec.digest(header, raws))
        self._transmit(peer, header, raws, urgent=urgent)
        with self._lock:
            self._stats[peer].messages_sent += 1
            self._stats[peer].bytes_sent += size

    def _transmit(self, peer: str, header: bytes, raws: list, *, urgent: bool = False) -> None:
        """Deliver one encoded message; ``urgent`` sends must not block."""
        raise NotImplementedError

    # -- receiving --------------------------------------------------------------------------
    def recv(self, peer: str, kind, timeout: float | None = None):
        self._require_peer(peer)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        expected = "/".join(k.KIND for k in kinds)
        limit = self.timeout if timeout is None else timeout
        start = time.monotonic()
        deadline = start + limit
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PeerTimeoutError(peer=peer, waiting_for=expected, timeout=limit)
                item = self.inbox.get(peer, min(remaining, _POLL))
                if item is None:
                    self._check_alive(peer, expected)
                    continue
                message = self._decode(peer, *item)
                if message is not None:
                    return self._check_kind(peer, message, kinds, expected)
        finally:
            with self._lock:
                self._stats[peer].seconds_waiting += time.monotonic() - start

    def _decode(self, peer: str, header: codec.Header, raws: list) -> Message | None:
        try:
            message = codec.decode(header, raws, self.keyring)
        except WireError as exc:
            self.inbox.reject(peer, str(exc))
            return None
        with self._lock:
            self._stats[peer].messages_received += 1
            self._stats[peer].bytes_received += header.size
        return message

    @staticmethod
    def _check_kind(peer: str, message: Message, kinds: tuple, expected: str) -> Message:
        if isinstance(message, kinds):
            return message
        if isinstance(message, JobAbort):
            raise PeerFailedError(peer=peer, reason=message.reason)
        raise UnexpectedMessageError(expected=expected, received=message.KIND, peer=peer)

    def _check_alive(self, peer: str, waiting_for: str) -> None:
        """Raise if ``peer`` is known to be gone (heartbeats stopped, process closed)."""

    def _require_peer(self, peer: str) -> None:
        if peer not in self._stats:
            raise ValueError(f"{peer!r} is not a party of job {self.job} (parties: {', '.join(self._peers)})")

    def stats(self) -> dict[str, PeerStats]:
        with self._lock:
            return {p: PeerStats(**s.as_dict()) for p, s in self._stats.items()}

    # -- failure ----------------------------------------------------------------------------
    def abort(self, reason: str, peers: Iterable[str] | None = None) -> None:
        """Tell peers this party ended the job; best effort, never raises."""
        for peer in (self._peers if peers is None else peers):
            try:
                self._send_message(peer, JobAbort(reason=reason[:300]), urgent=True)
            except Exception as exc:           # the peer may be the reason we abort
                wire_log.debug("could not send abort to %s: %s", peer, exc)


def failure_notice(transport: LinkTransport, exc: BaseException) -> str:
    """Log ``exc`` in full under a fresh error id, in this party's own log, and return what its
    peers are told: "<party>: <category> error, id <id>" — or the full text where one user owns
    every party (``share_error_details``). The id is kept on the exception (``error_id``)."""
    error_id = getattr(exc, "error_id", None)
    detail = f"{type(exc).__name__}: {exc}"
    if error_id is None:                 # logged once, under one id, however often it is reported
        error_id = secrets.token_hex(4)
        try:
            exc.error_id = error_id
        except AttributeError:           # an exception type that takes no attributes
            pass
        wire_log.error("%s: job %s stopped, error %s: %s", transport.party, transport.job, error_id, detail)
    if transport.share_error_details:
        return detail
    return f"{transport.party}: {error_category(exc)} error, id {error_id} (the detail is in {transport.party}'s log)"


def run_role(transport: LinkTransport, role: Callable[[LinkTransport], T]) -> T:
    """Run one party's role; on any error tell every peer (so they fail fast) and re-raise."""
    try:
        return role(transport)
    except BaseException as exc:
        notice = failure_notice(transport, exc)
        if not isinstance(exc, PeerFailedError):
            transport.abort(notice)
        else:                           # tell the others, not the peer that already failed
            transport.abort(notice, [p for p in transport.peers if p != exc.peer])
        raise
