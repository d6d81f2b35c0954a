"""Jobs: what a passive party agrees to run, and how an initiator starts one.

A job is "run the registered handler *name* with these *params*" on every participant. Later
features (PSI, LR, SecureBoost) register their passive role here::

    from parties.jobs import register_job

    @register_job("lr.passive")
    def lr_passive(ctx: JobContext) -> dict:
        X = load(ctx.data_path(ctx.params["data"]))   # an alias from [data], never a path
        ctx.check_epochs(ctx.params["epochs"])
        PassiveLogisticRegression(...).fit_over(ctx.transport, X)
        return {"rows": len(X)}                         # plain data, sent back in JobDone

in a module named ``parties/jobs_<feature>.py`` or ``parties/<feature>_jobs.py``: ``vfl serve``
imports every such module (see :func:`load_handlers`), plus any listed in
:data:`HANDLER_MODULES` or passed with ``--jobs-module``. The initiator calls :func:`run_job`
(or :func:`start_job` and drives the transport itself).
"""
from __future__ import annotations

import dataclasses
import importlib
import logging
import pkgutil
import secrets
from typing import Any, Callable, Iterable

from parties.errors import JobRejectedError
from parties.link import LinkTransport, run_role
from parties.messages import JobDone, JobReady, JobStart
from vfl.errors import PeerFailedError

log = logging.getLogger("parties.jobs")

# Modules that register handlers when imported, besides the discovered parties/jobs_*.py and
# parties/*_jobs.py; `vfl serve` imports all of them.
HANDLER_MODULES: tuple[str, ...] = ("parties.builtin_jobs",)

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

    def data_policy(self, alias: str) -> dict:
        """What jobs may use of ``alias`` (defaults: any id column and features, at least 2)."""
        return self.data_policies.get(alias, {"id_column": None, "features": None, "min_features": 2})

    def data_path(self, alias: str) -> str:
        """The file behind a data alias this party allows jobs to use."""
        if not isinstance(alias, str) or alias not in self.data:
            raise JobRejectedError(f"data alias {alias!r} is not offered by {self.transport.party} "
                                   f"(offered: {sorted(self.data)})")
        return self.data[alias]

    def check_epochs(self, epochs: int) -> int:
        if not isinstance(epochs, int) or not 0 < epochs <= self.max_epochs:
            raise JobRejectedError(f"{epochs!r} epochs requested; {self.transport.party} serves at most "
                                   f"{self.max_epochs}")
        return epochs


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


def discovered_modules() -> list[str]:
    """``parties.jobs_*`` and ``parties.*_jobs`` modules (the handler naming convention)."""
    import parties
    return sorted(f"parties.{m.name}" for m in pkgutil.iter_modules(parties.__path__)
                  if m.name.startswith("jobs_") or m.name.endswith("_jobs"))


def load_handlers(extra_modules: Iterable[str] = (), *, discover: bool = True) -> list[str]:
    """Import every module that registers handlers; returns the registered names.

    Explicit modules (``HANDLER_MODULES``, ``extra_modules``) must import; a discovered module
    that fails is logged and skipped, so one broken feature does not stop the party.
    """
    for module in (*HANDLER_MODULES, *extra_modules):
        importlib.import_module(module)
    for module in (discovered_modules() if discover else []):
        try:
            importlib.import_module(module)
        except Exception as exc:
            log.error("job handlers in %s not loaded: %s: %s", module, type(exc).__name__, exc)
    return registered_jobs()


# -- initiator side ---------------------------------------------------------------------------
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
        transport.abort(f"{type(exc).__name__}: {exc}")
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
