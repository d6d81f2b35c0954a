"""The online phase's local steps on shares (the messages between them: :class:`vfl.mpc.MpcSession`).

Every function takes and returns this party's shares (``uint64``); ``index`` is this party's
position in the session (party 0 adds public constants).

Multiplication (Beaver): with a triple (a, b, c), every party opens ``e = x − a`` and
``f = y − b`` (uniformly random to everyone, a and b being unknown); then
``x·y = c + e·b + a·f + e·f``, where party 0 alone adds the public ``e·f``. Fixed-point
products carry 2f fractional bits and are truncated back to f.

Truncation (SecureML, two parties): party 0 shifts its share right by f as an unsigned number,
party 1 shifts the negation of its share and negates back. For a value with
|x| < 2^ℓ the result is ⌊x/2^f⌋ or off by one unit in the last place (2^−f), except with
probability at most 2^(ℓ+1−64) per value, when it is wrong by about 2^(64−f): with f = 16 and
|x| < 2^40 (a product of two values below 2^12, say) that is 2^−23 per value. With more than
two parties, parties 2… first hand their shares to party 1 (any n − 1 shares are uniform), so
two parties truncate. The error and failure bound are tested (tests/protocols/test_mpc_ring.py).
"""
from __future__ import annotations

import numpy as np

from protocols.mpc.ring import RING_BITS, as_ring
from protocols.mpc.triples import Triple


def beaver_open(x: np.ndarray, y: np.ndarray, triple: Triple) -> tuple[np.ndarray, np.ndarray]:
    """This party's shares of ``e = x − a`` and ``f = y − b`` (to be opened)."""
    x, y = as_ring(x), as_ring(y)
    if x.shape != triple.a.shape or y.shape != triple.b.shape:
        raise ValueError(f"operands {x.shape}, {y.shape} do not fit {triple!r}")
    return x - triple.a, y - triple.b


def beaver_close(index: int, triple: Triple, e: np.ndarray, f: np.ndarray) -> np.ndarray:
    """This party's share of ``x·y`` (or ``x @ y``) from the opened ``e`` and ``f``."""
    product = triple.shape.product
    z = triple.c + product(e, triple.b) + product(triple.a, f)
    if index == 0:
        z = z + product(e, f)
    return z


def add_public(x: np.ndarray, value: np.ndarray, index: int) -> np.ndarray:
    """Shares of ``x + value`` for a public ``value`` (ring elements)."""
    return as_ring(x) + as_ring(value) if index == 0 else as_ring(x).copy()


def mul_public(x: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Shares of ``x · value`` for a public integer ``value`` (elementwise)."""
    return as_ring(x) * as_ring(value)


def truncate_two_party(x: np.ndarray, index: int, frac_bits: int) -> np.ndarray:
    """SecureML's local truncation by ``frac_bits`` (parties 0 and 1 of a two-party sharing)."""
    x = as_ring(x)
    shift = np.uint64(frac_bits)
    if index == 0:
        return x >> shift
    if index == 1:
        return -((-x) >> shift)
    raise ValueError("two-party truncation is run by parties 0 and 1 only (others hand over their shares)")


def truncation_failure_bound(value_bits: int) -> float:
    """Probability that one truncation of a value below 2^value_bits is wrong by more than one ulp."""
    return 2.0 ** (value_bits + 1 - RING_BITS)
