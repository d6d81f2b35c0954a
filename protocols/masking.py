"""Statistically hiding additive masks.

A value g with |g| < 2^M plus a mask r drawn uniformly from [0, 2^(M+λ)) is within statistical
distance 2^(1−λ) of r alone: whoever sees g + r learns (almost) nothing about g. Masks come
from ``secrets`` (the OS CSPRNG), never from a seeded generator.
"""
from __future__ import annotations

import secrets

DEFAULT_STATISTICAL_BITS = 64       # λ: per-value statistical distance ≤ 2^-63


def random_masks(count: int, bits: int) -> list[int]:
    """``count`` independent uniform integers in [0, 2^bits)."""
    if count < 0 or bits < 1:
        raise ValueError(f"need count >= 0 and bits >= 1, got {count}, {bits}")
    return [secrets.randbits(bits) for _ in range(count)]


def statistical_distance_bound(value_bits: int, mask_bits: int) -> float:
    """Upper bound on the statistical distance between g + r and r for |g| < 2^value_bits."""
    return 2.0 ** (1 + value_bits - mask_bits)
