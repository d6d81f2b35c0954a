"""Sharing, fixed point and truncation over Z_2^64: properties over random inputs."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.mpc import online
from protocols.mpc.ring import (
    RingError,
    decode,
    encode,
    random_ring,
    reconstruct,
    ring_matmul,
    share,
    signed,
)

U64 = st.integers(0, 2**64 - 1)
REALS = st.floats(-1e6, 1e6, allow_nan=False)


@given(st.lists(U64, min_size=1, max_size=40), st.integers(2, 5))
def test_shares_reconstruct_and_each_proper_subset_is_not_the_value(values, parties):
    x = np.array(values, dtype=np.uint64)
    shares = share(x, parties)
    assert len(shares) == parties and all(s.dtype == np.uint64 for s in shares)
    assert np.array_equal(reconstruct(shares), x)
    assert not np.array_equal(reconstruct(shares[1:]), x)     # fails with probability 2^-64 per value


def test_shares_are_uniform_whatever_the_value():
    """The first n−1 shares do not depend on x: their bits are balanced for x = 0 and x = all ones."""
    for value in (0, 2**64 - 1):
        s = share(np.full(20000, value, dtype=np.uint64), 3)[1]
        bits = np.unpackbits(s.view(np.uint8))
        assert abs(bits.mean() - 0.5) < 0.01


@given(st.lists(REALS, min_size=1, max_size=30), st.integers(8, 24))
def test_encode_decode_within_half_an_ulp(values, frac):
    v = np.array(values)
    assert np.all(np.abs(decode(encode(v, frac), frac) - v) <= 2.0 ** (-frac - 1) * (1 + 1e-9) + np.abs(v) * 1e-15)


def test_encode_refuses_nan_and_out_of_range_by_name():
    with pytest.raises(RingError, match="bank's column.*NaN"):
        encode([1.0, np.nan], what="bank's column")
    with pytest.raises(RingError, match="outside the fixed-point range"):
        encode([2.0**47], 16)


@given(st.lists(st.tuples(REALS, REALS), min_size=1, max_size=30))
@settings(max_examples=60)
def test_shared_products_truncate_to_within_one_ulp(pairs):
    """x·y on shares, truncated by f: within 2^-f (+ input rounding) of the real product."""
    f = 16
    # |x|, |y| ≤ 4: |x·y·2^2f| < 2^36, so a wrong truncation (probability 2^-27 per value, see
    # test_truncation_failure_rate_matches_its_bound) is out of reach of this test's few thousand values
    x, y = (np.array(c) / 2.5e5 for c in zip(*pairs))
    z = encode(x, f) * encode(y, f)                          # 2f fractional bits
    s0, s1 = share(z, 2)
    t = online.truncate_two_party(s0, 0, f) + online.truncate_two_party(s1, 1, f)
    exact = decode(encode(x, f), f) * decode(encode(y, f), f)
    assert np.all(np.abs(decode(t, f) - exact) <= 2.0 ** -f * 1.001)


def test_truncation_failure_rate_matches_its_bound():
    """Values near 2^60 fail with probability ≈ 2^(61−64) = 1/8 by the bound: measured, not assumed."""
    n, f = 200_000, 16
    x = np.full(n, 2**60 - 12345, dtype=np.uint64)
    s0, s1 = share(x, 2)
    t = online.truncate_two_party(s0, 0, f) + online.truncate_two_party(s1, 1, f)
    wrong = np.abs(signed(t).astype(np.float64) - float((2**60 - 12345) >> f)) > 1
    assert 0 < wrong.mean() <= online.truncation_failure_bound(61)
    small = np.full(n, 2**30, dtype=np.uint64)
    s0, s1 = share(small, 2)
    t = online.truncate_two_party(s0, 0, f) + online.truncate_two_party(s1, 1, f)
    assert np.all(np.abs(signed(t) - (2**30 >> f)) <= 1)    # bound 2^-33 per value: none in 2e5


@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6))
@settings(max_examples=30)
def test_ring_matmul_is_matmul_mod_2_64(m, k, n):
    a, b = random_ring((m, k)), random_ring((k, n))
    expected = [[sum(int(a[i, r]) * int(b[r, j]) for r in range(k)) % 2**64 for j in range(n)] for i in range(m)]
    assert ring_matmul(a, b).tolist() == expected
