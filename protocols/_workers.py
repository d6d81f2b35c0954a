"""How many worker processes the engine may use, and how long they live.

``VFL_WORKERS`` caps the process pool of every parallel routine; an explicit ``workers=``
argument wins over the environment. Default: all cores.

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
