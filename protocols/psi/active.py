"""The active role of the PSI: the hub (steps 1, 3, 4, 6 and 7 of the protocol in :mod:`protocols.psi`)."""
from __future__ import annotations

import dataclasses
from typing import Iterator, Sequence

import numpy as np

from protocols.psi import group, parallel
from protocols.psi._common import DEFAULT_CHUNK, Inbox, as_keys, check_ids, chunk_bounds, secure_permutation
from protocols.psi.errors import PsiInputError, PsiProtocolError
from protocols.psi.messages import (
    PROTOCOL_VERSION,
    PsiActiveMasked,
    PsiAlignment,
    PsiDoubleMasked,
    PsiPassiveMasked,
    PsiReMasked,
    PsiSetup,
)


@dataclasses.dataclass(frozen=True)
class ActiveOutcome:
    """What the active party ends with.

    ``rows[j]`` (an index into its ids) sits at common row ``positions[j]``; there are
    ``n_rows`` common rows. Without the private option ``positions == arange(size)`` and
    ``n_rows == size``; with it, the other common rows are fillers at the passives.
    ``matched`` holds, per passive, how many of the active's ids that passive has (the
    active learns these pairwise counts; the passives never do).
    """

    rows: np.ndarray
    positions: np.ndarray
    n_rows: int
    size: int
    matched: dict[str, int]
    private: bool


class ActivePsi:
    """The active party: masks its ids, re-masks each passive's, intersects, assigns the order.

    Usage (the driver moves the messages)::

        role = ActivePsi(ids, ["bank", "shop"])
        broadcast(role.setup())                                  # declares |X|
        for msg in role.masked_stream(): broadcast(msg)          # H(x)^a, shuffled
        for peer in role.passives:
            while (kind := role.expecting(peer)) is not None:    # H(y)^b, then H(x)^ab
                for reply in role.accept(peer, recv(peer, kind)):
                    send(peer, reply)                            # after H(y)^b: H(y)^ab back
        outcome, alignments = role.finish()                      # send alignments[peer]
    """

    def __init__(self, ids: Sequence[bytes], passives: Sequence[str], *, private: bool = False,
                 chunk_size: int = DEFAULT_CHUNK, workers: int | None = None, name: str = "active"):
        self._ids = check_ids(ids, name)
        self.passives = list(passives)
        if not self.passives or len(set(self.passives)) != len(self.passives):
            raise PsiInputError(f"{name}: need one or more distinct passive parties, got {self.passives}")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise PsiInputError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        self._private, self._chunk, self._workers = bool(private), chunk_size, workers
        self._salt = group.new_salt()
        self._scalar = group.Scalar.generate()
        self._order = secure_permutation(len(self._ids))   # stream position -> own id index
        self._sent = False
        self._masked = {p: Inbox("passive masked ids", p, chunk_size) for p in self.passives}
        self._double = {p: Inbox("double masked ids", p, chunk_size, len(self._ids)) for p in self.passives}

    def setup(self) -> PsiSetup:
        return PsiSetup(version=PROTOCOL_VERSION, salt=self._salt, private=self._private,
                        chunk_size=self._chunk, active_size=len(self._ids))

    def masked_stream(self) -> Iterator[PsiActiveMasked]:
        """Own ids hashed with the job salt and masked with the active scalar, in secret order."""
        n = len(self._ids)
        for seq, (a, b) in enumerate(chunk_bounds(n, self._chunk)):
            items = [self._ids[i] for i in self._order[a:b]]
            points = parallel.hash_and_mask(items, self._salt, self._scalar, workers=self._workers)
            yield PsiActiveMasked(seq=seq, total=n, points=points)
        self._sent = True

    def expecting(self, peer: str) -> type | None:
        """The message class next due from ``peer``, or None when it has sent everything."""
        if peer not in self._masked:
            raise PsiProtocolError(f"{peer} is not a passive party of this PSI")
        if not self._masked[peer].done:
            return PsiPassiveMasked
        return None if self._double[peer].done else PsiDoubleMasked

    def accept(self, peer: str, msg) -> list[PsiReMasked]:
        """Take the next chunk from ``peer``; returns what to send it back. A passive's masked
        ids are re-masked right away; after the last chunk they go back to it (``PsiReMasked``):
        in its own order, or in a fresh secret order with the private option, so that it can
        count (not identify) the matches there)."""
        expected = self.expecting(peer)
        if expected is None or not isinstance(msg, expected):
            raise PsiProtocolError(f"expected {getattr(expected, 'KIND', 'nothing')}, "
                                   f"received {getattr(msg, 'KIND', type(msg).__name__)} from {peer}")
        if expected is PsiDoubleMasked:
            if not self._sent:
                raise PsiProtocolError(f"double masked ids from {peer} before the active ids were sent")
            self._double[peer].add(msg)
            return []
        inbox = self._masked[peer]
        inbox.keep(parallel.mask(inbox.add(msg), self._scalar, workers=self._workers))
        return list(self._remasked(peer)) if inbox.done else []

    def _remasked(self, peer: str):
        points = self._masked[peer].array()                    # H(y)^ba, in the passive's stream order
        if self._private:
            points = points[secure_permutation(len(points))]
        n = len(points)
        for seq, (a, b) in enumerate(chunk_bounds(n, self._chunk)):
            yield PsiReMasked(seq=seq, total=n, points=points[a:b])

    def finish(self) -> tuple[ActiveOutcome, dict[str, PsiAlignment]]:
        """Intersect; choose the common order; one alignment message per passive."""
        for peer in self.passives:
            if self.expecting(peer) is not None:
                raise PsiProtocolError(f"finish() before {peer} sent all its points")
        matches = {p: self._match(p) for p in self.passives}   # stream position -> passive position
        common = np.flatnonzero(np.all([m >= 0 for m in matches.values()], axis=0))
        # The stream order is a secret random permutation: its restriction to the
        # intersection is a random common order that reveals nothing about row order.
        rows = self._order[common]
        matched = {p: int(np.count_nonzero(m >= 0)) for p, m in matches.items()}
        if not self._private:
            positions = np.arange(len(common), dtype=np.int64)
            alignments = {p: PsiAlignment(positions=m[common], size=len(common)) for p, m in matches.items()}
            outcome = ActiveOutcome(rows, positions, len(common), len(common), matched, False)
            return outcome, alignments
        return self._private_alignments(matches, common, rows, matched)

    def _match(self, peer: str) -> np.ndarray:
        double = as_keys(self._double[peer].array())           # H(x)^ab in active stream order
        theirs = as_keys(self._masked[peer].array())           # H(y)^ba in passive stream order
        if len(np.unique(theirs)) != len(theirs):
            raise PsiProtocolError(f"{peer} sent repeated points")
        _, ia, ib = np.intersect1d(double, theirs, assume_unique=True, return_indices=True)
        out = np.full(len(double), -1, dtype=np.int64)
        out[ia] = ib
        return out

    def _private_alignments(self, matches, common, rows, matched):
        """Pad to ``n_rows = min(passive sizes)`` rows; real ones at secret positions.

        Every passive then holds ``n_rows`` of its own rows in an order it cannot read: the
        smallest passive holds all its rows and learns nothing about which matched.
        """
        n_rows = min(self._masked[p].total for p in self.passives)
        slots = np.sort(secure_permutation(n_rows)[:len(common)])     # where the real rows go
        fill = np.ones(n_rows, dtype=bool)
        fill[slots] = False
        alignments = {}
        for peer, m in matches.items():
            positions = np.empty(n_rows, dtype=np.int64)
            positions[slots] = m[common]
            spare = np.setdiff1d(np.arange(self._masked[peer].total), m[common], assume_unique=True)
            positions[fill] = spare[secure_permutation(len(spare))[:n_rows - len(common)]]
            alignments[peer] = PsiAlignment(positions=positions, size=-1)
        outcome = ActiveOutcome(rows, slots.astype(np.int64), n_rows, len(common), matched, True)
        return outcome, alignments
