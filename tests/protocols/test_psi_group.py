"""The group layer of the PSI: hash to curve, commutative masks, secrets kept secret."""
import pickle

import gmpy2
import numpy as np
import pytest

from protocols.psi import group, parallel
from protocols.psi._common import secure_permutation
from protocols.psi.errors import InvalidPointError

P = 2**255 - 19


def _on_curve(point: bytes) -> bool:
    u = int.from_bytes(point, "little")
    return u < P and gmpy2.jacobi((u**3 + 486662 * u * u + u) % P, P) == 1


def test_hash_lands_on_the_curve_and_is_keyed():
    salt, other = group.new_salt(), group.new_salt()
    items = [str(i).encode() for i in range(300)]
    points = [group.hash_to_point(i, salt) for i in items]
    assert all(_on_curve(p) for p in points)
    assert len(set(points)) == len(points)
    assert group.hash_blob(items, salt) == b"".join(points)          # the inlined fast path agrees
    assert all(group.hash_to_point(i, other) != p for i, p in zip(items, points))   # salt separates jobs


def test_masks_commute():
    a, b = group.Scalar.generate(), group.Scalar.generate()
    blob = group.hash_blob([b"alice", b"bob", "zoë".encode()], group.new_salt())
    ab = group.mult_blob(b.raw_bytes(), group.mult_blob(a.raw_bytes(), blob))
    ba = group.mult_blob(a.raw_bytes(), group.mult_blob(b.raw_bytes(), blob))
    assert ab == ba and ab != blob
    assert all(_on_curve(ab[i:i + 32]) for i in range(0, len(ab), 32))


def test_parallel_pool_gives_the_same_points():
    scalar, salt = group.Scalar.generate(), group.new_salt()
    items = [f"id-{i}".encode() for i in range(3 * parallel.MIN_PIECE)]
    one = parallel.hash_and_mask(items, salt, scalar, workers=1)
    two = parallel.hash_and_mask(items, salt, scalar, workers=2)
    assert one.shape == (len(items), 32) and np.array_equal(one, two)
    assert np.array_equal(parallel.mask(one, scalar, workers=1), parallel.mask(one, scalar, workers=2))


def test_scalar_never_shows_or_pickles():
    scalar = group.Scalar.generate()
    assert scalar.raw_bytes().hex() not in repr(scalar)
    with pytest.raises(TypeError):
        pickle.dumps(scalar)
    with pytest.raises(ValueError):
        group.Scalar(b"short")


def test_small_order_point_is_rejected():
    with pytest.raises(InvalidPointError):
        group.mult_blob(group.Scalar.generate().raw_bytes(), bytes(32))      # u = 0


@pytest.mark.parametrize("bad", [np.zeros((3, 31), np.uint8), np.zeros((3, 32), np.int64),
                                 np.zeros(32, np.uint8), b"\x00" * 32])
def test_points_must_be_n_by_32_bytes(bad):
    with pytest.raises(InvalidPointError, match="uint8"):
        group.check_points(bad, "test")


def test_secure_permutation_is_a_permutation():
    for n in (0, 1, 2, 1000):
        perm = secure_permutation(n)
        assert sorted(perm.tolist()) == list(range(n))
    assert not np.array_equal(secure_permutation(1000), secure_permutation(1000))
