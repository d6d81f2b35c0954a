"""In-process transport: every party in one Python process (unit tests, notebooks).

Messages still go through the wire codec — encoded, copied as bytes, header-checked and
decoded by the receiver — so byte counts, validation and errors match the ZeroMQ transport.
A closed party behaves like a dead process: its peers' receives fail with
:class:`parties.runtime.errors.PeerSilentError`.

Example::

    net = InProcessNetwork(["bank", "insurer"])
    results = net.run({"bank": active_role, "insurer": passive_role})
"""
from __future__ import annotations

import secrets
import threading
import time
from typing import Callable, Iterable

from parties.runtime.audit import AuditLog
from parties.runtime.errors import PeerSilentError, WireError
from parties.transport import codec
from parties.transport.link import LinkTransport, run_role
from vfl.errors import PeerFailedError, PeerTimeoutError


class InProcessTransport(LinkTransport):
    """One party's end of an :class:`InProcessNetwork`."""

    def __init__(self, network: "InProcessNetwork", party: str, *, record: bool = False, **kwargs):
        super().__init__(party, network.job, network.parties, **kwargs)
        self._network = network
        self.received: list[tuple[str, object]] | None = [] if record else None

    def recv(self, peer: str, kind, timeout: float | None = None):
        message = super().recv(peer, kind, timeout)
        if self.received is not None:
            self.received.append((peer, message))
        return message

    def _transmit(self, peer: str, header: bytes, raws: list, *, urgent: bool = False) -> None:
        self._network.deliver(self.party, peer, bytes(header), [bytes(memoryview(r)) for r in raws])

    def _check_alive(self, peer: str, waiting_for: str) -> None:
        closed_at = self._network.closed_at(peer)
        if closed_at is not None:
            raise PeerSilentError(peer=peer, waiting_for=waiting_for, silent_for=time.monotonic() - closed_at)

    def close(self) -> None:
        self._network.mark_closed(self.party)


class InProcessNetwork:
    """A set of in-process transports, one per party, for one job."""

    def __init__(self, parties: Iterable[str], *, job: str | None = None, timeout: float = 30.0,
                 limits: codec.CodecLimits | None = None, audit_dir: str | None = None, record: bool = False):
        """``record=True`` keeps every message each party received, decoded, in
        ``network[party].received`` as (sender, message): what that party actually saw."""
        self.parties = list(parties)
        if len(set(self.parties)) != len(self.parties) or len(self.parties) < 2:
            raise ValueError("an in-process network needs at least two distinct party names")
        self.job = job or secrets.token_hex(8)
        self._closed: dict[str, float] = {}
        self._lock = threading.Lock()
        limits = limits or codec.CodecLimits()
        self.transports = {
            name: InProcessTransport(self, name, record=record, keyring=codec.Keyring(), limits=limits, timeout=timeout,
                                     audit=AuditLog(f"{audit_dir}/{name}.audit.jsonl", name) if audit_dir else None,
                                     share_error_details=True)        # one process, one user
            for name in self.parties}

    def __getitem__(self, party: str) -> InProcessTransport:
        return self.transports[party]

    def deliver(self, sender: str, peer: str, header: bytes, raws: list) -> None:
        if self.closed_at(peer) is not None:
            return                      # like a dead process: the bytes go nowhere
        receiver = self.transports[peer]
        try:
            parsed = codec.parse_header(header, receiver.limits)
        except WireError as exc:
            receiver.inbox.reject(sender, str(exc))
            return
        if parsed.job != self.job:
            receiver.inbox.reject(sender, f"message for unknown job {parsed.job!r}")
            return
        receiver.inbox.deliver(sender, parsed, raws)

    def closed_at(self, party: str) -> float | None:
        with self._lock:
            return self._closed.get(party)

    def mark_closed(self, party: str) -> None:
        with self._lock:
            self._closed.setdefault(party, time.monotonic())

    def run(self, roles: dict[str, Callable], timeout: float | None = None) -> dict:
        """Run each party's role in its own thread; return results or raise the first error.

        A role that raises tells its peers (``JobAbort``), so they fail fast with
        ``PeerFailedError`` instead of waiting out their timeouts.
        """
        unknown = set(roles) - set(self.parties)
        if unknown:
            raise ValueError(f"roles for unknown parties: {sorted(unknown)}")
        results, errors = {}, {}

        def target(name: str) -> None:
            try:
                results[name] = run_role(self.transports[name], roles[name])
            except BaseException as exc:
                errors[name] = exc
                self.mark_closed(name)

        threads = {n: threading.Thread(target=target, args=(n,), name=f"party-{n}", daemon=True) for n in roles}
        for t in threads.values():
            t.start()
        bound = timeout if timeout is not None else 4 * max(t.timeout for t in self.transports.values())
        deadline = time.monotonic() + bound
        for name, t in threads.items():
            t.join(max(deadline - time.monotonic(), 0.0))
            if t.is_alive():
                raise PeerTimeoutError(peer=name, waiting_for="role to finish", timeout=bound)
        if errors:
            raise _first_cause(errors)
        return results


def _first_cause(errors: dict) -> BaseException:
    """Prefer the original failure over the PeerFailed/Timeout errors it caused elsewhere."""
    for exc in errors.values():
        if not isinstance(exc, (PeerFailedError, PeerTimeoutError)):
            return exc
    return next(iter(errors.values()))


def local_transports(parties: Iterable[str], **kwargs) -> dict[str, InProcessTransport]:
    """``{name: transport}`` for parties that share this process (see :class:`InProcessNetwork`)."""
    return InProcessNetwork(parties, **kwargs).transports
