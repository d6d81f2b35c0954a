"""Additive secret sharing over the ring Z_2^64, with fixed-point numbers.

A value ``x`` in Z_2^64 is held by ``n`` parties as shares ``x_0 … x_{n-1}`` with
``Σ x_i = x (mod 2^64)``; any ``n − 1`` shares are uniformly random and independent of ``x``.
numpy's ``uint64`` arithmetic wraps modulo 2^64, so adding shares, adding a public constant
(one party does it) and multiplying by a public integer are plain vectorized numpy operations.

Fixed point: a real ``v`` is the ring element ``round(v · 2^f)`` in two's complement, with
``f`` fractional bits (:data:`DEFAULT_FRAC_BITS`); ``|v| < 2^(62 − f)`` is required so that a
product of two such values, before truncation, still has a bit of headroom below 2^63.
Randomness for shares comes from ``secrets`` (the OS CSPRNG), never from a seeded generator.
"""
from __future__ import annotations

import secrets

import numpy as np

RING_BITS = 64
DEFAULT_FRAC_BITS = 16          # resolution 2^-16 ≈ 1.5e-5
MAX_ENCODED_BITS = 62           # |round(v·2^f)| < 2^62


class RingError(ValueError):
    """A value does not fit the ring's fixed-point range, or shares do not line up."""


def random_ring(shape) -> np.ndarray:
    """Uniform ring elements (``uint64``) of ``shape``, from ``secrets``."""
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    count = int(np.prod(shape, dtype=np.int64))
    return np.frombuffer(secrets.token_bytes(8 * count), dtype=np.uint64).reshape(shape).copy()


def share(x: np.ndarray, parties: int) -> list[np.ndarray]:
    """Split ring elements ``x`` into ``parties`` additive shares (the first ``parties − 1`` uniform)."""
    if parties < 2:
        raise RingError(f"sharing needs at least 2 parties, got {parties}")
    x = as_ring(x)
    out = [random_ring(x.shape) for _ in range(parties - 1)]
    last = x.copy()
    for s in out:
        last -= s
    return [last, *out]


def reconstruct(shares) -> np.ndarray:
    """The ring elements whose shares are ``shares`` (their sum modulo 2^64)."""
    shares = [as_ring(s) for s in shares]
    if not shares:
        raise RingError("nothing to reconstruct")
    shape = shares[0].shape
    if any(s.shape != shape for s in shares):
        raise RingError(f"shares of different shapes: {[s.shape for s in shares]}")
    total = shares[0].copy()
    for s in shares[1:]:
        total += s
    return total


def as_ring(x) -> np.ndarray:
    """``x`` as a ``uint64`` array (ring elements must already be integers)."""
    x = np.asarray(x)
    if x.dtype == np.uint64:
        return x
    if x.dtype == np.int64:
        return x.view(np.uint64)
    raise RingError(f"ring elements must be uint64 (or int64), got {x.dtype}")


def signed(x: np.ndarray) -> np.ndarray:
    """Ring elements read as two's-complement integers in [−2^63, 2^63)."""
    return as_ring(x).view(np.int64)


def encode(values, frac_bits: int = DEFAULT_FRAC_BITS, *, what: str = "values") -> np.ndarray:
    """Finite reals as fixed-point ring elements ``round(v · 2^frac_bits)``.

    Raises :class:`RingError` naming ``what`` for NaN/inf or values outside ±2^(62 − frac_bits).
    """
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise RingError(f"{what}: NaN or infinite values cannot be encoded")
    limit = 2.0 ** (MAX_ENCODED_BITS - frac_bits)
    if v.size and float(np.max(np.abs(v))) >= limit:
        raise RingError(f"{what}: |value| {float(np.max(np.abs(v))):.6g} is outside the fixed-point range "
                        f"±2^{MAX_ENCODED_BITS - frac_bits} for {frac_bits} fractional bits")
    return np.rint(np.ldexp(v, frac_bits)).astype(np.int64).view(np.uint64)


def decode(x: np.ndarray, frac_bits: int = DEFAULT_FRAC_BITS) -> np.ndarray:
    """Fixed-point ring elements as floats."""
    return np.ldexp(signed(x).astype(np.float64), -frac_bits)


def ring_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` modulo 2^64 (numpy's integer matmul wraps; no BLAS, exact)."""
    return np.matmul(as_ring(a), as_ring(b))


def to_python_ints(x: np.ndarray) -> list[int]:
    """Ring elements as non-negative Python integers in [0, 2^64) (for big-number arithmetic)."""
    return as_ring(x).ravel().tolist()


def from_python_ints(values, shape=None) -> np.ndarray:
    """Python integers reduced modulo 2^64, as ring elements of ``shape``."""
    mask = (1 << RING_BITS) - 1
    out = np.fromiter((int(v) & mask for v in values), dtype=np.uint64)
    return out if shape is None else out.reshape(shape)
