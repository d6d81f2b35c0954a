"""``vfl serve``: a long-running passive party that runs jobs for its configured peers.

A ``JobStart`` from a peer named in ``accept_jobs_from`` opens the job (in the I/O thread, so
the job's next messages already have an inbox), then its handler runs in its own thread:
``JobReady`` → handler → ``JobDone(result)``. A refused or failed job answers ``JobAbort``,
is logged, and the party keeps serving.
"""
from __future__ import annotations

import logging
import threading

from parties.jobs.registry import CORE_HANDLER_MODULES, HANDLER_MODULES, JobContext, get_handler, load_handlers
from parties.runtime import compute
from parties.runtime.config import PartyConfig
from parties.runtime.errors import JobRejectedError, WireError
from parties.transport import codec
from parties.transport.link import failure_notice, run_role
from parties.transport.messages import JobDone, JobReady, JobStart
from parties.transport.node import Node

log = logging.getLogger("parties.jobs.server")


class JobServer:
    """Accepts and runs jobs on a :class:`Node`."""

    def __init__(self, config: PartyConfig, *, insecure: bool = False):
        self.config = config
        self.node = Node(config, insecure=insecure, on_job_start=self._on_job_start)
        self._running = 0
        self._lock = threading.Lock()
        self.handlers_loaded = threading.Event()     # the background handler modules imported
        self.finished: list[tuple[str, str, str]] = []          # (job, handler, "ok" | error)
        self._ledger = self._queries = None

    @property
    def ledger(self):
        """What each peer has learned of this party's ids through PSI (made at the first job)."""
        with self._lock:
            if self._ledger is None:
                from parties.runtime.ledger import PsiLedger
                self._ledger = PsiLedger(self.config.psi.ledger, self.config.name)
            return self._ledger

    @property
    def queries(self):
        """Rows each peer had this party score (``[predictions]``; made at the first job)."""
        with self._lock:
            if self._queries is None and self.config.predictions.ledger:
                from parties.runtime.budgets import QueryLedger
                self._queries = QueryLedger(self.config.predictions, self.config.name)
            return self._queries

    def start(self) -> "JobServer":
        self.node.start()
        return self

    def close(self) -> None:
        self.node.close()

    def _on_job_start(self, node: Node, peer: str, header: codec.Header, raws: list, conn: bytes) -> None:
        """Runs in the I/O thread: check, open the job, hand it to a worker thread."""
        message = codec.decode(header, raws, codec.Keyring())
        if not isinstance(message, JobStart):
            raise WireError(f"{message.KIND} for unknown or finished job {header.job!r}")
        try:
            handler = self._admit(peer, message)
        except JobRejectedError as exc:      # answered here, without a thread: a send that cannot go
            refusal = node.open_job(header.job, [node.name, peer], first_seq={peer: 1})    # now is dropped
            try:
                refusal.abort(failure_notice(refusal, exc), [peer])
            finally:
                refusal.close()
            return
        transport = node.open_job(header.job, message.parties, first_seq={peer: 1})
        transport.bind_connection(peer, conn)         # the job is the initiator process's that asked
        with self._lock:
            self._running += 1
        log.info("job %s: running %s for %s (parties %s)", header.job, message.handler, peer,
                 ", ".join(message.parties))
        threading.Thread(target=self._run, args=(transport, peer, message, handler),
                         name=f"job-{header.job}", daemon=True).start()

    def _admit(self, peer: str, message: JobStart):
        if peer not in self.config.accept_jobs_from:
            raise JobRejectedError(f"{peer} may not start jobs here")
        if not message.parties or message.parties[0] != peer or self.config.name not in message.parties:
            raise JobRejectedError("the initiator must be listed first and this party must take part")
        with self._lock:
            if self._running >= self.config.limits.max_concurrent_jobs:
                raise JobRejectedError(f"already running {self._running} jobs (the limit)")
        try:
            return get_handler(message.handler)
        except JobRejectedError:
            if self.handlers_loaded.wait(timeout=60):      # maybe its module is still importing
                return get_handler(message.handler)
            raise

    def _run(self, transport, peer: str, message: JobStart, handler) -> None:
        key = next((p.public_key for p in self.config.peers if p.name == peer), None)
        ctx = JobContext(transport, peer, dict(message.params), dict(self.config.data),
                         self.config.limits.max_epochs, self.config.limits.recv_timeout, self.config.models_dir,
                         self.config.data_policies, self.config.psi, self.ledger,
                         key.decode() if isinstance(key, bytes) else "", self.config.reveal_to,
                         self.config.share_reason_codes, self.config.schemes,
                         stream_above_mb=self.config.compute.stream_above_mb, queries=self.queries,
                         max_feature_epsilon=self.config.privacy.max_feature_epsilon, privacy=self.config.privacy)
        outcome = "ok"
        try:
            transport.send(peer, JobReady())
            with compute.job_scope():           # secrets shipped to this party's cluster end with the job
                result = run_role(transport, lambda _t: handler(ctx))
            transport.send(peer, JobDone(result=result))
            log.info("job %s (%s) done", transport.job, message.handler)
        except Exception as exc:             # run_role logged it in full with its error id
            outcome = f"{type(exc).__name__}, error {getattr(exc, 'error_id', '?')}"
            log.error("job %s (%s) failed: %s", transport.job, message.handler, outcome)
        finally:
            transport.close()
            with self._lock:
                self._running -= 1
                self.finished.append((transport.job, message.handler, outcome))


def serve(config: PartyConfig, *, insecure: bool = False, stop: threading.Event | None = None,
          extra_modules: tuple[str, ...] = (), ready=None, core_only: bool = False) -> int:
    """Run until ``stop`` is set (the CLI sets it on SIGINT/SIGTERM).

    The core handler module and ``extra_modules`` load before the port opens (an import error
    stops start-up); the learning handlers (:data:`HANDLER_MODULES`) load in the background,
    and a job for a handler not yet registered waits for them, so the party is reachable
    within a fraction of a second. ``core_only`` serves the built-in echo job alone.
    """
    load_handlers((*CORE_HANDLER_MODULES, *extra_modules))
    if config.plugins:                   # before the port opens: a broken plugin stops start-up
        from vfl import registry
        registry.load_plugins(config.plugins)
    stop = stop or threading.Event()
    backend = compute.install(config.compute)      # before the port opens: a wrong scheduler stops start-up
    try:
        server = JobServer(config, insecure=insecure).start()
    except BaseException:
        compute.uninstall(backend)
        raise

    def load_rest() -> None:
        try:
            names = load_handlers(() if core_only else HANDLER_MODULES, strict=False)
            log.info("%s serving jobs %s to %s", config.name, ", ".join(names), ", ".join(config.accept_jobs_from))
        finally:
            server.handlers_loaded.set()

    threading.Thread(target=load_rest, name="load-handlers", daemon=True).start()
    try:
        if ready is not None:
            ready(server)
        while not stop.wait(0.5):
            pass
    finally:
        server.close()
        compute.uninstall(backend)
    return 0
