"""Where a party's parallel work runs: its own process pool (default) or its own cluster.

Every parallel routine of ``protocols`` (Paillier chunks, SecureBoost histograms, PSI hashing
and scalar multiplication) submits its pieces to :func:`current_backend` and collects them with
:func:`gather`, whatever runs them:

- the **local pool** (:class:`LocalPool`), this machine's worker processes. ``VFL_WORKERS`` caps
  it; an explicit ``workers=`` argument wins over the environment. Default: all cores.
- a **backend** the party runtime installs with :func:`set_backend` (a Dask cluster inside the
  party's own network, ``parties/runtime/compute.py``). ``protocols`` imports no distributed
  engine: it only calls the backend's ``submit``. An explicit ``workers=`` still means the
  local pool (tests, and ``workers=1``: in this process).

A piece is ``call(secret, *args)`` with ``secret`` what the piece needs of the party's key
material (a Paillier token, a PSI scalar): the local pool passes it with each piece over a
local pipe; a cluster backend may ship it once per job and pass a reference.

One failure rule for both: :func:`gather` returns results in order, and when a piece fails it
cancels the pieces not yet started and raises the first error.

Workers hold a party's secrets while they work (its PSI scalar, its Paillier key), so they must
not outlive the party, even one killed with SIGKILL (as an OOM killer does). Each worker watches
the party that started the pool and exits the moment it is gone (a Linux pidfd: no polling, no
pid reuse; elsewhere a check every second). With the workers gone the pool's fork server and
resource tracker, which hold no secrets, end by themselves.
"""
from __future__ import annotations

import atexit
import multiprocessing
import os
import select
import threading
import time
from concurrent.futures import ProcessPoolExecutor


def _tie_to_party(party_pid: int) -> None:
    """Pool initializer: exit as soon as the party that made the pool exits."""
    try:
        fd = os.pidfd_open(party_pid)
    except ProcessLookupError:           # it died before this worker got here
        os._exit(0)
    except (AttributeError, OSError):    # no pidfd here: look every second
        threading.Thread(target=_poll_party, args=(party_pid,), daemon=True).start()
        return
    threading.Thread(target=_exit_when_readable, args=(fd,), daemon=True).start()


def _exit_when_readable(fd: int) -> None:
    select.select([fd], [], [])          # a pidfd becomes readable when its process exits
    os._exit(0)


def _poll_party(pid: int) -> None:
    while True:
        time.sleep(1.0)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass

ENV_VAR = "VFL_WORKERS"


def resolve_workers(workers: int | None = None) -> int:
    """Return the worker count to use: the argument, else ``$VFL_WORKERS``, else all cores."""
    if workers is None:
        raw = os.environ.get(ENV_VAR, "").strip()
        if raw:
            try:
                workers = int(raw)
            except ValueError:
                raise ValueError(f"{ENV_VAR} must be a positive integer, got {raw!r}") from None
        else:
            workers = os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return workers


_POOLS: dict[int, ProcessPoolExecutor] = {}
_BACKEND = None            # set by the party runtime (e.g. a Dask cluster); None: the local pool


class Shared:
    """A large argument that every piece of one call uses (e.g. the ciphertexts a level's
    histogram sums draw from): a backend may ship it to each worker once instead of with each
    piece. Pass it inside a piece's arguments (at the top level or in a tuple there)."""

    __slots__ = ("value", "handles")

    def __init__(self, value):
        self.value = value
        self.handles: dict = {}          # backend id -> that backend's handle of the value


def plain(args):
    """``args`` with every :class:`Shared` replaced by its value (top level and tuples)."""
    if isinstance(args, Shared):
        return args.value
    if isinstance(args, tuple):
        return tuple(plain(a) for a in args)
    return args


class LocalPool:
    """The default backend: ``workers`` processes of this machine (shared by every routine)."""

    name = "local pool"

    def __init__(self, workers: int):
        self.parallelism = workers
        # one worker, or already inside a worker process: run here
        self.inline = workers == 1 or multiprocessing.parent_process() is not None

    def submit(self, call, secret, *args):
        return process_pool(self.parallelism).submit(call, secret, *plain(args))     # a copy with each piece


def set_backend(backend) -> None:
    """Install (or with None, remove) the process-wide backend. It needs ``name``,
    ``parallelism`` (pieces worth running at once), ``inline`` (False) and
    ``submit(call, secret, *args)`` returning a future with ``result()``, ``done()`` and
    ``cancel()``."""
    global _BACKEND
    _BACKEND = backend


def installed_backend():
    """The backend :func:`set_backend` installed (None: the local pool)."""
    return _BACKEND


def current_backend(workers: int | None = None):
    """The backend for a routine called with ``workers``: an explicit count means the local
    pool of that size, None the installed backend if there is one, else the local pool."""
    if workers is None and _BACKEND is not None:
        return _BACKEND
    return LocalPool(resolve_workers(workers))


def parallelism(workers: int | None = None) -> int:
    """How many pieces a routine called with ``workers`` should make work for."""
    return current_backend(workers).parallelism


def gather(futures: list) -> list:
    """Each future's result, in order; if one fails, cancel the rest and raise its error."""
    try:
        return [f.result() for f in futures]
    except BaseException:
        for f in futures:
            f.cancel()
        raise


def process_pool(workers: int) -> ProcessPoolExecutor:
    """The shared pool of ``workers`` processes (Paillier and PSI use the same one).

    Workers start with ``forkserver`` (safe beside a party's ZeroMQ I/O threads), so a script
    that uses several workers needs the usual ``if __name__ == "__main__":`` guard.
    """
    pool = _POOLS.get(workers)
    if pool is None:
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method),
                                   initializer=_tie_to_party, initargs=(os.getpid(),))
        _POOLS[workers] = pool
    return pool


def shutdown_pools() -> None:
    """Stop every worker process (also registered with atexit)."""
    for pool in _POOLS.values():
        pool.shutdown(wait=True, cancel_futures=True)
    _POOLS.clear()


atexit.register(shutdown_pools)
