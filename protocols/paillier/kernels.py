"""Chunk bodies run in this process or in pool workers (module-level so they pickle by name)."""
from __future__ import annotations

import secrets

import gmpy2
from gmpy2 import mpz

from protocols.paillier.multiexp import multiexp_columns, offset_multiexp


def encrypt_chunk(key, residues: list) -> list:
    """``key`` is a PublicKey (fixed-base table mod n²) or a PrivateKey (CRT tables)."""
    return key.raw_encrypt_many(residues)


def randomizers_chunk(key, counts: list) -> list:
    """Fresh hs^α values, ``sum(counts)`` of them (CRT tables when ``key`` is private)."""
    return key.randomizers(sum(counts))


def decrypt_chunk(private_key, ciphertexts: list) -> list:
    return private_key.raw_decrypt_many(ciphertexts)


def powmod_chunk(public_key, pairs: list) -> list:
    n2 = public_key.nsquare
    powmod = gmpy2.powmod
    return [powmod(c, k, n2) for c, k in pairs]       # negative k: gmpy2 inverts c first


def obfuscate_chunk(public_key, ciphertexts: list) -> list:
    """Multiply by r^n mod n² with r uniform in Z_n* (from ``secrets``): a perfectly hiding
    re-randomization that does not rely on the key holder's DJN base, so it hides even from the
    key holder, who knows the factorization. One full exponentiation per ciphertext.

    OU: the factor is y^n mod n with y uniform in Z_n*: uniform over every encryption of 0 when
    gcd(p, q−1) = gcd(q, p−1) = 1, as ``generate_ou_keypair`` makes sure; then it hides from the
    key holder too."""
    n, n2 = public_key.n, public_key.modulus
    out = []
    for c in ciphertexts:
        while True:
            r = mpz(secrets.randbelow(int(n) - 1) + 1)
            if gmpy2.gcd(r, n) == 1:
                break
        out.append(c * gmpy2.powmod(r, n, n2) % n2)      # (Paillier mod n², OU mod n)
    return out


def weighted_sum_chunk(public_key, tasks: list) -> list:
    """Each task is (bases, signed scalars, scalar_bits); one offset multi-exponentiation per task."""
    return [offset_multiexp(bases, scalars, public_key.nsquare, bits) for bases, scalars, bits in tasks]


def matmul_chunk(public_key, tasks: list) -> list:
    """Each task is (bases, rows restricted to those bases); returns one product list per task."""
    return [multiexp_columns(public_key, bases, rows) for bases, rows in tasks]


def ciphertexts_from_bytes(public_key, data, length: int) -> list:
    """Split fixed-width big-endian ciphertexts; each must lie in (0, modulus)."""
    width = public_key.ciphertext_bytes
    view = memoryview(data)
    if view.nbytes != length * width:
        raise ValueError(f"expected {length} ciphertexts of {width} bytes ({length * width} bytes), "
                         f"got {view.nbytes} bytes")
    n2 = public_key.modulus
    out = [mpz.from_bytes(view[i:i + width], "big") for i in range(0, length * width, width)]
    for i, c in enumerate(out):
        if not 0 < c < n2:
            raise ValueError(f"ciphertext {i} is out of range for this key")
    return out
