"""Okamoto–Uchiyama keys (protocols/paillier/ou.py): sizes, the algebra, serialization, the
worker pool, and the decryption-oracle weakness that confines OU to protocols whose key holder
never reveals a decryption."""
from __future__ import annotations

import gmpy2
import numpy as np
import pytest

from protocols.paillier import (
    EncryptedVector,
    KeySizeError,
    OUPrivateKey,
    OUPublicKey,
    PackedEncryptedVector,
    generate_ou_keypair,
)
from protocols.paillier.ou import ou_prime_bits


def test_key_sizes_and_structure():
    pk, sk = generate_ou_keypair()                  # the default: 2048 bits
    assert pk.n_bits == 2048 and pk.scheme == "ou"
    assert ou_prime_bits(2048) == (682, 684) and pk.capacity_bits == 616      # 64 bits below p's least value
    assert sk.p.bit_length() == 682 and sk.q.bit_length() == 684 and sk.p ** 2 * sk.q == pk.n
    assert pk.modulus == pk.n and pk.ciphertext_bytes == 256
    assert "<secret>" in repr(sk) and str(int(sk.p)) not in repr(sk)
    with pytest.raises(TypeError, match="not serializable"):
        import pickle
        pickle.dumps(sk)
    with pytest.raises(KeySizeError, match="refusing a 1024-bit"):
        generate_ou_keypair(1024)


def test_encrypt_add_decrypt(small_ou_keypair):
    pk, sk = small_ou_keypair
    ms = [0, 1, 2 ** 100, 2 ** pk.capacity_bits - 1]
    cts = pk.raw_encrypt_many(ms)
    assert sk.raw_decrypt_many(cts) == ms
    assert pk.raw_encrypt_many([5]) != pk.raw_encrypt_many([5])        # randomized
    assert sk.raw_decrypt(cts[1] * cts[2] % pk.n) == 1 + 2 ** 100       # products add plaintexts
    assert sk.raw_encrypt_many([7]) != [] and sk.raw_decrypt(sk.raw_encrypt_many([7])[0]) == 7
    # randomizers, the key holder's (CRT, shorter r) and the public ones, encrypt 0 and differ
    for rs in (sk.randomizers(3), pk.randomizers(3), pk.statistical_randomizers(3)):
        assert sk.raw_decrypt_many(rs) == [0, 0, 0] and len(set(rs)) == 3
    # re-randomizing by h^r keeps the plaintext and changes the ciphertext
    r = pk.statistical_randomizers(1)[0]
    assert sk.raw_decrypt(cts[2] * r % pk.n) == 2 ** 100 and cts[2] * r % pk.n != cts[2]
    with pytest.raises(OverflowError, match="OU plaintext"):
        pk.raw_encrypt_many([2 ** pk.capacity_bits])                  # could reach p: refused
    with pytest.raises(OverflowError, match="OU plaintext"):
        pk.raw_encrypt_many([-1])


def test_public_key_bytes_round_trip_and_checks(small_ou_keypair):
    pk, _ = small_ou_keypair
    back = OUPublicKey.from_bytes(pk.to_bytes())
    assert back == pk and back.fingerprint == pk.fingerprint
    with pytest.raises(ValueError, match="wrong length"):
        OUPublicKey.from_bytes(pk.to_bytes()[:-1])
    with pytest.raises(ValueError, match="h is not g"):
        OUPublicKey(pk.n, pk.g, pk.h * pk.g % pk.n)                   # h outside ⟨g^n⟩: refused
    with pytest.raises(ValueError, match="not a unit"):
        OUPublicKey(pk.n, 1, 1)


def test_degenerate_keys_are_refused(small_ou_keypair):
    pk, sk = small_ou_keypair
    p, q = int(sk.p), int(sk.q)
    psq = p * p
    g = (1 + p) + psq * ((1 - (1 + p)) * pow(psq, -1, q) % q)     # g ≡ 1 + p (mod p²), g ≡ 1 (mod q): g^n = 1
    with pytest.raises(ValueError, match="h has order 1 or 2"):
        OUPublicKey(pk.n, g, gmpy2.powmod(g, pk.n, pk.n))
    # a modulus p²q of the right size whose p is smaller than a third of it: the public bound on
    # plaintexts (from the size) would exceed p, so the key holder refuses such a key
    from protocols.paillier.keys import _random_prime
    while True:
        small_p, big_q = _random_prime(300), _random_prime(424)
        n = small_p * small_p * big_q
        if n.bit_length() == 1024:
            break
    g = gmpy2.mpz(3)
    with pytest.raises(ValueError, match="must be a 341-bit prime"):
        OUPrivateKey(OUPublicKey(n, g, gmpy2.powmod(g, n, n)), small_p, big_q)


def test_signed_vectors_refuse_ou_keys(small_ou_keypair):
    pk, _ = small_ou_keypair
    with pytest.raises(TypeError, match="need a Paillier key"):
        EncryptedVector.encrypt(pk, np.array([1.0]))


def test_packed_vectors_in_the_worker_pool(small_ou_keypair):
    pk, sk = small_ou_keypair
    values = np.linspace(-1, 1, 400)
    enc = PackedEncryptedVector.encrypt(sk, values, frac_bits=16, int_bits=1, sum_terms=1, slots=2, workers=2)
    np.testing.assert_allclose(enc.decrypt(sk, workers=2), values, atol=2 ** -16)
    packed = enc.compress(workers=2, rerandomize=True)
    assert len(packed.ciphertexts) < len(enc.ciphertexts)
    np.testing.assert_allclose(packed.decrypt(sk, workers=2), values, atol=2 ** -16)


def test_a_revealed_decryption_of_a_large_plaintext_reveals_the_key():
    """Why OU is only for protocols whose key holder reveals no decryption: anyone who gets
    back the decryption of g^m for some m >= p learns m mod p, then p = gcd(m − (m mod p), n)."""
    pk, sk = generate_ou_keypair(1024, allow_insecure_key_size_for_tests=True)
    m = 1 << (pk.n_bits // 2)                      # far above p (a third of the modulus)
    c = gmpy2.powmod(pk.g, m, pk.n)               # no public bound stops a peer computing this
    revealed = int(sk.raw_decrypt(c))
    p = gmpy2.gcd(m - revealed, pk.n)
    assert 1 < p < pk.n and pk.n % (p * p) == 0
