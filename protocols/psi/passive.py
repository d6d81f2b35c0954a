"""The passive role of the PSI (steps 2, 5 and 7 of the protocol in :mod:`protocols.psi`)."""
from __future__ import annotations

import dataclasses
from typing import Iterator, Sequence

import numpy as np

from protocols.psi import group, parallel
from protocols.psi._common import Inbox, as_keys, check_ids, chunk_bounds, secure_permutation
from protocols.psi.errors import PsiPolicyError, PsiProtocolError
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
class PassiveOutcome:
    """What a passive party ends with.

    ``rows[i]`` is the index (into the ids it started with) of common row ``i``. ``size`` is
    the intersection size, or ``None`` in private mode, where some of ``rows`` are fillers
    that only the active party can tell apart.
    """

    rows: np.ndarray
    size: int | None
    private: bool


@dataclasses.dataclass(frozen=True)
class PsiLimits:
    """What one PSI may reveal to the active party, as this passive allows it. Checked before
    this party sends the values that would reveal it: the active's set size when the setup
    arrives (before its own masked ids go out), the share of its ids the active would learn
    before it returns the double-masked ids the active matches with. Defaults: no limit."""

    max_active_ids: int | None = None        # the active's declared set size |X|, at most
    max_active_ratio: float | None = None    # |X| at most this many times this party's |Y|
    max_share: float = 1.0                   # |X ∩ Y| / |Y| at most


@dataclasses.dataclass(frozen=True)
class Reveal:
    """What finishing the exchange would let the active party learn of this party's ids:
    ``count`` of them (``X ∩ Y``), and which (``rows``, own indices) unless private."""

    count: int
    rows: np.ndarray | None
    n_own: int

    @property
    def share(self) -> float:
        return self.count / self.n_own


class PassivePsi:
    """A passive party: masks its own ids, re-masks the active party's, and returns them only
    once it has seen how many of its ids the active would learn and agreed (its limits, and the
    caller's own check of :meth:`reveal`).

    Usage (the driver moves the messages)::

        role = PassivePsi(ids, limits=PsiLimits(max_active_ratio=10))
        role.accept_setup(setup)                      # from the active party; limits on |X|
        for msg in role.masked_stream(): send(msg)    # H(y)^b, shuffled
        while (kind := role.expecting()) is not None: # H(x)^a, then H(y)^ab
            role.accept(recv(kind))
        reveal = role.reveal()                        # limits on the share revealed
        for msg in role.double_masked_stream(): send(msg)   # H(x)^ab, the active's order
        outcome = role.accept_alignment(recv(PsiAlignment))
    """

    def __init__(self, ids: Sequence[bytes], *, limits: PsiLimits | None = None, workers: int | None = None,
                 name: str = "passive"):
        self._ids = check_ids(ids, name)
        self._name, self._workers = name, workers
        self.limits = limits or PsiLimits()
        self._scalar = group.Scalar.generate()
        self._order = secure_permutation(len(self._ids))   # stream position -> own id index
        self._setup: PsiSetup | None = None
        self._active: Inbox | None = None                  # H(x)^a, kept as H(x)^ab
        self._remasked: Inbox | None = None                # H(y)^ab from the active
        self._reveal: Reveal | None = None
        self._approved = False                             # reveal() passed the limits
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
        if isinstance(msg.active_size, bool) or not isinstance(msg.active_size, int) or msg.active_size < 1:
            raise PsiProtocolError(f"bad active set size {msg.active_size!r}")
        self._check_active_size(msg.active_size)
        self._setup = msg
        self._active = Inbox("active masked ids", "the active party", msg.chunk_size, msg.active_size)
        self._remasked = Inbox("re-masked ids", "the active party", msg.chunk_size, len(self._ids))

    def _check_active_size(self, size: int) -> None:
        limits, n = self.limits, len(self._ids)
        if limits.max_active_ids is not None and size > limits.max_active_ids:
            raise PsiPolicyError(f"{self._name}: the active party's {size} ids exceed max_active_ids "
                                 f"{limits.max_active_ids}")
        if limits.max_active_ratio is not None and size > limits.max_active_ratio * n:
            raise PsiPolicyError(f"{self._name}: the active party's {size} ids are more than "
                                 f"{limits.max_active_ratio:g} × this party's {n} (max_active_ratio)")

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

    def expecting(self) -> type | None:
        """The message class next due from the active party (None once both streams are in)."""
        self._need_setup()
        if not self._active.done:
            return PsiActiveMasked
        return None if self._remasked.done else PsiReMasked

    @property
    def expecting_active(self) -> bool:
        return self.expecting() is not None

    def accept(self, msg) -> None:
        """Take the next chunk: ``H(x)^a`` (masked here to ``H(x)^ab``, kept), then ``H(y)^ab``."""
        expected = self.expecting()
        if expected is None or not isinstance(msg, expected):
            raise PsiProtocolError(f"expected {getattr(expected, 'KIND', 'nothing')}, "
                                   f"received {getattr(msg, 'KIND', type(msg).__name__)} from the active party")
        if expected is PsiReMasked:
            if not self._sent:
                raise PsiProtocolError("re-masked ids arrived before this party sent its own")
            self._remasked.add(msg)
            return
        self._active.keep(parallel.mask(self._active.add(msg), self._scalar, workers=self._workers))

    def reveal(self) -> Reveal:
        """What returning ``H(x)^ab`` would let the active learn; :class:`PsiPolicyError` past
        ``limits.max_share``. Call once both streams are in, before :meth:`double_masked_stream`."""
        if self.expecting() is not None:
            raise PsiProtocolError("reveal() before both streams from the active party arrived")
        if self._reveal is None:
            mine = as_keys(self._remasked.array())            # H(y)^ab
            if len(np.unique(mine)) != len(mine):
                raise PsiProtocolError("the active party sent repeated re-masked points")
            _, hits, _ = np.intersect1d(mine, as_keys(self._active.array()), assume_unique=False,
                                        return_indices=True)
            rows = None if self._need_setup().private else np.sort(self._order[hits])
            self._hits = np.sort(hits)                        # own stream positions the active will match
            self._reveal = Reveal(count=len(hits), rows=rows, n_own=len(self._ids))
        if self._reveal.share > self.limits.max_share:
            raise PsiPolicyError(f"{self._name}: the exchange would reveal {self._reveal.count} of this party's "
                                 f"{len(self._ids)} ids ({self._reveal.share:.0%}) to the active party; "
                                 f"max_share is {self.limits.max_share:.0%}")
        self._approved = True
        return self._reveal

    def double_masked_stream(self) -> Iterator[PsiDoubleMasked]:
        """``H(x)^ab`` in the active party's order, once :meth:`reveal` passed."""
        if not self._approved:
            raise PsiProtocolError("double_masked_stream() before reveal() approved the exchange")
        points, chunk = self._active.array(), self._need_setup().chunk_size
        for seq, (a, b) in enumerate(chunk_bounds(len(points), chunk)):
            yield PsiDoubleMasked(seq=seq, total=len(points), points=points[a:b])

    def accept_alignment(self, msg: PsiAlignment) -> PassiveOutcome:
        """Map stream positions back to own rows. Checks range and uniqueness."""
        setup = self._need_setup()
        if not self._sent or not self._approved:
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
        if not setup.private and not np.isin(positions, self._hits).all():
            raise PsiProtocolError("the alignment names rows the active party cannot have matched")
        rows = self._order[positions]
        return PassiveOutcome(rows=rows, size=None if setup.private else int(msg.size),
                              private=setup.private)
