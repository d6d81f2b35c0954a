"""How the parties of a run that died agree where to continue (instead of a second PSI).

1. The active sends :class:`ResumeQuery`: the run id and the digest of the aligned ids and
   split it recorded.
2. Each passive checks the run and the digest against its own record and answers
   :class:`ResumeOffer`: its digest and the rounds it can continue from.
3. The active picks the last of its own rounds that every passive holds (round 0, the start of
   the fit, always qualifies) and sends :class:`ResumeFrom`. Every party drops its later
   checkpoints and continues from that round.

What crosses: digests of what both sides already know (the run, the common ids, the split) and
round numbers.
"""
from __future__ import annotations

import numpy as np

from vfl.checkpoint import Alignment, Checkpoint, Checkpoints, agree_round, covers
from vfl.errors import ProtocolError
from vfl.jobs.messages import ResumeFrom, ResumeOffer, ResumeQuery


def agree_as_active(transport, passives: list[str], run: str, alignment: Alignment, store: Checkpoints) -> int:
    transport.broadcast(ResumeQuery(run=run, alignment=alignment.digest), passives)
    offers = {}
    for p in passives:
        offer = transport.recv(p, ResumeOffer)
        if offer.alignment != alignment.digest:
            raise ProtocolError(f"{p} recorded other aligned rows or another split for run {run}: cannot resume")
        holds = np.asarray(offer.holds)
        if holds.dtype.kind not in "iu" or holds.ndim != 2 or holds.shape[1] != 2:
            raise ProtocolError(f"{p} described the rounds it holds in a malformed way")
        offers[p] = holds.tolist()
    round_ = agree_round([first for first, _ in store.holdings()], offers)
    transport.broadcast(ResumeFrom(round=round_), passives)
    store.drop_after(round_)
    return round_


def agree_as_passive(transport, active: str, run: str, alignment: Alignment, store: Checkpoints) -> int:
    query = transport.recv(active, ResumeQuery)
    if query.run != run:
        raise ProtocolError(f"{active} continues run {query.run} but asked this party for run {run}")
    transport.send(active, ResumeOffer(alignment=alignment.digest,
                                       holds=np.asarray(store.holdings(), np.int64).reshape(-1, 2)))
    if query.alignment != alignment.digest:
        raise ProtocolError(f"{active} recorded other aligned rows or another split for run {run}: cannot resume")
    round_ = transport.recv(active, ResumeFrom).round
    if not isinstance(round_, int) or isinstance(round_, bool) or round_ < 0 \
            or not covers(store.holdings(), round_):
        raise ProtocolError(f"{active} continues from round {round_!r}, which this party does not hold")
    store.drop_after(round_)
    return round_


def checkpoint_option(family, store: Checkpoints | None, round_: int) -> dict:
    """The ``checkpoint=`` a family's ``fit`` gets (none if the family does not checkpoint: a
    resumed run then fits it again from the start, on the recorded rows)."""
    if store is None or not family.checkpoints:
        return {}
    return {"checkpoint": Checkpoint(store, round_, store.load(round_))}
