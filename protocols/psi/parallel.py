"""Hashing and scalar multiplication of many points over a process pool.

The pool size comes from ``workers=`` or ``$VFL_WORKERS`` (see :mod:`protocols._workers`).
Workers start with ``forkserver`` (safe beside a party's ZeroMQ I/O threads). A task carries
this party's own secret scalar bytes to this party's own workers over a local pipe; it is
never sent anywhere else. Results come back as raw concatenated 32-byte points.
"""
from __future__ import annotations

import multiprocessing

import numpy as np

from protocols._workers import process_pool, resolve_workers
from protocols.psi import group

MIN_PIECE = 512          # below this a task is not worth the round trip to a worker


def _split(n: int, workers: int) -> list[tuple[int, int]]:
    pieces = max(1, min(2 * workers, n // MIN_PIECE))
    size = -(-n // pieces) if n else 0
    return [(i, min(i + size, n)) for i in range(0, n, size)] if n else []


def _run(fn, head: tuple, seqs: list, tail: tuple, workers: int | None) -> bytes:
    """``fn(*head, piece, *tail)`` over pieces of each sequence in ``seqs``, joined in order."""
    n_workers = resolve_workers(workers)
    n = len(seqs[0])
    if n_workers == 1 or n < 2 * MIN_PIECE or multiprocessing.parent_process() is not None:
        return fn(*head, *(s[0:n] for s in seqs), *tail)
    pool = process_pool(n_workers)
    futures = [pool.submit(fn, *head, *(s[a:b] for s in seqs), *tail) for a, b in _split(n, n_workers)]
    try:
        return b"".join([f.result() for f in futures])
    except BaseException:
        for f in futures:                # a failed piece: the others' work (and scalar) is not needed
            f.cancel()
        raise


def hash_and_mask(items: list[bytes], salt: bytes, scalar: group.Scalar, *,
                  workers: int | None = None) -> np.ndarray:
    """``H(id)^k`` for each id (its own set, by its owner), as an ``(n, 32)`` uint8 array."""
    return group.blob_to_points(_run(group.hash_mult_blob, (scalar.raw_bytes(),), [items], (salt,), workers))


def mask(points: np.ndarray, scalar: group.Scalar, *, workers: int | None = None) -> np.ndarray:
    """``P^k`` for each point of an ``(n, 32)`` uint8 array (a peer's masked points)."""
    blob = np.ascontiguousarray(points, dtype=np.uint8).tobytes()
    # slice the bytes on 32-byte boundaries: pieces are given as views of one buffer
    view = _PointBytes(blob)
    return group.blob_to_points(_run(group.mult_blob, (scalar.raw_bytes(),), [view], (), workers))


class _PointBytes:
    """Sequence view of a point blob: ``len`` counts points, slices give bytes of whole points."""

    __slots__ = ("_blob",)

    def __init__(self, blob: bytes):
        self._blob = blob

    def __len__(self) -> int:
        return len(self._blob) // group.POINT_BYTES

    def __getitem__(self, item: slice) -> bytes:
        start, stop, _ = item.indices(len(self))
        return self._blob[start * group.POINT_BYTES:stop * group.POINT_BYTES]
