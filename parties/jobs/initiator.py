"""The initiator's side of a job: ask peers to run a handler, run its own role, collect results."""
from __future__ import annotations

import dataclasses
import secrets
from typing import Any, Callable

from parties.runtime.errors import JobRejectedError
from parties.transport.link import LinkTransport, failure_notice, run_role
from parties.transport.messages import JobDone, JobReady, JobStart
from vfl.errors import PeerFailedError


@dataclasses.dataclass
class JobResult:
    job: str
    result: Any                       # what the initiator's role returned
    peer_results: dict[str, Any]      # what each passive handler returned
    stats: dict


def start_job(node, handler: str, params: dict, peers: list[str], *, timeout: float | None = None) -> LinkTransport:
    """Ask ``peers`` to run ``handler``; returns this party's transport once all accepted.

    Raises :class:`JobRejectedError` naming the peer and its reason if one refuses.
    """
    job = secrets.token_hex(8)
    parties = (node.name, *peers)
    transport = node.open_job(job, parties)
    try:
        for peer in peers:
            transport.send(peer, JobStart(handler=handler, params=params, parties=parties))
        for peer in peers:
            try:
                transport.recv(peer, JobReady, timeout=timeout)
            except PeerFailedError as exc:
                raise JobRejectedError(f"{peer} refused job {handler!r}: {exc.reason}") from None
    except BaseException as exc:
        transport.abort(failure_notice(transport, exc))
        transport.close()
        raise
    return transport


def run_job(node, handler: str, params: dict, peers: list[str], role: Callable[[LinkTransport], Any] | None = None,
            *, timeout: float | None = None) -> JobResult:
    """Start a job, run the initiator's ``role`` over its transport, collect every JobDone."""
    transport = start_job(node, handler, params, peers, timeout=timeout)
    try:
        result = run_role(transport, role) if role is not None else None
        done = {p: transport.recv(p, JobDone, timeout=timeout).result for p in peers}
        return JobResult(transport.job, result, done, {p: s.as_dict() for p, s in transport.stats().items()})
    finally:
        transport.close()
