"""Chunked parallel work for long vectors, on the backend of :mod:`protocols._workers`.

On the local pool the size comes from ``workers=`` or ``$VFL_WORKERS`` (default: all cores);
workers start with ``forkserver`` (safe beside the ZeroMQ I/O threads of a party process).
Workers keep the key they saw last, so each fixed-base table is built once per worker, not once
per task. A key reaches only this party's own workers: over a local pipe with each chunk on the
local pool, or once per job to the party's own cluster (``parties/runtime/dask_backend.py``).
"""
from __future__ import annotations

import concurrent.futures
import os

from protocols._workers import current_backend, gather, plain

_WORKER_KEYS: dict[tuple, object] = {}      # inside worker processes only


def _key_token(key) -> tuple:
    """Small picklable identity of a key (Paillier or OU, public or private); the worker
    rebuilds (and caches) the key from it."""
    return key.token()


def _key_from_token(token: tuple):
    key = _WORKER_KEYS.get(token)
    if key is None:
        from protocols.paillier.keys import PrivateKey, PublicKey
        from protocols.paillier.ou import OUPrivateKey, OUPublicKey
        kind = token[0]
        if kind in ("public", "private"):
            public = PublicKey(token[1], token[2])
            key = PrivateKey(public, token[3], token[4]) if kind == "private" else public
        elif kind in ("ou-public", "ou-private"):
            public = OUPublicKey(token[1], token[2], token[3])
            key = OUPrivateKey(public, token[4], token[5]) if kind == "ou-private" else public
        else:
            raise ValueError(f"unknown key kind {kind!r}")
        _WORKER_KEYS.clear()                    # one key at a time: bounded memory
        _WORKER_KEYS[token] = key
    return key


def forget_keys() -> None:
    """Drop every key this worker process rebuilt (a cluster worker, when a job ends)."""
    _WORKER_KEYS.clear()


def _run_task(token, fn, chunk, extra):
    return fn(_key_from_token(token), chunk, *extra)


def map_chunks(fn, key, items: list, *, extra: tuple = (), workers: int | None = None,
               min_chunk: int = 64) -> list:
    """``fn(key, chunk, *extra)`` over chunks of ``items``, results concatenated in order.

    ``fn`` must be a module-level function returning a list. Runs in this process when one
    worker is allowed, when the input is short, or inside a worker process already; otherwise
    on the backend (:mod:`protocols._workers`), which gets the key as its token.
    """
    backend = current_backend(workers)
    if backend.inline or len(items) < 2 * min_chunk:
        return fn(key, items, *plain(extra))
    n_chunks = min(max(len(items) // min_chunk, 1), 4 * backend.parallelism)
    size = -(-len(items) // n_chunks)
    token = _key_token(key)
    futures = [backend.submit(_run_task, token, fn, items[i:i + size], extra) for i in range(0, len(items), size)]
    return [x for part in gather(futures) for x in part]


class Pending:
    """Chunks submitted to the pool (or deferred, with one worker); ``result()`` gathers them."""

    def __init__(self, futures=None, thunk=None):
        self._futures, self._thunk = futures, thunk
        self._state = "pending"

    def result(self) -> list:
        """The results, once: randomizers must not be handed out twice."""
        if self._state != "pending":
            raise concurrent.futures.CancelledError(f"this work was {self._state}")
        self._state = "taken"
        if self._thunk is not None:
            return self._thunk()
        return [x for part in gather(self._futures) for x in part]

    def running(self) -> bool:
        """Whether pool work is still under way (deferred one-worker work never is)."""
        return self._state == "pending" and any(not f.done() for f in self._futures or [])

    def cancel(self) -> int:
        """Drop work no longer wanted. Chunks the pool has not handed to a worker yet never run;
        the pool's few already-queued or running ones finish and are discarded. Returns how
        many chunks were cancelled."""
        if self._state == "pending":
            self._state = "cancelled"
        futures, self._futures, self._thunk = self._futures or [], [], None
        return sum(f.cancel() for f in futures)


def submit_chunks(fn, key, items: list, *, extra: tuple = (), workers: int | None = None,
                  tasks_per_worker: int = 1) -> Pending:
    """Like :func:`map_chunks` but returns at once: the work runs while the caller does other
    things (e.g. waits for a peer). With one worker it runs when ``result()`` is called.
    ``tasks_per_worker`` > 1 splits it finer, so that ``Pending.cancel()`` can drop more of it."""
    backend = current_backend(workers)
    if backend.inline:
        return Pending(thunk=lambda: fn(key, items, *plain(extra)))
    size = -(-len(items) // (backend.parallelism * max(1, tasks_per_worker))) if items else 1
    token = _key_token(key)
    return Pending(futures=[backend.submit(_run_task, token, fn, items[i:i + size], extra)
                            for i in range(0, len(items), size)])


def warm_up(key, workers: int | None = None) -> None:
    """Build the key's tables in every worker now (e.g. before timing or a training loop)."""
    backend = current_backend(workers)
    if backend.inline:
        return
    token = _key_token(key)
    gather([backend.submit(_warm, token, os.getpid()) for _ in range(backend.parallelism)])


def _warm(token, _parent_pid):
    import time
    _key_from_token(token).warm()
    time.sleep(0.2)     # keep this worker busy so the others take the remaining warm-up tasks
    return True
