"""Multi-exponentiation Π bᵢ^{kᵢ} mod N by the bucket (Pippenger) method.

For scalars of b bits split into windows of c bits, each window puts every base into the
bucket of its digit (one multiplication per base) and sums the buckets as Σ_d d·B_d with two
running products (2·2^c multiplications). Cost ≈ ⌈b/c⌉·(len + 2^(c+1)) + b squarings, against
about 1.5·b multiplications per base for separate exponentiations.
This is what makes ``X.T @ [[d]]`` cheap: one multi-exponentiation per column of X.
"""
from __future__ import annotations

import gmpy2
import numpy as np
from gmpy2 import mpz


def best_window(count: int, scalar_bits: int) -> int:
    """The window width with the fewest multiplications for ``count`` scalars of ``scalar_bits``."""
    if count == 0 or scalar_bits == 0:
        return 1
    costs = {c: -(-scalar_bits // c) * (count + (2 << c)) + scalar_bits for c in range(1, 17)}
    return min(costs, key=costs.get)


def _window_digits(scalars: list[int], shift: int, mask: int, as_array: np.ndarray | None) -> list[int]:
    if as_array is not None:
        return ((as_array >> shift) & mask).tolist()
    return [(k >> shift) & mask for k in scalars]


def _bucket_window(bases: list[mpz], digits: list[int], buckets_count: int, modulus: mpz):
    buckets: list = [None] * buckets_count
    for b, d in zip(bases, digits):
        if d:
            cur = buckets[d]
            buckets[d] = b if cur is None else cur * b % modulus
    running = acc = None
    for d in range(buckets_count - 1, 0, -1):
        bucket = buckets[d]
        if bucket is not None:
            running = bucket if running is None else running * bucket % modulus
        if running is not None:
            acc = running if acc is None else acc * running % modulus
    return acc


def multiexp(bases: list[mpz], scalars: list[int], modulus: mpz, window: int | None = None,
             bits: int | None = None) -> mpz:
    """Π bases[i]^scalars[i] mod ``modulus`` for non-negative integer scalars.

    ``bits``: a declared bound on the scalars' bit length, so the number of windows (and the
    window width) does not depend on the largest scalar actually given.
    """
    if len(bases) != len(scalars):
        raise ValueError(f"{len(bases)} bases but {len(scalars)} scalars")
    modulus = mpz(modulus)
    top = max(scalars, default=0)
    if top < 0 or min(scalars, default=0) < 0:
        raise ValueError("multiexp takes non-negative scalars; use signed_multiexp")
    if bits is not None and int(top).bit_length() > bits:
        raise ValueError(f"a scalar has more than the declared {bits} bits")
    bits = int(top).bit_length() if bits is None else bits
    if bits == 0:
        return mpz(1)
    c = window or best_window(len(bases), bits)
    as_array = np.asarray(scalars, dtype=np.int64) if bits < 63 else None
    mask = (1 << c) - 1
    result = None
    for w in range(-(-bits // c) - 1, -1, -1):
        if result is not None:
            result = gmpy2.powmod(result, 1 << c, modulus)
        acc = _bucket_window(bases, _window_digits(scalars, w * c, mask, as_array), 1 << c, modulus)
        if acc is not None:
            result = acc if result is None else result * acc % modulus
    return mpz(1) if result is None else result


def signed_multiexp(bases: list[mpz], scalars: list[int], modulus: mpz) -> mpz:
    """Π bases[i]^scalars[i] mod ``modulus`` with signed scalars (bases must be invertible).

    Positive and negative scalars go into two multi-exponentiations; one inversion joins them.
    """
    pos_b, pos_k, neg_b, neg_k = [], [], [], []
    for b, k in zip(bases, scalars):
        if k > 0:
            pos_b.append(b)
            pos_k.append(k)
        elif k < 0:
            neg_b.append(b)
            neg_k.append(-k)
    result = multiexp(pos_b, pos_k, modulus)
    if neg_b:
        result = result * gmpy2.invert(multiexp(neg_b, neg_k, modulus), modulus) % modulus
    return result


def offset_multiexp(bases: list[mpz], scalars: list[int], modulus: mpz, scalar_bits: int) -> mpz:
    """Π bases[i]^scalars[i] for signed |scalars[i]| < 2^scalar_bits, with the same sequence of
    operations whatever the signs and sizes (bases must be invertible).

    ``signed_multiexp`` splits by sign, so its time tells how many scalars are negative. Here
    every scalar is shifted by 2^scalar_bits into [1, 2^(scalar_bits+1)), one multi-exponentiation
    runs with a fixed window count, and one correction (Π bases)^(−2^scalar_bits) removes the
    shift. Only the bucket step's skipping of zero digits still depends on the digits.
    """
    shift = 1 << scalar_bits
    if any(not -shift < k < shift for k in scalars):
        raise ValueError(f"a scalar is outside ±2^{scalar_bits}")
    modulus = mpz(modulus)
    bits = scalar_bits + 1
    raised = multiexp(bases, [k + shift for k in scalars], modulus, window=best_window(len(bases), bits), bits=bits)
    product = mpz(1)
    for b in bases:
        product = product * b % modulus
    return raised * gmpy2.invert(gmpy2.powmod(product, shift, modulus), modulus) % modulus


def multiexp_columns(public_key, bases: list[mpz], columns: list[list[int]]) -> list[mpz]:
    """One signed multi-exponentiation per column (the worker-side body of ``X.T @ [[d]]``)."""
    n2 = public_key.nsquare
    return [signed_multiexp(bases, col, n2) for col in columns]
