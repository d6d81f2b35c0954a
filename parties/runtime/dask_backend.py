"""The Dask backend of :mod:`protocols._workers`: a party's pieces of work on its own cluster.

Imported only when a party's ``[compute]`` names a scheduler (it needs ``distributed``).

- **Secrets once per job.** A piece's secret (a Paillier or OU key token, a PSI scalar) reaches
  the cluster as a worker plugin, registered the first time a job uses it, under a random name
  of that job (``vfl-secret-<client id>-<random>``): the scheduler hands it to every worker,
  also to workers that join later (a piece retried elsewhere finds it). The job's
  :func:`parties.runtime.compute.job_scope` unregisters it at the end; each worker then drops
  it, and the key objects built from it. If the party process dies instead, the scheduler's
  :class:`SecretJanitor` drops every secret its client registered when the client goes away.
  Pieces carry only the plugin's name.
- **Bytes, not pickled big numbers.** Lists of gmpy2 numbers (ciphertexts, plaintexts) travel
  as one fixed-width byte string each, both ways.
- **Failures.** A worker that dies mid-piece: the scheduler runs the piece elsewhere (Dask's
  ``allowed-failures``); past that, or when the scheduler is gone or a piece takes longer than
  ``task_timeout``, the job fails with :class:`ComputeError` naming the cluster. Never a hang.

Everything here stays inside one organisation: its own processes, its own scheduler, behind
mutual TLS. Dask pickles between them, as the local process pool does between this party's own
processes; nothing from a peer organisation ever reaches this module. The party process
unpickles its cluster's results: the cluster is as trusted as the party's own machine.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import secrets
import threading
import time

import gmpy2
from distributed import Client
from distributed.diagnostics.plugin import SchedulerPlugin, WorkerPlugin
from gmpy2 import mpz

from protocols._workers import LocalPool, Shared, resolve_workers
from protocols.paillier.parallel import forget_keys
from vfl.errors import VFLError

POLL = 0.5           # seconds between looks at the client while a piece runs
LOST_AFTER = 5.0     # seconds without a scheduler before the pieces waited for are given up

SECRET_PREFIX = "vfl-secret-"
log = logging.getLogger("parties.compute")

_SECRETS: dict[str, object] = {}        # on a worker: plugin name -> secret, for the job's length
_JOB_SECRETS: contextvars.ContextVar = contextvars.ContextVar("vfl_job_secrets", default=None)


class ComputeError(VFLError):
    """The party's own cluster could not do a piece of work (named, never a hang)."""


# -- big numbers as bytes --------------------------------------------------------------------
class PackedInts:
    """A list of non-negative gmpy2 integers as one fixed-width big-endian byte string."""

    __slots__ = ("width", "count", "blob")

    def __init__(self, values: list, width: int):
        self.count, self.width = len(values), width
        self.blob = b"".join(int(v).to_bytes(width, "big") for v in values)

    def values(self) -> list:
        w, blob = self.width, self.blob
        return [mpz.from_bytes(blob[i:i + w], "big") for i in range(0, self.count * w, w)]


def _walk(obj, leaf):
    """``leaf(obj)`` if it gives something else than None; otherwise lists and tuples are walked
    (keeping their type) and anything else is left as it is."""
    out = leaf(obj)
    if out is not None:
        return out
    if isinstance(obj, (list, tuple)):
        items = [_walk(v, leaf) for v in obj]
        return items if isinstance(obj, list) else tuple(items)
    return obj


def _packed(obj):
    if isinstance(obj, list) and obj and all(type(v) is gmpy2.mpz and v >= 0 for v in obj):
        sizes = [(v.bit_length() + 7) // 8 for v in obj]
        width = max(max(sizes), 1)
        # ciphertexts are all about one size; very uneven ones would cost more padded
        return PackedInts(obj, width) if width * len(obj) <= 2 * sum(sizes) + 64 else obj
    return None


def pack(obj):
    """``obj`` with every non-empty list of non-negative gmpy2 integers made a :class:`PackedInts`
    (lists and tuples are walked; anything else is left as it is)."""
    return _walk(obj, _packed)


def unpack(obj):
    return _walk(obj, lambda o: o.values() if isinstance(o, PackedInts) else None)


# -- on the workers ----------------------------------------------------------------------------
class SecretPlugin(WorkerPlugin):
    """Holds one job's secret on every worker while the job runs."""

    def __init__(self, name: str, secret):
        self.name, self._secret = name, secret

    def setup(self, worker):
        _SECRETS[self.name] = self._secret

    def teardown(self, worker):
        _SECRETS.pop(self.name, None)
        forget_keys()                       # the key objects built from it, too

    def __repr__(self) -> str:
        return f"SecretPlugin({self.name})"


def run_piece(call, name: str, args: tuple):
    """A piece on a worker: ``call(secret, *args)`` with the job's secret, bytes both ways."""
    try:
        secret = _SECRETS[name]
    except KeyError:
        raise ComputeError(f"this worker holds no secret {name}: the job ended or the plugin was not set up") from None
    try:
        return pack(call(secret, *unpack(args)))
    finally:
        if name not in _SECRETS:            # dropped while this piece ran: drop what it rebuilt, too
            forget_keys()


class SecretJanitor(SchedulerPlugin):
    """On the scheduler: when a party's client goes away (it ended, crashed or was killed), drop
    every secret that client registered (their names start with ``vfl-secret-<client id>-``)."""

    name = "vfl-secret-janitor"

    def remove_client(self, scheduler, client: str) -> None:
        prefix = f"{SECRET_PREFIX}{client}-"
        for name in [n for n in scheduler.worker_plugins if n.startswith(prefix)]:
            asyncio.ensure_future(_drop(scheduler, name))


def _has_janitor(dask_scheduler) -> bool:
    return SecretJanitor.name in dask_scheduler.plugins


async def _drop(scheduler, name: str) -> None:
    try:
        await scheduler.unregister_worker_plugin(comm=None, name=name)
    except ValueError:          # already gone
        pass


# -- in the party process ----------------------------------------------------------------------
class _Piece:
    """A Dask future as :mod:`protocols._workers` expects one (result, done, cancel)."""

    def __init__(self, future, backend: "DaskBackend"):
        self._future, self._backend = future, backend
        self._deadline = time.monotonic() + backend.task_timeout      # from submission, queueing included

    def result(self):
        """The piece's result, within ``task_timeout`` of its submission; about ``LOST_AFTER``
        seconds once the client has lost the scheduler (Dask would keep its futures pending
        while it tries to reconnect)."""
        backend, lost_since = self._backend, None
        try:
            while True:
                try:
                    return unpack(self._future.result(timeout=POLL))
                except TimeoutError:
                    now = time.monotonic()
                    if now > self._deadline:
                        raise ComputeError(f"{backend.name}: a piece was not done {backend.task_timeout:g} s after "
                                           "it was submitted ([compute] task_timeout)") from None
                    if backend.client.status == "running":
                        lost_since = None
                    elif lost_since is None:
                        lost_since = now
                    elif now - lost_since > LOST_AFTER:
                        raise ComputeError(f"{backend.name}: the scheduler is gone (client {backend.client.status} "
                                           f"for {LOST_AFTER:g} s)") from None
        except ComputeError:
            raise
        except Exception as exc:
            if type(exc).__name__ in ("KilledWorker", "CancelledError", "CommClosedError", "FutureCancelledError"):
                raise ComputeError(f"{backend.name}: a piece was lost ({type(exc).__name__}: {exc}); "
                                   "workers died, or the scheduler is gone") from None
            raise

    def done(self) -> bool:
        return self._future.done()

    def cancel(self) -> bool:
        self._future.cancel()
        return True


class DaskBackend:
    """Pieces of work on a Dask cluster (see the module docstring)."""

    inline = False

    def __init__(self, client: Client, *, address: str, private_keys: bool = True, task_timeout: float = 600.0,
                 call_timeout: float = 30.0):
        self.client, self.address = client, address
        self.private_keys, self.task_timeout = private_keys, float(task_timeout)
        self.call_timeout = float(call_timeout)         # each call to the scheduler (register, count workers)
        self.name = f"the party's cluster at {address}"
        self._unscoped: dict = {}                       # secrets registered outside any job (until close)
        self._pending_release: set[str] = set()         # names whose drop failed: retried
        self._lock = threading.Lock()
        self._threads = (0, 0.0)                        # (worker threads, when counted)
        if not self._bounded(self.client.run_on_scheduler, _has_janitor):
            self._bounded(self.client.register_plugin, SecretJanitor(), name=SecretJanitor.name)

    def _bounded(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` (a call to the scheduler) within ``call_timeout``, or ComputeError."""
        box: dict = {}

        def target():
            try:
                box["value"] = fn(*args, **kwargs)
            except BaseException as exc:        # handed to the caller
                box["error"] = exc

        thread = threading.Thread(target=target, name="dask-call", daemon=True)
        thread.start()
        thread.join(self.call_timeout)
        if thread.is_alive():
            raise ComputeError(f"{self.name}: {getattr(fn, '__name__', 'a call')} got no answer within "
                               f"{self.call_timeout:g} s")
        if "error" in box:
            exc = box["error"]
            raise ComputeError(f"{self.name}: {getattr(fn, '__name__', 'a call')} failed: "
                               f"{type(exc).__name__}: {exc}") from None
        return box.get("value")

    @property
    def parallelism(self) -> int:
        threads, when = self._threads
        if time.monotonic() - when > 5.0 or threads == 0:
            threads = sum(self._bounded(self.client.nthreads).values())
            if threads == 0:                    # no workers (yet): wait a little, then say so
                try:
                    self._bounded(self.client.wait_for_workers, 1, timeout=self.call_timeout / 2)
                except ComputeError:
                    raise ComputeError(f"{self.name} has no workers") from None
                threads = sum(self._bounded(self.client.nthreads).values())
            self._threads = (threads, time.monotonic())
        return max(threads, 1)

    def submit(self, call, secret, *args):
        if not self.private_keys and not _is_public(secret):
            return LocalPool(resolve_workers()).submit(call, secret, *args)     # keys stay on this machine
        name = self._register(secret)
        return _Piece(self.client.submit(run_piece, call, name, pack(self._share(args)), pure=False), self)

    def _share(self, args):
        """``args`` with each :class:`~protocols._workers.Shared` value sent to every worker once
        (a Dask future in its place; released when the value's last piece is gone)."""
        if isinstance(args, Shared):
            handle = args.handles.get(id(self))
            if handle is None:
                handle = args.handles[id(self)] = self._bounded(self.client.scatter, pack(args.value),
                                                                broadcast=True, hash=False)
            return handle
        if isinstance(args, tuple):
            return tuple(self._share(a) for a in args)
        return args

    def _register(self, secret) -> str:
        """The name of ``secret``'s plugin in the current job (registered on first use): a
        random name per job, so two jobs never share one and names say nothing of the secret."""
        scope = _JOB_SECRETS.get()
        if scope is None:
            log.warning("a secret reached %s outside any job: it stays there until the party stops", self.name)
            scope = self._unscoped
        with self._lock:
            name = scope.get(secret)
            if name is not None:
                return name
            name = f"{SECRET_PREFIX}{self.client.id}-{secrets.token_hex(12)}"
            scope[secret] = name            # listed before the call: a failed registration is dropped too
        try:
            self._bounded(self.client.register_plugin, SecretPlugin(name, secret), name=name)
        except ComputeError:
            with self._lock:
                scope.pop(secret, None)
            self.release([name])
            raise
        return name

    def release(self, names) -> None:
        """Drop the secrets ``names`` from every worker and the scheduler; a drop that fails is
        retried at the next release (and the scheduler's janitor drops them when this client goes)."""
        with self._lock:
            todo = set(names) | self._pending_release
            self._pending_release.clear()
        for name in sorted(todo):
            try:
                self._bounded(self.client.unregister_worker_plugin, name)
            except ComputeError as exc:
                if "does not exist" in str(exc):
                    continue
                log.warning("could not drop a secret from %s yet (%s); will retry", self.name, exc)
                with self._lock:
                    self._pending_release.add(name)

    def close(self) -> None:
        self.release(list(self._unscoped.values()))
        try:
            self.client.close(timeout=LOST_AFTER)
        except Exception:       # the scheduler is gone: the janitor cannot run, its workers exit (death-timeout)
            pass


_PUBLIC_KINDS = ("public", "ou-public")


def _is_public(secret) -> bool:
    """A public key's token (safe anywhere); everything else counts as private key material."""
    return isinstance(secret, tuple) and bool(secret) and secret[0] in _PUBLIC_KINDS


def start_job_scope():
    """Begin recording the secrets a job registers (returns the token to end it with)."""
    return _JOB_SECRETS.set({})


def end_job_scope(token, backend: DaskBackend | None) -> None:
    names = list((_JOB_SECRETS.get() or {}).values())
    _JOB_SECRETS.reset(token)
    if backend is not None:
        backend.release(names)


def loopback_cluster(n_workers: int, directory: str):
    """A throwaway cluster on this machine (tests, benchmarks): ``n_workers`` single-thread worker
    processes and a scheduler on 127.0.0.1 behind mutual TLS with a fresh self-signed
    certificate, whose files (``ca_file``, ``cert_file``, ``key_file``, as a party's
    ``[compute]`` names them) are written to ``directory``. Returns ``(cluster, files)``."""
    import os

    from distributed import LocalCluster
    from distributed.security import Security
    security = Security.temporary()
    files = {}
    for key, pem in (("ca_file", security.tls_ca_file), ("cert_file", security.tls_client_cert),
                     ("key_file", security.tls_client_key)):
        files[key] = os.path.join(directory, f"{key}.pem")
        fd = os.open(files[key], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(pem)
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, security=security,
                           protocol="tls://", host="127.0.0.1", dashboard_address=":0", worker_dashboard_address=None)
    return cluster, files
