"""The job handlers a party serves: what a passive party agrees to run when a peer asks.

A job is "run the registered handler *name* with these *params*" on every participant. A
handler is the passive side of one capability; it is registered in a module listed in
:data:`HANDLER_MODULES` (or passed to ``vfl serve --jobs-module``)::

    from parties.jobs.registry import JobContext, register_job

    @register_job("psi.passive")
    def psi_passive(ctx: JobContext) -> dict:
        frame = read(ctx.data_path(ctx.params["data"]))   # an alias from [data], never a path
        ...
        return report                                      # plain data, sent back in JobDone

The initiator side (:func:`parties.jobs.initiator.run_job`) asks its peers to run a handler.
"""
from __future__ import annotations

import dataclasses
import importlib
import logging
import os
from typing import Any, Callable, Iterable

from parties.runtime.config import PsiTerms
from parties.runtime.errors import JobRejectedError
from parties.transport.link import LinkTransport
from protocols.paillier import SCHEMES

log = logging.getLogger("parties.jobs")

# Every module that registers handlers, listed here rather than found by file name. The core
# module loads before the party opens its port; the others (they import the learning stack,
# a second of start-up) load in the background, and a job for one of their handlers waits.
CORE_HANDLER_MODULES: tuple[str, ...] = ("parties.jobs.echo",)
HANDLER_MODULES: tuple[str, ...] = (*CORE_HANDLER_MODULES, "parties.jobs.psi", "parties.jobs.learning")

_HANDLERS: dict[str, Callable[["JobContext"], Any]] = {}


@dataclasses.dataclass
class JobContext:
    """What a passive handler gets: its transport, who asked, the params and this party's rules."""

    transport: LinkTransport
    initiator: str
    params: dict
    data: dict[str, str]          # alias -> path, from the party config
    max_epochs: int
    recv_timeout: float
    models_dir: str = "models"    # this party's model parts, from its config
    data_policies: dict = dataclasses.field(default_factory=dict)
    psi: PsiTerms = dataclasses.field(default_factory=PsiTerms)    # what a PSI may reveal, from its config
    ledger: Any = None            # parties.runtime.ledger.PsiLedger: what each peer learned already
    initiator_key: str = ""       # the initiator's public key (Z85) as this party's config has it
    reveal_to: str | tuple | None = None   # [statistics]: who may learn statistics of this party's columns
    share_reason_codes: bool = False       # [statistics]: name its features in scorecard reason codes
    schemes: tuple = SCHEMES               # [crypto]: the homomorphic schemes a job's key may be in
    stream_above_mb: float | None = None   # [compute]: tables larger than this are read a chunk at a time
    queries: Any = None           # parties.runtime.budgets.QueryLedger: rows each peer had scored ([predictions])
    max_feature_epsilon: float = 0.0       # [privacy]: train only under feature DP of at most this ε (0: no rule)
    privacy: Any = None           # parties.runtime.budgets.PrivacyTerms: [privacy], its feature ε budgets

    def psi_policy(self):
        """This party's terms for a PSI with the initiator (:class:`vfl.psi.PsiPolicy`)."""
        from protocols.psi import PsiLimits
        from vfl.psi import PsiPolicy
        terms = self.psi
        limits = PsiLimits(max_active_ids=terms.max_initiator_ids or None,
                           max_active_ratio=terms.max_initiator_ratio or None, max_share=terms.max_share)
        if self.ledger is None:
            return PsiPolicy(limits)
        return PsiPolicy(limits, lambda disclosure: self.ledger.admit(self.initiator, disclosure,
                                                                      terms.max_share_per_peer))

    def prediction_policy(self, model: str):
        """This party's terms for the PSI of a prediction with ``model`` (a trained run): the PSI
        terms, and the rows the initiator may have scored (``[predictions]``), checked when the
        PSI knows how many rows match — before it reveals which — and recorded with them."""
        policy = self.psi_policy()
        if self.queries is None or not self.queries.terms.capped:
            return policy
        from vfl.psi import PsiPolicy

        def approve(disclosure) -> None:
            then = None if policy.approve is None else (lambda: policy.approve(disclosure))
            try:
                counts = self.queries.admit(self.initiator, model, disclosure.count, then=then)
            except Exception as exc:
                self.transport.note("prediction_refused", peer=self.initiator, model=model, rows=disclosure.count,
                                    reason=type(exc).__name__)
                raise
            self.transport.note("prediction_rows", peer=self.initiator, model=model, **counts)
        return PsiPolicy(policy.limits, approve)

    def data_policy(self, alias: str) -> dict:
        """What jobs may use of ``alias`` (defaults: any id column and features, at least 2)."""
        return self.data_policies.get(alias, {"id_column": None, "features": None, "min_features": 2})

    def reads_in_chunks(self, path: str) -> bool:
        """Whether this party's file at ``path`` is larger than its ``[compute] stream_above_mb``
        (so a job that can should read it a chunk at a time, never whole)."""
        return self.stream_above_mb is not None and os.path.getsize(path) > self.stream_above_mb * 1e6

    def data_path(self, alias: str) -> str:
        """The file behind a data alias this party allows jobs to use."""
        if not isinstance(alias, str) or alias not in self.data:
            raise JobRejectedError(f"data alias {alias!r} is not offered by {self.transport.party} "
                                   f"(offered: {sorted(self.data)})")
        return self.data[alias]


def register_job(name: str, handler: Callable[[JobContext], Any] | None = None):
    """Register ``handler`` as the passive role of job ``name`` (usable as a decorator)."""
    def add(fn):
        if name in _HANDLERS and _HANDLERS[name] is not fn:
            raise ValueError(f"job handler {name!r} is already registered")
        _HANDLERS[name] = fn
        return fn
    return add(handler) if handler is not None else add


def get_handler(name: str) -> Callable[[JobContext], Any]:
    try:
        return _HANDLERS[name]
    except KeyError:
        raise JobRejectedError(f"no job handler {name!r} (registered: {sorted(_HANDLERS)})") from None


def registered_jobs() -> list[str]:
    return sorted(_HANDLERS)


def load_handlers(modules: Iterable[str], *, strict: bool = True) -> list[str]:
    """Import modules that register handlers; returns every registered handler name. With
    ``strict=False`` a module that fails is logged and skipped, so one broken capability does not
    take the others down."""
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:
            if strict:
                raise
            log.error("job handlers in %s not loaded: %s: %s", module, type(exc).__name__, exc)
    return registered_jobs()
