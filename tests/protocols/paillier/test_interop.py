"""A ciphertext of this engine decrypts with phe's private key, and the other way round."""
from __future__ import annotations

import numpy as np
import phe
import pytest

from protocols.paillier import EncryptedVector
from protocols.paillier.interop import (
    from_phe_numbers,
    from_phe_private,
    from_phe_public,
    to_phe_numbers,
    to_phe_private,
    to_phe_public,
)

VALUES = np.array([1.5, -2.25, 3e-5, -1234.5678, 0.0])


@pytest.mark.parametrize("frac_bits", [30, 32, 33])
def test_our_ciphertexts_decrypt_with_phe(small_keypair, frac_bits):
    pk, sk = small_keypair
    phe_pub = to_phe_public(pk)
    phe_priv = to_phe_private(sk, phe_pub)
    for key in (pk, sk):   # public-key (fixed-base) and key-holder (CRT) encryption
        numbers = to_phe_numbers(EncryptedVector.encrypt(key, VALUES, frac_bits=frac_bits, workers=1), phe_pub)
        np.testing.assert_allclose([phe_priv.decrypt(x) for x in numbers], VALUES, atol=2.0 ** -frac_bits)


def test_phe_ciphertexts_decrypt_with_ours():
    phe_pub, phe_priv = phe.generate_paillier_keypair(n_length=1024)
    pk = from_phe_public(phe_pub)
    sk = from_phe_private(phe_priv, pk)
    numbers = [phe_pub.encrypt(float(v)) for v in VALUES] + [phe_pub.encrypt(7)]
    vec = from_phe_numbers(numbers, pk)
    np.testing.assert_allclose(vec.decrypt(sk, workers=1), list(VALUES) + [7], atol=1e-9)
    # and arithmetic continues in our engine
    np.testing.assert_allclose((vec * 2 + 1).decrypt(sk, workers=1), 2 * np.append(VALUES, 7) + 1, atol=1e-4)


def test_keys_convert_both_ways(small_keypair):
    pk, sk = small_keypair
    back = from_phe_private(to_phe_private(sk))
    assert back.public_key == pk and back.p * back.q == pk.n


def test_phe_number_under_another_key_is_refused(small_keypair):
    pk, _ = small_keypair
    other, _ = phe.generate_paillier_keypair(n_length=512)
    with pytest.raises(ValueError, match="another key"):
        from_phe_numbers([other.encrypt(1.0)], pk)
