"""How many worker processes the engine may use.

``VFL_WORKERS`` caps the process pool of every parallel routine; an explicit ``workers=``
argument wins over the environment. Default: all cores.
"""
from __future__ import annotations

import atexit
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

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
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method))
        _POOLS[workers] = pool
    return pool


def shutdown_pools() -> None:
    """Stop every worker process (also registered with atexit)."""
    for pool in _POOLS.values():
        pool.shutdown(wait=True, cancel_futures=True)
    _POOLS.clear()


atexit.register(shutdown_pools)
