"""The passive role of the PSI (steps 2, 4 and 6 of the protocol in :mod:`protocols.psi`)."""
from __future__ import annotations

import dataclasses
from typing import Iterator, Sequence

import numpy as np

from protocols.psi import group, parallel
from protocols.psi._common import check_ids, chunk_bounds, secure_permutation
from protocols.psi.errors import PsiProtocolError
from protocols.psi.messages import (
    PROTOCOL_VERSION,
    PsiActiveMasked,
    PsiAlignment,
    PsiDoubleMasked,
    PsiPassiveMasked,
    PsiSetup,
)


@dataclasses.dataclass(frozen=True)
class PassiveOutcome:
    """What a passive party ends with.

    ``rows[i]`` is the index (into the ids it started with) of common row ``i``. ``size`` is
    the intersection size, or ``None`` in private mode, where some of ``rows`` are fillers
    that only the active party can tell apart.
    """

    rows: np.ndarray
    size: int | None
    private: bool


class PassivePsi:
    """A passive party: masks its own ids, re-masks the active party's, receives its alignment.

    Usage (the driver moves the messages)::

        role = PassivePsi(ids)
        role.accept_setup(setup)                      # from the active party
        for msg in role.masked_stream(): send(msg)    # H(y)^b, shuffled
        while role.expecting_active:                  # H(x)^a -> H(x)^ab, same order
            send(role.answer(recv(PsiActiveMasked)))
        outcome = role.accept_alignment(recv(PsiAlignment))
    """

    def __init__(self, ids: Sequence[bytes], *, workers: int | None = None, name: str = "passive"):
        self._ids = check_ids(ids, name)
        self._name = name
        self._workers = workers
        self._scalar = group.Scalar.generate()
        self._order = secure_permutation(len(self._ids))   # stream position -> own id index
        self._setup: PsiSetup | None = None
        self._answered = 0
        self._active_total: int | None = None
        self._sent = False

    @property
    def n_ids(self) -> int:
        return len(self._ids)

    def accept_setup(self, msg: PsiSetup) -> None:
        if self._setup is not None:
            raise PsiProtocolError("a second PsiSetup arrived")
        if msg.version != PROTOCOL_VERSION:
            raise PsiProtocolError(f"PSI version {msg.version} from the active party; this side speaks "
                                   f"{PROTOCOL_VERSION}")
        if not isinstance(msg.salt, bytes) or len(msg.salt) != group.SALT_BYTES:
            raise PsiProtocolError(f"the job salt must be {group.SALT_BYTES} bytes")
        if isinstance(msg.chunk_size, bool) or not isinstance(msg.chunk_size, int) or msg.chunk_size < 1:
            raise PsiProtocolError(f"bad chunk size {msg.chunk_size!r}")
        self._setup = msg

    def _need_setup(self) -> PsiSetup:
        if self._setup is None:
            raise PsiProtocolError("PsiSetup has not arrived yet")
        return self._setup

    def masked_stream(self) -> Iterator[PsiPassiveMasked]:
        """Own ids hashed with the job salt, masked with this party's scalar, in secret order."""
        setup = self._need_setup()
        n = len(self._ids)
        for seq, (a, b) in enumerate(chunk_bounds(n, setup.chunk_size)):
            items = [self._ids[i] for i in self._order[a:b]]
            points = parallel.hash_and_mask(items, setup.salt, self._scalar, workers=self._workers)
            yield PsiPassiveMasked(seq=seq, total=n, points=points)
        self._sent = True

    @property
    def expecting_active(self) -> bool:
        """True while chunks of the active party's masked ids are still to come."""
        return self._active_total is None or self._answered < self._active_total

    def answer(self, msg: PsiActiveMasked) -> PsiDoubleMasked:
        """Mask one chunk of ``H(x)^a`` with this party's scalar; order kept (the active links it)."""
        setup = self._need_setup()
        seq = self._answered_chunks()
        if self._active_total is None:
            self._active_total = msg.total
        if msg.total != self._active_total or msg.seq != seq:
            raise PsiProtocolError(f"active masked ids: expected chunk {seq} of {self._active_total}, "
                                   f"received chunk {msg.seq} of {msg.total}")
        points = group.check_points(msg.points, "active masked ids")
        if len(points) != min(setup.chunk_size, self._active_total - self._answered) or not len(points):
            raise PsiProtocolError(f"active masked ids: chunk {msg.seq} has {len(points)} points")
        self._answered += len(points)
        return PsiDoubleMasked(seq=msg.seq, total=msg.total,
                               points=parallel.mask(points, self._scalar, workers=self._workers))

    def _answered_chunks(self) -> int:
        return -(-self._answered // self._need_setup().chunk_size)

    def accept_alignment(self, msg: PsiAlignment) -> PassiveOutcome:
        """Map stream positions back to own rows. Checks range and uniqueness."""
        setup = self._need_setup()
        if not self._sent or self.expecting_active:
            raise PsiProtocolError("PsiAlignment arrived before the exchange was complete")
        positions = np.asarray(msg.positions)
        if positions.ndim != 1 or (positions.size and positions.dtype.kind not in "iu"):
            raise PsiProtocolError("alignment positions must be a 1-d integer array")
        positions = positions.astype(np.int64, copy=False)
        if positions.size and (positions.min() < 0 or positions.max() >= len(self._ids)):
            raise PsiProtocolError(f"alignment positions out of range 0..{len(self._ids) - 1}")
        if len(np.unique(positions)) != len(positions):
            raise PsiProtocolError("alignment positions repeat a row")
        if setup.private != (msg.size == -1) or (msg.size != -1 and msg.size != len(positions)):
            raise PsiProtocolError(f"alignment size {msg.size} does not fit {len(positions)} rows "
                                   f"(private={setup.private})")
        rows = self._order[positions]
        return PassiveOutcome(rows=rows, size=None if setup.private else int(msg.size),
                              private=setup.private)
