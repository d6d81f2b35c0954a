"""Fixed-point encoding with one scale per vector and a declared magnitude bound.

A real value v is stored as the integer ``round(v · 2^exponent)``; negative integers k are stored
as ``n − |k|``. Every vector carries two public numbers that come from parameters, never from
the data: ``exponent`` (fractional bits, the same for all elements) and ``mag_bits`` (every
encoded integer satisfies |k| < 2^mag_bits). Homomorphic operations update ``mag_bits``
conservatively, and an operation whose result could exceed n/3 in magnitude raises
``OverflowError`` before it runs, so a result never silently wraps modulo n.

python-paillier instead sends a per-number exponent in the clear, which leaks each value's
magnitude; here the only public scale is the vector's.
"""
from __future__ import annotations

import math

import numpy as np
from gmpy2 import mpz

from protocols.paillier.errors import EncodingError

DEFAULT_FRAC_BITS = 32      # resolution 2^-32 ≈ 2.3e-10
DEFAULT_INT_BITS = 31       # |v| < 2^31 unless the caller declares more


def check_headroom(mag_bits: int, n_bits: int, what: str) -> None:
    """Raise OverflowError if integers of ``mag_bits`` bits may leave (−n/3, n/3)."""
    # n >= 2^(n_bits-1) so n/3 > 2^(n_bits-3): magnitudes below 2^(n_bits-3) are always safe.
    if mag_bits > n_bits - 3:
        raise OverflowError(
            f"{what} needs {mag_bits}-bit plaintexts but a {n_bits}-bit key holds at most "
            f"{n_bits - 3} bits: lower the precision, the value range or the number of terms")


def to_fixed_point(values, frac_bits: int, int_bits: int) -> tuple[list[int], int]:
    """Scale and round ``values`` to Python integers; returns (ints, mag_bits).

    Raises EncodingError naming the first offending index for NaN, inf or |v| >= 2^int_bits.
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.dtype.kind in "iu":
        ints = [int(v) << frac_bits for v in arr.tolist()]
    elif arr.dtype.kind in "fb":
        arr = arr.astype(np.float64, copy=False)
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise EncodingError(f"cannot encode {arr[i]!r} at index {i}: not a finite number")
        if frac_bits <= 52 and int_bits + frac_bits <= 63 and arr.size:
            scaled = np.rint(np.ldexp(arr, frac_bits))
            ints = scaled.astype(np.int64).tolist() if np.abs(scaled).max() < 2.0 ** 62 else \
                [int(v) for v in scaled.tolist()]
        else:
            ints = [round(math.ldexp(v, frac_bits)) for v in arr.tolist()]
    elif arr.dtype == object:
        ints = [_object_to_fixed(v, frac_bits, i) for i, v in enumerate(arr.tolist())]
    else:
        raise EncodingError(f"cannot encode values of dtype {arr.dtype}")
    mag_bits = int_bits + frac_bits
    limit = 1 << mag_bits
    for i, k in enumerate(ints):
        if not -limit < k < limit:
            raise EncodingError(f"value at index {i} exceeds the declared range |v| < 2^{int_bits}")
    return ints, mag_bits


def _object_to_fixed(v, frac_bits: int, index: int) -> int:
    if isinstance(v, (int, np.integer)):
        return int(v) << frac_bits
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise EncodingError(f"cannot encode {v!r} at index {index}") from None
    if not math.isfinite(f):
        raise EncodingError(f"cannot encode {v!r} at index {index}: not a finite number")
    return round(math.ldexp(f, frac_bits))


def scalars_to_fixed(values, frac_bits: int) -> tuple[list[int], int]:
    """Plaintext multipliers: scale and round, and return the bits of the largest magnitude."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        ints = [int(v) << frac_bits for v in arr.reshape(-1).tolist()]
    else:
        arr = np.asarray(arr, dtype=np.float64).reshape(-1)
        if not np.isfinite(arr).all():
            i = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise EncodingError(f"cannot multiply by {arr[i]!r} at index {i}: not a finite number")
        ints = [int(v) for v in np.rint(np.ldexp(arr, frac_bits)).tolist()] if frac_bits <= 52 else \
            [round(math.ldexp(v, frac_bits)) for v in arr.tolist()]
    top = max((abs(k) for k in ints), default=0)
    return ints, max(top.bit_length(), 1)


def to_residues(ints: list[int], n: mpz) -> list[mpz]:
    """Signed integers to plaintexts mod n (negative k becomes n − |k|)."""
    return [mpz(k) % n for k in ints]


def from_residues(residues, n: mpz, max_int: mpz) -> list[int]:
    """Plaintexts mod n back to signed integers; the middle third means overflow."""
    out = []
    for m in residues:
        if m <= max_int:
            out.append(int(m))
        elif m >= n - max_int:
            out.append(int(m) - int(n))
        else:
            raise OverflowError("decrypted value is in the overflow region: the computation wrapped modulo n")
    return out


def decode_floats(ints: list[int], exponent: int) -> np.ndarray:
    """Signed fixed-point integers to float64 (exact ldexp, no intermediate overflow)."""
    big = max((abs(k) for k in ints), default=0).bit_length() > 62
    if not big:
        return np.ldexp(np.array(ints, dtype=np.int64).astype(np.float64), -exponent)
    return np.array([_ldexp_int(k, -exponent) for k in ints], dtype=np.float64)


def _ldexp_int(k: int, e: int) -> float:
    shift = max(abs(k).bit_length() - 60, 0)     # keep 60 significant bits, then scale
    return math.ldexp(k >> shift if k >= 0 else -((-k) >> shift), e + shift)
