"""Built-in jobs: ``echo`` (round trips, payload digests, slow peers), used by tests and demos."""
from __future__ import annotations

import dataclasses
import hashlib
import time
from typing import Any

import numpy as np

from parties.jobs.registry import JobContext, register_job
from parties.runtime.errors import JobRejectedError
from protocols.paillier import EncryptedVector
from vfl.messages import Message


@dataclasses.dataclass(frozen=True)
class Echo(Message):
    """Built-in ``echo`` job: the passive sends ``data`` back unchanged."""

    KIND = "party.echo"
    round: int
    data: Any


@dataclasses.dataclass(frozen=True)
class EchoDigest(Message):
    """Built-in ``echo`` job in digest mode: sha256 and size of what arrived, not the data."""

    KIND = "party.echo_digest"
    round: int
    sha256: str
    nbytes: int


@register_job("echo")
def echo(ctx: JobContext) -> dict:
    """Receive ``rounds`` Echo messages from the initiator and answer each one.

    params: ``rounds`` (1..100000, default 1), ``mode`` ("echo" sends the data back, "digest"
    sends its sha256 and size), ``delay`` (seconds to sleep before each answer, <= 60).
    """
    rounds, mode, delay = ctx.params.get("rounds", 1), ctx.params.get("mode", "echo"), ctx.params.get("delay", 0)
    if not isinstance(rounds, int) or not 0 < rounds <= 100_000 or mode not in ("echo", "digest") \
            or not isinstance(delay, (int, float)) or not 0 <= delay <= 60:
        raise JobRejectedError(f"bad echo params {ctx.params!r}")
    nbytes = 0
    for i in range(rounds):
        message = ctx.transport.recv(ctx.initiator, Echo)
        if delay:
            time.sleep(delay)
        if mode == "echo":
            ctx.transport.send(ctx.initiator, Echo(round=i, data=message.data))
        else:
            digest, size = payload_digest(message.data)
            nbytes += size
            ctx.transport.send(ctx.initiator, EchoDigest(round=i, sha256=digest, nbytes=size))
    return {"rounds": rounds, "bytes": nbytes}


def payload_digest(data) -> tuple[str, int]:
    """sha256 and size of an array's, bytes' or encrypted vector's raw content."""
    if isinstance(data, EncryptedVector):
        data = data.to_bytes(obfuscate=False)
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data)
    view = memoryview(data).cast("B") if isinstance(data, (bytes, bytearray, np.ndarray)) else None
    if view is None:
        raise JobRejectedError(f"digest mode needs bytes, an array or an encrypted vector, got {type(data).__name__}")
    return hashlib.sha256(view).hexdigest(), view.nbytes
