from __future__ import annotations

import pytest
from gmpy2 import mpz

from protocols.paillier import KeyMismatchError, KeySizeError, PrivateKey, PublicKey, generate_keypair
from protocols.paillier.fixedbase import FixedBaseTable, random_digits


def test_default_key_is_2048_bits_with_primes_3_mod_4(keypair_2048):
    pk, sk = keypair_2048
    assert pk.n_bits == 2048
    assert sk.p % 4 == 3 and sk.q % 4 == 3 and sk.p != sk.q


@pytest.mark.parametrize("bits", [512, 1024, 1536])
def test_small_keys_refused_without_opt_in(bits):
    with pytest.raises(KeySizeError, match="refusing"):
        generate_keypair(bits)


def test_tiny_or_odd_keys_refused_even_with_opt_in():
    with pytest.raises(KeySizeError):
        generate_keypair(128, allow_insecure_key_size_for_tests=True)
    with pytest.raises(KeySizeError):
        generate_keypair(1023, allow_insecure_key_size_for_tests=True)


def test_private_key_never_shows_its_primes(small_keypair):
    _, sk = small_keypair
    for text in (repr(sk), str(sk), f"{sk}"):
        assert str(sk.p) not in text and str(sk.q) not in text and "<secret>" in text


def test_private_key_must_match_modulus(small_keypair):
    pk, sk = small_keypair
    with pytest.raises(KeyMismatchError):
        PrivateKey(pk, sk.p, sk.p)


def test_public_key_bytes_round_trip(small_keypair):
    pk, _ = small_keypair
    back = PublicKey.from_bytes(pk.to_bytes())
    assert back == pk and back.hs == pk.hs and back.fingerprint == pk.fingerprint


@pytest.mark.parametrize("mutate", [lambda b: b[:-1], lambda b: b"", lambda b: b[:2] + b"\x00" * (len(b) - 2),
                                    lambda b: b + b"\x00"])
def test_public_key_bytes_rejects_garbage(small_keypair, mutate):
    pk, _ = small_keypair
    with pytest.raises(ValueError):
        PublicKey.from_bytes(mutate(pk.to_bytes()))


def test_raw_round_trip_public_and_crt_encryption(small_keypair):
    pk, sk = small_keypair
    ms = [mpz(0), mpz(1), pk.n - 1, mpz(123456789)]
    assert sk.raw_decrypt_many(pk.raw_encrypt_many(ms)) == ms
    assert sk.raw_decrypt_many(sk.raw_encrypt_many(ms)) == ms


def test_encryption_is_randomized(small_keypair):
    pk, sk = small_keypair
    a, b = pk.raw_encrypt_many([mpz(5), mpz(5)])
    assert a != b
    c, d = sk.raw_encrypt_many([mpz(5), mpz(5)])
    assert c != d


def test_fixed_base_table_matches_powmod(small_keypair):
    pk, _ = small_keypair
    table = FixedBaseTable(pk.hs, pk.nsquare, 64, 5)
    for e in (0, 1, 31, 2**63 + 12345, 2**65 - 1):
        assert table.pow(e) == pow(int(pk.hs), e, int(pk.nsquare))
    with pytest.raises(ValueError):
        table.pow(-1)


@pytest.mark.parametrize("window", [3, 8, 10])
def test_random_digits_cover_the_range(window):
    digits = random_digits(400, 7, window)
    assert len(digits) == 400 and all(len(d) == 7 for d in digits)
    flat = [x for d in digits for x in d]
    assert min(flat) >= 0 and max(flat) < 2**window
    assert len(set(flat)) > min(2**window, 400) // 2      # not constant: actually random
