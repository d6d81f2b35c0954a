"""Messages of the party runtime itself: job control.

Protocol messages (PSI, LR, SecureBoost) live in their own ``messages.py``; these carry only
job control, so a passive party can start, refuse and finish jobs, and any party can abort one.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from vfl.messages import Message


@dataclasses.dataclass(frozen=True)
class JobStart(Message):
    """Initiator → each participant: run the registered ``handler`` with ``params``."""

    KIND = "party.job_start"
    handler: str
    params: dict
    parties: tuple[str, ...]        # every participant, initiator first


@dataclasses.dataclass(frozen=True)
class JobReady(Message):
    """Participant → initiator: the job is accepted and its handler is running."""

    KIND = "party.job_ready"


@dataclasses.dataclass(frozen=True)
class JobDone(Message):
    """Participant → initiator: the handler returned ``result`` (plain data)."""

    KIND = "party.job_done"
    result: Any


@dataclasses.dataclass(frozen=True)
class JobAbort(Message):
    """Any party → every other participant: this party ended the job with an error.

    A receive that gets this raises :class:`vfl.errors.PeerFailedError`, whatever it expected.
    ``reason`` is the error's class and message only (no traceback, no data).
    """

    KIND = "party.job_abort"
    reason: str
