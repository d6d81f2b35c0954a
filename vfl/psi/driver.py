"""Runs the PSI roles of :mod:`protocols.psi` over a :class:`~vfl.transport.Transport`.

The round loop lives here and only here: each function below moves the messages of one role.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Callable

import numpy as np
import pandas as pd
from tqdm import tqdm

from protocols.psi import (
    DEFAULT_CHUNK,
    ActivePsi,
    PassivePsi,
    PsiAbort,
    PsiAlignment,
    PsiError,
    PsiLimits,
    PsiPassiveMasked,
    PsiProtocolError,
    PsiSetup,
    Reveal,
)
from protocols.psi.group import backend
from vfl.errors import PeerFailedError, ProtocolError, VFLError
from vfl.psi.ids import encode_ids, normalize_ids
from vfl.transport import Transport

DEFAULT_TIMEOUT = 600.0      # seconds per wait for a peer: a 10^6-id peer computes for ~1 min
PROGRESS_MIN = 100_000       # show a progress bar by default from this many ids on


@dataclasses.dataclass(frozen=True)
class PsiReport:
    """What one party can say about the run. ``size`` is None for a passive in private mode."""

    party: str
    role: str
    n_input: int
    n_rows: int
    size: int | None
    private: bool
    seconds: float
    matched: dict[str, int] | None = None   # active only: per passive, how many active ids it has
    backend: str = dataclasses.field(default_factory=backend)   # what multiplied the curve points

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Disclosure:
    """What finishing a PSI would let the active party learn of a passive's ids: ``count`` of
    them, and which (``ids``, encoded) unless the PSI is private."""

    count: int
    n_own: int
    ids: list[bytes] | None


@dataclasses.dataclass(frozen=True)
class PsiPolicy:
    """A passive party's terms for one PSI: its ``limits`` (checked by the protocol role as
    the values arrive) and ``approve(disclosure)``, its own last word (e.g. a cumulative
    ledger per peer), called before it sends what reveals its ids; it raises to refuse."""

    limits: PsiLimits = dataclasses.field(default_factory=PsiLimits)
    approve: Callable[[Disclosure], None] | None = None


@dataclasses.dataclass(frozen=True)
class AlignResult:
    """This party's rows in the common order (row ``i`` is the same customer at every party).

    ``frame`` has a fresh RangeIndex; ``rows`` are the original positions of its rows. For the
    active party in private mode, ``frame`` holds only the matched rows and ``positions``
    says which of the ``report.n_rows`` common rows they are (``mask`` as a boolean vector);
    the passives' frames then have ``n_rows`` rows, the others being fillers.
    """

    frame: pd.DataFrame
    rows: np.ndarray
    positions: np.ndarray
    report: PsiReport

    @property
    def mask(self) -> np.ndarray:
        out = np.zeros(self.report.n_rows, dtype=bool)
        out[self.positions] = True
        return out


def _bar(total: int, progress: bool | None, desc: str):
    enabled = total >= PROGRESS_MIN if progress is None else progress
    return tqdm(total=total, unit="ids", desc=desc, disable=not enabled, leave=False)


def _recv(transport: Transport, peer: str, kind, timeout: float):
    msg = transport.recv(peer, (kind, PsiAbort), timeout=timeout)
    if isinstance(msg, PsiAbort):
        raise PeerFailedError(peer=peer, reason=msg.reason)
    return msg


def _abort(transport: Transport, peers, error: Exception) -> None:
    """Tell peers we stopped, best effort (they may be gone already): what the transport lets
    cross to them (the error's category between organisations)."""
    reason = transport.public_reason(error)
    for peer in peers:
        with contextlib.suppress(Exception):
            transport.send(peer, PsiAbort(reason=reason))


def _select(df: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    return df.iloc[rows].reset_index(drop=True)


def align_active(transport: Transport, df: pd.DataFrame, id_column, *, passives=None,
                 private: bool = False, chunk_size: int = DEFAULT_CHUNK, workers: int | None = None,
                 timeout: float = DEFAULT_TIMEOUT, progress: bool | None = None) -> AlignResult:
    """The active party's side: intersect with every passive (default: all peers).

    ``private=True``: passives learn only that their rows are aligned (see :mod:`protocols.psi`).
    Raises :class:`~vfl.errors.DataError` for bad input (and tells the passives),
    :class:`~vfl.errors.PeerFailedError` if a passive gave up.
    """
    start = time.perf_counter()
    passives = list(transport.peers if passives is None else passives)
    transport.note("psi", backend=backend())
    try:
        ids = encode_ids(normalize_ids(df, id_column, transport.party))
        role = ActivePsi(ids, passives, private=private, chunk_size=chunk_size, workers=workers,
                         name=transport.party)
        outcome, alignments = _run_active(transport, role, len(ids), timeout, progress)
    except (VFLError, PsiError) as error:
        _abort(transport, passives, error)    # the others would otherwise wait for a timeout
        if isinstance(error, PsiProtocolError):
            raise ProtocolError(str(error)) from error
        raise
    for peer in passives:
        transport.send(peer, alignments[peer])
    report = PsiReport(transport.party, "active", len(df), outcome.n_rows, outcome.size, outcome.private,
                       time.perf_counter() - start, outcome.matched)
    return AlignResult(_select(df, outcome.rows), outcome.rows, outcome.positions, report)


def _run_active(transport, role: ActivePsi, n: int, timeout: float, progress):
    transport.broadcast(role.setup(), role.passives)
    with _bar(n * (1 + len(role.passives)), progress, f"PSI {transport.party}") as bar:
        for msg in role.masked_stream():
            transport.broadcast(msg, role.passives)
            bar.update(len(msg.points))
        for peer in role.passives:
            while (kind := role.expecting(peer)) is not None:
                msg = _recv(transport, peer, kind, timeout)
                for reply in role.accept(peer, msg):   # after its last masked chunk: H(y)^ab back
                    transport.send(peer, reply)
                if kind is PsiPassiveMasked:          # re-masked here; H(x)^ab only stored
                    bar.total += (msg.total - n) if msg.seq == 0 else 0
                    bar.update(len(msg.points))
    return role.finish()


def align_passive(transport: Transport, df: pd.DataFrame, id_column, *, active: str,
                  workers: int | None = None, timeout: float = DEFAULT_TIMEOUT,
                  progress: bool | None = None, policy: PsiPolicy | None = None) -> AlignResult:
    """A passive party's side: returns its rows in the common order the active party chose.

    ``policy`` bounds what this PSI may reveal to the active party; nothing that reveals more
    is sent (the job fails with a "refused" error at both ends).
    """
    start = time.perf_counter()
    transport.note("psi", backend=backend())
    policy = policy or PsiPolicy()
    try:
        ids = encode_ids(normalize_ids(df, id_column, transport.party))
        role = PassivePsi(ids, limits=policy.limits, workers=workers, name=transport.party)

        def approve(reveal: Reveal) -> None:
            if policy.approve is not None:
                shown = None if reveal.rows is None else [ids[r] for r in reveal.rows.tolist()]
                policy.approve(Disclosure(reveal.count, reveal.n_own, shown))
        outcome = _run_passive(transport, role, active, timeout, progress, approve)
    except (VFLError, PsiError) as error:
        if not isinstance(error, PeerFailedError):
            _abort(transport, [active], error)
        if isinstance(error, PsiProtocolError):
            raise ProtocolError(f"{error} (from {active})") from error
        raise
    report = PsiReport(transport.party, "passive", len(df), len(outcome.rows), outcome.size,
                       outcome.private, time.perf_counter() - start)
    positions = np.arange(len(outcome.rows), dtype=np.int64)
    return AlignResult(_select(df, outcome.rows), outcome.rows, positions, report)


def _run_passive(transport, role: PassivePsi, active: str, timeout: float, progress, approve):
    setup = _recv(transport, active, PsiSetup, timeout)
    role.accept_setup(setup)
    with _bar(2 * role.n_ids + setup.active_size, progress, f"PSI {transport.party}") as bar:
        for msg in role.masked_stream():
            transport.send(active, msg)
            bar.update(len(msg.points))
        while (kind := role.expecting()) is not None:     # H(x)^a (masked here), then H(y)^ab
            msg = _recv(transport, active, kind, timeout)
            role.accept(msg)
            bar.update(len(msg.points))
        approve(role.reveal())                          # within this party's terms, or it stops here
        for msg in role.double_masked_stream():
            transport.send(active, msg)
    return role.accept_alignment(_recv(transport, active, PsiAlignment, timeout))


def align(transport: Transport, df: pd.DataFrame, id_column, *, role: str, **options) -> AlignResult:
    """``align_active`` for ``role="active"``, ``align_passive`` (needs ``active=``) for ``"passive"``."""
    if role == "active":
        return align_active(transport, df, id_column, **options)
    if role == "passive":
        return align_passive(transport, df, id_column, **options)
    raise ValueError(f"role must be 'active' or 'passive', got {role!r}")
