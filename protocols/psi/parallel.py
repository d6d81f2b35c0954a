"""Hashing and scalar multiplication of many points over a process pool.

The pieces run where :mod:`protocols._workers` says: this machine's pool (its size from
``workers=`` or ``$VFL_WORKERS``) or the party's own cluster. The secret scalar bytes go to this
party's own workers only, as each piece's secret (over a local pipe, or once per job to the
party's cluster); they are never sent anywhere else. Results come back as raw concatenated
32-byte points.
"""
from __future__ import annotations

import numpy as np

from protocols._workers import current_backend, gather
from protocols.psi import group

MIN_PIECE = 512          # below this a task is not worth the round trip to a worker


def _split(n: int, workers: int) -> list[tuple[int, int]]:
    pieces = max(1, min(2 * workers, n // MIN_PIECE))
    size = -(-n // pieces) if n else 0
    return [(i, min(i + size, n)) for i in range(0, n, size)] if n else []


def _piece(secret: bytes, fn, pieces: tuple, tail: tuple) -> bytes:
    return fn(secret, *pieces, *tail)


def _run(fn, secret: bytes, seqs: list, tail: tuple, workers: int | None) -> bytes:
    """``fn(secret, piece, *tail)`` over pieces of each sequence in ``seqs``, joined in order
    (a failed piece cancels the others: their work, and the scalar, are not needed)."""
    backend = current_backend(workers)
    n = len(seqs[0])
    if backend.inline or n < 2 * MIN_PIECE:
        return fn(secret, *(s[0:n] for s in seqs), *tail)
    futures = [backend.submit(_piece, secret, fn, tuple(s[a:b] for s in seqs), tail)
               for a, b in _split(n, backend.parallelism)]
    return b"".join(gather(futures))


def hash_and_mask(items: list[bytes], salt: bytes, scalar: group.Scalar, *,
                  workers: int | None = None) -> np.ndarray:
    """``H(id)^k`` for each id (its own set, by its owner), as an ``(n, 32)`` uint8 array."""
    return group.blob_to_points(_run(group.hash_mult_blob, scalar.raw_bytes(), [items], (salt,), workers))


def mask(points: np.ndarray, scalar: group.Scalar, *, workers: int | None = None) -> np.ndarray:
    """``P^k`` for each point of an ``(n, 32)`` uint8 array (a peer's masked points)."""
    blob = np.ascontiguousarray(points, dtype=np.uint8).tobytes()
    # slice the bytes on 32-byte boundaries: pieces are given as views of one buffer
    view = _PointBytes(blob)
    return group.blob_to_points(_run(group.mult_blob, scalar.raw_bytes(), [view], (), workers))


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
