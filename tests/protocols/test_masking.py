"""The active's view of a masked passive gradient is statistically independent of the gradient."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ks_2samp

from protocols.masking import random_masks, statistical_distance_bound

M = 20   # |g| < 2^M


def _views(g: int, mask_bits: int, count: int = 3000) -> np.ndarray:
    # what the key holder decrypts: g + r, as a fraction of the mask range
    return np.array([(g + r) / 2.0 ** mask_bits for r in random_masks(count, mask_bits)])


def test_masked_values_do_not_depend_on_the_gradient():
    low, high = _views(-(2 ** M) + 1, M + 40), _views(2 ** M - 1, M + 40)
    assert ks_2samp(low, high).pvalue > 1e-4


def test_the_distinguisher_works_on_weak_masks():
    # negative control: a mask only as wide as the gradient leaks it plainly
    low, high = _views(-(2 ** M) + 1, M), _views(2 ** M - 1, M)
    assert ks_2samp(low, high).pvalue < 1e-10


def test_bound_and_inputs():
    assert statistical_distance_bound(70, 134) == 2.0 ** -63
    with pytest.raises(ValueError):
        random_masks(3, 0)
    masks = random_masks(1000, 64)
    assert len(set(masks)) == 1000 and max(masks) < 2 ** 64
