"""The Dask backend of :mod:`protocols._workers`: a party's pieces of work on its own cluster.

Imported only when a party's ``[compute]`` names a scheduler (it needs ``distributed``).

- **Secrets once per job.** A piece's secret (a Paillier or OU key token, a PSI scalar) reaches
  the cluster as a worker plugin, registered the first time a job uses it: the scheduler hands
  it to every worker, also to workers that join later (a piece retried elsewhere finds it). The
  job's :func:`parties.runtime.compute.job_scope` unregisters it at the end; each worker then
  drops it, and the key objects built from it. Pieces carry only the plugin's name.
- **Bytes, not pickled big numbers.** Lists of gmpy2 numbers (ciphertexts, plaintexts) travel
  as one fixed-width byte string each, both ways.
- **Failures.** A worker that dies mid-piece: the scheduler runs the piece elsewhere (Dask's
  ``allowed-failures``); past that, or when the scheduler is gone or a piece takes longer than
  ``task_timeout``, the job fails with :class:`ComputeError` naming the cluster. Never a hang.

Everything here stays inside one organisation: its own processes, its own scheduler, behind
mutual TLS. Dask pickles between them, as the local process pool does between this party's own
processes; nothing from a peer organisation ever reaches this module.
"""
from __future__ import annotations

import contextvars
import hashlib
import threading
import time

import gmpy2
from distributed import Client
from distributed.diagnostics.plugin import WorkerPlugin
from gmpy2 import mpz

from vfl.errors import VFLError

POLL = 0.5           # seconds between looks at the client while a piece runs
LOST_AFTER = 5.0     # seconds without a scheduler before the pieces waited for are given up

_SECRETS: dict[str, object] = {}        # on a worker: plugin name -> secret, for the job's length
_JOB_SECRETS: contextvars.ContextVar = contextvars.ContextVar("vfl_job_secrets", default=None)


class ComputeError(VFLError):
    """The party's own cluster could not do a piece of work (named, never a hang)."""


# -- big numbers as bytes --------------------------------------------------------------------
class PackedInts:
    """A list of non-negative gmpy2 integers as one fixed-width big-endian byte string."""

    __slots__ = ("width", "count", "blob")

    def __init__(self, values: list):
        self.count = len(values)
        self.width = max((int(v).bit_length() + 7) // 8 for v in values) or 1
        self.blob = b"".join(int(v).to_bytes(self.width, "big") for v in values)

    def values(self) -> list:
        w, blob = self.width, self.blob
        return [mpz.from_bytes(blob[i:i + w], "big") for i in range(0, self.count * w, w)]


def pack(obj):
    """``obj`` with every non-empty list of non-negative gmpy2 integers made a :class:`PackedInts`
    (lists and tuples are walked; anything else is left as it is)."""
    if isinstance(obj, list) and obj and all(type(v) is gmpy2.mpz and v >= 0 for v in obj):
        return PackedInts(obj)
    if isinstance(obj, (list, tuple)):
        out = [pack(v) for v in obj]
        return out if isinstance(obj, list) else tuple(out)
    return obj


def unpack(obj):
    if isinstance(obj, PackedInts):
        return obj.values()
    if isinstance(obj, (list, tuple)):
        out = [unpack(v) for v in obj]
        return out if isinstance(obj, list) else tuple(out)
    return obj


# -- on the workers ----------------------------------------------------------------------------
class SecretPlugin(WorkerPlugin):
    """Holds one job's secret on every worker while the job runs."""

    def __init__(self, name: str, secret):
        self.name, self._secret = name, secret

    def setup(self, worker):
        _SECRETS[self.name] = self._secret

    def teardown(self, worker):
        _SECRETS.pop(self.name, None)
        from protocols.paillier.parallel import forget_keys
        forget_keys()                       # the key objects built from it, too

    def __repr__(self) -> str:
        return f"SecretPlugin({self.name})"


def run_piece(call, name: str, args: tuple):
    """A piece on a worker: ``call(secret, *args)`` with the job's secret, bytes both ways."""
    try:
        secret = _SECRETS[name]
    except KeyError:
        raise ComputeError(f"this worker holds no secret {name}: the job ended or the plugin was not set up") from None
    return pack(call(secret, *unpack(args)))


# -- in the party process ----------------------------------------------------------------------
class _Piece:
    """A Dask future as :mod:`protocols._workers` expects one (result, done, cancel)."""

    def __init__(self, future, backend: "DaskBackend"):
        self._future, self._backend = future, backend

    def result(self):
        """The piece's result. Waits at most ``task_timeout``, and about ``LOST_AFTER`` seconds
        once the client has lost the scheduler (Dask would keep its futures pending while it
        tries to reconnect)."""
        backend = self._backend
        deadline, lost_since = time.monotonic() + backend.task_timeout, None
        try:
            while True:
                try:
                    return unpack(self._future.result(timeout=POLL))
                except TimeoutError:
                    now = time.monotonic()
                    if now > deadline:
                        raise ComputeError(f"{backend.name}: a piece took longer than {backend.task_timeout:g} s "
                                           "([compute] task_timeout)") from None
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
                raise ComputeError(f"{self._backend.name}: a piece was lost ({type(exc).__name__}: {exc}); "
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

    def __init__(self, client: Client, *, address: str, private_keys: bool = True, task_timeout: float = 600.0):
        self.client, self.address = client, address
        self.private_keys, self.task_timeout = private_keys, float(task_timeout)
        self.name = f"the party's cluster at {address}"
        self._registered: set[str] = set()
        self._lock = threading.Lock()

    @property
    def parallelism(self) -> int:
        return max(sum(self.client.nthreads().values()), 1)

    def submit(self, call, secret, *args):
        if not self.private_keys and _is_private(secret):
            from protocols._workers import LocalPool, resolve_workers
            return LocalPool(resolve_workers()).submit(call, secret, *args)     # keys stay on this machine
        name = self._register(secret)
        return _Piece(self.client.submit(run_piece, call, name, pack(args), pure=False), self)

    def _register(self, secret) -> str:
        name = "vfl-secret-" + hashlib.sha256(repr(secret).encode()).hexdigest()[:24]
        with self._lock:
            known = name in self._registered
            self._registered.add(name)
        if not known:
            self.client.register_plugin(SecretPlugin(name, secret), name=name)
        scope = _JOB_SECRETS.get()
        if scope is not None:
            scope.add(name)
        return name

    def release(self, names) -> None:
        """Drop the secrets ``names`` from every worker (and the scheduler)."""
        for name in names:
            with self._lock:
                if name not in self._registered:
                    continue
                self._registered.discard(name)
            if self.client.status != "running":
                # the scheduler is gone, and with it the plugin; workers that lost it keep the
                # secret until they exit (start them with --death-timeout: docs/deployment.md)
                continue
            try:
                self.client.unregister_worker_plugin(name)
            except Exception:       # lost meanwhile: as above
                pass

    def close(self) -> None:
        self.release(list(self._registered))
        self.client.close(timeout=LOST_AFTER)


def _is_private(secret) -> bool:
    """Private key material (a private key's token, a PSI scalar) rather than a public key's."""
    if isinstance(secret, tuple) and secret and isinstance(secret[0], str):
        return "private" in secret[0]
    return True


def start_job_scope():
    """Begin recording the secrets a job registers (returns the token to end it with)."""
    return _JOB_SECRETS.set(set())


def end_job_scope(token, backend: DaskBackend | None) -> None:
    names = _JOB_SECRETS.get() or set()
    _JOB_SECRETS.reset(token)
    if backend is not None:
        backend.release(names)
