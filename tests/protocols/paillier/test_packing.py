from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.paillier import EncryptedVector, PackedEncryptedVector


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(-2.0 ** 30, 2.0 ** 30, allow_nan=False), min_size=1, max_size=40),
       st.integers(1, 5))
def test_packed_encrypt_sum_decrypt(small_keypair, values, terms):
    pk, sk = small_keypair
    a = np.array(values)
    pv = PackedEncryptedVector.encrypt(sk, a, sum_terms=terms, workers=1)
    assert len(pv.ciphertexts) == -(-len(a) // pv.slots)
    total = pv
    for _ in range(terms - 1):
        total = total + pv
    np.testing.assert_allclose(total.decrypt(sk, workers=1), terms * a, atol=terms * 2.0 ** -31)


def test_slot_capacity_is_enforced(small_keypair):
    pk, sk = small_keypair
    pv = PackedEncryptedVector.encrypt(pk, [1.0, -1.0], sum_terms=2, workers=1)
    s = pv + pv
    with pytest.raises(OverflowError):
        s + s          # a third carry bit would spill into the next slot


def test_compression_of_computed_ciphertexts_negative_and_large(small_keypair):
    pk, sk = small_keypair
    rng = np.random.default_rng(7)
    d = rng.normal(size=60)
    x = rng.integers(-1000, 1000, size=(60, 37))
    g = x.T @ EncryptedVector.encrypt(pk, d, workers=1)
    packed = PackedEncryptedVector.from_vector(g, workers=1)
    assert len(packed.ciphertexts) < len(g)
    np.testing.assert_allclose(packed.decrypt(sk, workers=1), x.T @ d, atol=1e-6)
    assert packed.decrypt_ints(sk, workers=1) == g.decrypt_ints(sk, workers=1)


def test_compress_packed_ciphertexts_and_wire(small_keypair):
    pk, sk = small_keypair
    a = np.linspace(-5, 5, 24)
    pv = PackedEncryptedVector.encrypt(sk, a, slots=2, workers=1)
    c = pv.compress(workers=1)
    assert c.slots > 2 and len(c.ciphertexts) < len(pv.ciphertexts)
    back = PackedEncryptedVector.from_wire(pk, c.wire_meta(), c.to_bytes())
    np.testing.assert_allclose(back.decrypt(sk, workers=1), a, atol=1e-9)
    with pytest.raises(ValueError):
        PackedEncryptedVector.from_wire(pk, {**c.wire_meta(), "slots": 0}, c.to_bytes())


def test_compress_refuses_partial_ciphertexts(small_keypair):
    pk, _ = small_keypair
    pv = PackedEncryptedVector.encrypt(pk, [1.0, 2.0, 3.0], slots=2, workers=1)
    with pytest.raises(ValueError, match="full ciphertexts"):
        pv.compress()


def test_layout_mismatch_is_refused(small_keypair):
    pk, _ = small_keypair
    a = PackedEncryptedVector.encrypt(pk, [1.0, 2.0], slots=2, workers=1)
    b = PackedEncryptedVector.encrypt(pk, [1.0, 2.0], slots=1, workers=1)
    with pytest.raises(ValueError, match="layouts"):
        a + b
