"""Pieces both roles use: input checks, secret shuffles, chunked point streams."""
from __future__ import annotations

import secrets
from typing import Sequence

import numpy as np

from protocols.psi import group
from protocols.psi.errors import PsiInputError, PsiProtocolError

DEFAULT_CHUNK = 1 << 16          # points per message: 2 MiB frames, bounded memory per step


def check_ids(ids: Sequence[bytes], who: str) -> list[bytes]:
    """A party's own ids: a non-empty list of distinct ``bytes``."""
    ids = list(ids)
    if not ids:
        raise PsiInputError(f"{who}: no ids (PSI needs at least one)")
    if not all(isinstance(item, bytes) for item in ids):
        raise PsiInputError(f"{who}: ids must be bytes (normalize and encode them first)")
    if len(set(ids)) != len(ids):
        raise PsiInputError(f"{who}: {len(ids) - len(set(ids))} duplicate ids")
    return ids


def secure_permutation(n: int) -> np.ndarray:
    """A uniformly random permutation of ``range(n)`` drawn from :mod:`secrets`.

    Sorting 64-bit CSPRNG keys: ties (probability < n²/2⁶⁵) only make two of them keep
    their relative order. Never ``random`` or a numpy Generator: the order is secret.
    """
    if n <= 1:
        return np.arange(n, dtype=np.int64)
    keys = np.frombuffer(secrets.token_bytes(8 * n), dtype=np.uint64)
    return np.argsort(keys, kind="stable").astype(np.int64)


def chunk_bounds(n: int, chunk_size: int) -> list[tuple[int, int]]:
    return [(i, min(i + chunk_size, n)) for i in range(0, n, chunk_size)]


def as_keys(points: np.ndarray) -> np.ndarray:
    """32-byte points as a 1-d ``S32`` array: exact comparison, fast sort (intersect1d)."""
    return np.ascontiguousarray(points).view("S32").ravel()


class Inbox:
    """Collects one chunked point stream from a peer and checks it arrives whole and in order."""

    def __init__(self, what: str, peer: str, chunk_size: int, expected_total: int | None = None):
        self.what, self.peer, self.chunk_size = what, peer, chunk_size
        self.total = expected_total
        self._chunks: list[np.ndarray] = []
        self.count = 0

    @property
    def done(self) -> bool:
        return self.total is not None and self.count == self.total

    def add(self, msg) -> np.ndarray:
        """Check ``msg`` (a chunk of this stream) and keep its points; returns them."""
        where = f"{self.what} from {self.peer}"
        if isinstance(msg.total, bool) or not isinstance(msg.total, int) or msg.total < 1:
            raise PsiProtocolError(f"{where}: bad total {msg.total!r}")
        if self.total is None:
            self.total = msg.total
        if msg.total != self.total:
            raise PsiProtocolError(f"{where}: total changed from {self.total} to {msg.total}")
        if msg.seq != len(self._chunks):
            raise PsiProtocolError(f"{where}: expected chunk {len(self._chunks)}, received {msg.seq}")
        points = group.check_points(msg.points, where)
        expected = min(self.chunk_size, self.total - self.count)
        if len(points) != expected:
            raise PsiProtocolError(f"{where}: chunk {msg.seq} has {len(points)} points, expected {expected}")
        self._chunks.append(points)
        self.count += len(points)
        return points

    def keep(self, points: np.ndarray) -> None:
        """Replace the last chunk kept (after masking it again)."""
        self._chunks[-1] = points

    def array(self) -> np.ndarray:
        if not self._chunks:
            return np.empty((0, group.POINT_BYTES), dtype=np.uint8)
        return np.concatenate(self._chunks)
