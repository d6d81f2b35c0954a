"""Homomorphic identities (hypothesis), encoding round trips, overflow, key mismatch, wire."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.paillier import DecryptionError, EncodingError, EncryptedVector, KeyMismatchError, generate_keypair

FLOATS = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
VECTORS = st.lists(FLOATS, min_size=1, max_size=6).map(np.array)
TOL = 2.0 ** -30 * 8
SETTINGS = settings(max_examples=25, deadline=None)


def enc(pk, values, **kw):
    return EncryptedVector.encrypt(pk, values, workers=1, **kw)


@SETTINGS
@given(VECTORS)
def test_encode_encrypt_decrypt_round_trip(small_keypair, a):
    pk, sk = small_keypair
    np.testing.assert_allclose(enc(pk, a).decrypt(sk, workers=1), a, rtol=0, atol=TOL)
    np.testing.assert_allclose(enc(sk, a).decrypt(sk, workers=1), a, rtol=0, atol=TOL)


@SETTINGS
@given(st.data())
def test_addition_of_ciphertexts_and_plaintexts(small_keypair, data):
    pk, sk = small_keypair
    n = data.draw(st.integers(1, 5))
    a = np.array(data.draw(st.lists(FLOATS, min_size=n, max_size=n)))
    b = np.array(data.draw(st.lists(FLOATS, min_size=n, max_size=n)))
    ea, eb = enc(pk, a), enc(pk, b)
    np.testing.assert_allclose((ea + eb).decrypt(sk, workers=1), a + b, atol=2 * TOL)
    np.testing.assert_allclose((ea - eb).decrypt(sk, workers=1), a - b, atol=2 * TOL)
    np.testing.assert_allclose((ea + b).decrypt(sk, workers=1), a + b, atol=2 * TOL)
    np.testing.assert_allclose((b - ea).decrypt(sk, workers=1), b - a, atol=2 * TOL)
    np.testing.assert_allclose((-ea).decrypt(sk, workers=1), -a, atol=TOL)


@SETTINGS
@given(VECTORS, st.integers(-10**6, 10**6))
def test_integer_scalar_multiplication_is_exact(small_keypair, a, k):
    pk, sk = small_keypair
    ea = enc(pk, a)
    exact = np.array(ea.decrypt_ints(sk, workers=1), dtype=object) * k
    assert list((ea * k).decrypt_ints(sk, workers=1)) == list(exact)


@SETTINGS
@given(st.data())
def test_matrix_product_and_sum(small_keypair, data):
    pk, sk = small_keypair
    n = data.draw(st.integers(1, 8))
    m = data.draw(st.integers(1, 3))
    d = np.array(data.draw(st.lists(st.floats(-1, 1), min_size=n, max_size=n)))
    x = np.array(data.draw(st.lists(st.integers(-50, 50), min_size=n * m, max_size=n * m))).reshape(n, m)
    ed = enc(pk, d)
    np.testing.assert_allclose((x.T @ ed).decrypt(sk, workers=1), x.T @ d, atol=1e-6)
    np.testing.assert_allclose(ed.sum().decrypt(sk, workers=1), [d.sum()], atol=1e-6)


def test_float_matrix_product_uses_16_fractional_bits(small_keypair):
    pk, sk = small_keypair
    rng = np.random.default_rng(3)
    d, x = rng.normal(size=200), rng.normal(size=(200, 5))
    got = (x.T @ enc(pk, d)).decrypt(sk, workers=1)
    np.testing.assert_allclose(got, x.T @ d, atol=200 * 2.0 ** -16 * 4)


def test_slicing_indexing_and_concat(small_keypair):
    pk, sk = small_keypair
    a = np.arange(10.0) - 4.5
    ea = enc(pk, a)
    np.testing.assert_allclose(ea[2:5].decrypt(sk, workers=1), a[2:5])
    np.testing.assert_allclose(ea[[7, 1]].decrypt(sk, workers=1), a[[7, 1]])
    np.testing.assert_allclose(ea[a > 0].decrypt(sk, workers=1), a[a > 0])
    both = EncryptedVector.concat([ea[:3], enc(pk, [0.5], frac_bits=8)])
    np.testing.assert_allclose(both.decrypt(sk, workers=1), [-4.5, -3.5, -2.5, 0.5])


def test_integer_vectors_decrypt_to_int64(small_keypair):
    pk, sk = small_keypair
    out = enc(pk, np.array([3, -7, 0]), frac_bits=0).decrypt(sk, workers=1)
    assert out.dtype == np.int64 and out.tolist() == [3, -7, 0]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused_with_their_index(small_keypair, bad):
    pk, _ = small_keypair
    with pytest.raises(EncodingError, match="index 1"):
        enc(pk, [1.0, bad])


def test_values_beyond_declared_range_are_refused(small_keypair):
    pk, _ = small_keypair
    with pytest.raises(EncodingError, match="declared range"):
        enc(pk, [2.0 ** 31], int_bits=31)


def test_overflow_raises_before_wrapping(small_keypair):
    pk, _ = small_keypair
    big = enc(pk, [1.0], frac_bits=0, int_bits=pk.n_bits - 8)
    with pytest.raises(OverflowError):
        big * (2 ** 40)
    with pytest.raises(OverflowError):
        enc(pk, [1.0], frac_bits=600, int_bits=600)


def test_overflow_region_detected_at_decryption(small_keypair):
    pk, sk = small_keypair
    # A ciphertext of n/2 lies in the middle third: decrypting it must not return garbage.
    forged = EncryptedVector(pk, pk.raw_encrypt_many([pk.n // 2]), 0, 10)
    with pytest.raises(OverflowError):
        forged.decrypt(sk, workers=1)


def test_mixing_keys_is_refused(small_keypair):
    pk, sk = small_keypair
    pk2, sk2 = generate_keypair(512, allow_insecure_key_size_for_tests=True)
    with pytest.raises(KeyMismatchError):
        enc(pk, [1.0]) + enc(pk2, [1.0])
    with pytest.raises(DecryptionError):
        enc(pk, [1.0]).decrypt(sk2, workers=1)


def test_shape_errors_name_the_shapes(small_keypair):
    pk, _ = small_keypair
    ea = enc(pk, [1.0, 2.0])
    with pytest.raises(ValueError, match="length 2"):
        ea + np.ones(3)
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        np.ones((3, 3)) @ ea
    with pytest.raises(TypeError):
        ea * ea


def test_wire_round_trip_and_obfuscation(small_keypair):
    pk, sk = small_keypair
    a = np.array([0.25, -1.5, 3.0])
    ea = enc(pk, a)
    assert ea.obfuscated
    doubled = ea * 2
    assert not doubled.obfuscated
    data = doubled.to_bytes()
    assert len(data) == 3 * pk.ciphertext_bytes
    back = EncryptedVector.from_wire(pk, doubled.wire_meta(), data)
    np.testing.assert_allclose(back.decrypt(sk, workers=1), 2 * a)
    # to_bytes re-randomized: the bytes differ from the plain product's ciphertexts
    raw = doubled.to_bytes(obfuscate=False)
    assert raw != data
    assert back.ciphertexts != doubled.ciphertexts


@pytest.mark.parametrize("change", [
    lambda m, d: (m, d[:-1]),
    lambda m, d: ({**m, "len": 4}, d),
    lambda m, d: ({**m, "key": "00" * 16}, d),
    lambda m, d: ({k: v for k, v in m.items() if k != "exponent"}, d),
    lambda m, d: ({**m, "exponent": -1}, d),
    lambda m, d: (m, b"\x00" * len(d)),
    lambda m, d: (m, b"\xff" * len(d)),
])
def test_from_wire_rejects_malformed_input(small_keypair, change):
    pk, _ = small_keypair
    ea = enc(pk, [1.0, 2.0, 3.0])
    meta, data = change(ea.wire_meta(), ea.to_bytes())
    with pytest.raises(ValueError):
        EncryptedVector.from_wire(pk, meta, data)


def test_parallel_results_equal_serial(small_keypair, monkeypatch):
    import protocols.paillier.vector as vector_module
    monkeypatch.setattr(vector_module, "MATMUL_SPLIT_MIN", 100)      # split 300 ciphertexts in 2
    pk, sk = small_keypair
    rng = np.random.default_rng(5)
    a, x = rng.normal(size=300), rng.integers(-9, 9, size=(300, 3))
    ea = EncryptedVector.encrypt(sk, a, workers=2)
    np.testing.assert_allclose(ea.decrypt(sk, workers=2), ea.decrypt(sk, workers=1))
    assert (x.T @ ea).decrypt(sk, workers=1).tolist() == ea.matmul(x.T, workers=2).decrypt(sk, workers=1).tolist()


def test_prefetched_randomizers_encrypt_and_can_be_cancelled(small_keypair):
    import concurrent.futures

    from protocols.paillier.vector import PREFETCH_CHUNKS_PER_WORKER, prefetch_randomizers
    pk, sk = small_keypair
    values = np.arange(-50, 50) / 8
    used = prefetch_randomizers(sk, len(values), workers=2).result()
    assert len(used) == len(values)
    assert EncryptedVector.encrypt(sk, values, randomizers=used).decrypt(sk).tolist() == values.tolist()
    # a big prefetch: split into several tasks per worker, most not yet started when cancelled
    big = prefetch_randomizers(sk, 20000, workers=2)
    assert len(big._futures) == 2 * PREFETCH_CHUNKS_PER_WORKER and big.running()
    assert big.cancel() >= 1
    with pytest.raises(concurrent.futures.CancelledError):
        big.result()
    assert prefetch_randomizers(sk, 10, workers=1).cancel() == 0     # deferred: nothing ran
    once = prefetch_randomizers(sk, 10, workers=2)
    for f in once._futures:
        f.result()                                                    # wait without taking them
    assert not once.running() and not prefetch_randomizers(sk, 10, workers=1).running()
    assert len(once.result()) == 10
    with pytest.raises(concurrent.futures.CancelledError, match="taken"):
        once.result()                                                 # never the same randomizers twice
