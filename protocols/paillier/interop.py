"""Conversion to and from python-paillier (``phe``): keys both ways, ciphertexts both ways.

``phe`` is GPLv3: this module (and the benchmarks) are the only places that import it, and only
when called. phe encodes each number as ``encoding · 16^exponent`` with its own exponent;
this engine uses one binary scale per vector, so conversion aligns the scales homomorphically.
"""
from __future__ import annotations

import gmpy2
from gmpy2 import mpz

from protocols.paillier.encoding import DEFAULT_INT_BITS
from protocols.paillier.keys import PrivateKey, PublicKey
from protocols.paillier.vector import EncryptedVector

_PHE_BASE_BITS = 4      # phe.EncodedNumber.BASE == 16


def _phe():
    try:
        import phe  # imported lazily: GPLv3, an optional extra kept at the edge
    except ImportError:
        raise ImportError("python-paillier is an optional extra: pip install 'vfl-engine[interop]'") from None
    return phe


def to_phe_public(public_key: PublicKey):
    return _phe().PaillierPublicKey(int(public_key.n))


def to_phe_private(private_key: PrivateKey, phe_public=None):
    phe_public = phe_public or to_phe_public(private_key.public_key)
    return _phe().PaillierPrivateKey(phe_public, int(private_key.p), int(private_key.q))


def from_phe_public(phe_public) -> PublicKey:
    """A public key for phe's modulus; it draws its own DJN base (any randomizer base works)."""
    return PublicKey(phe_public.n)


def from_phe_private(phe_private, public_key: PublicKey | None = None) -> PrivateKey:
    public_key = public_key or from_phe_public(phe_private.public_key)
    return PrivateKey(public_key, phe_private.p, phe_private.q)


def to_phe_numbers(vector: EncryptedVector, phe_public=None) -> list:
    """phe ``EncryptedNumber``s with the same plaintext values (decryptable by phe's key)."""
    phe = _phe()
    phe_public = phe_public or to_phe_public(vector.public_key)
    if int(phe_public.n) != int(vector.public_key.n):
        raise ValueError("phe public key does not match the vector's key")
    exponent = -(-vector.exponent // _PHE_BASE_BITS) * _PHE_BASE_BITS   # next multiple of 4 bits
    aligned = vector.rescale(exponent)
    phe_exponent = -exponent // _PHE_BASE_BITS
    return [phe.EncryptedNumber(phe_public, int(c), phe_exponent) for c in aligned.ciphertexts]


def from_phe_numbers(numbers: list, public_key: PublicKey, *, int_bits: int = DEFAULT_INT_BITS) -> EncryptedVector:
    """An ``EncryptedVector`` of phe ``EncryptedNumber``s under the same modulus.

    phe lets each number have its own exponent; they are aligned to the finest one. The
    caller declares the value range (|v| < 2^int_bits), which becomes the overflow bound.
    """
    if not numbers:
        raise ValueError("no numbers to convert")
    n = int(public_key.n)
    if any(int(x.public_key.n) != n for x in numbers):
        raise ValueError("a phe number is under another key")
    n2 = public_key.nsquare
    finest = min(x.exponent for x in numbers)
    cts = []
    for x in numbers:
        c = mpz(x.ciphertext(be_secure=False))
        if x.exponent > finest:
            c = gmpy2.powmod(c, mpz(16) ** (x.exponent - finest), n2)
        cts.append(c)
    if finest > 0:      # integers scaled by 16^finest: fold the scale into the plaintext
        cts = [gmpy2.powmod(c, mpz(16) ** finest, n2) for c in cts]
        finest = 0
    exponent = -finest * _PHE_BASE_BITS
    return EncryptedVector(public_key, cts, exponent, int_bits + exponent)
