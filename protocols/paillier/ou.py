"""Okamoto–Uchiyama (OU), the engine's second additively homomorphic scheme.

Keys: ``n = p²·q`` with primes p, q; ``g`` random with ``g^(p−1) mod p²`` of order p; ``h = g^n
mod n``. Encryption of ``0 <= m < 2^capacity_bits`` is ``c = g^m · h^r mod n``; decryption is
``m = L(c^(p−1) mod p²) / L(g^(p−1) mod p²) mod p`` with ``L(x) = (x − 1)/p``. Products of
ciphertexts add plaintexts, as in Paillier.

Why a second scheme: ciphertexts live mod n, not mod n². At the same modulus size (2048 bits,
the default, about 112-bit security like 2048-bit Paillier: the best known attacks factor
p²q no faster than an RSA modulus of the same size; a 682-bit p is far beyond ECM) every
homomorphic operation works on numbers half as long, about 3x cheaper on this engine's
big-number library. The price is the plaintext space: 616 of the modulus's 2048 bits instead of
2046, and no negative numbers (p is secret, so residues cannot wrap).

**Only where the key holder never reveals a decryption to a peer.** Whoever learns the
decryption of a ciphertext it made for some ``m >= p`` learns ``m mod p`` and then p
(``gcd(m − (m mod p), n)``). Packed SecureBoost histograms qualify: the key holder only reveals
which split won, and only for sums that decrypt into the exact packed layout it expects. That
is why ``capacity_bits`` is ``p_bits − 2 − MARGIN_BITS``, not ``p_bits − 2``: a peer that
does not know p finds an ``m >= p`` whose residue ``m mod p`` fits the layout (and so reaches a
split decision) with probability below 2^-MARGIN_BITS times the log of its search range
(about 2^-54), and an overflowing one stops the job. Linear models (masked gradients go back
decrypted) must use Paillier; the signed :class:`~protocols.paillier.vector.EncryptedVector`
refuses OU keys.

The interface matches :class:`protocols.paillier.keys.PublicKey` where
:class:`~protocols.paillier.packing.PackedEncryptedVector` needs it: ``modulus`` (of the
ciphertexts), ``capacity_bits`` (of a packed plaintext), ``embed_many`` (the deterministic part
of an encryption), ``randomizers``/``statistical_randomizers``, fixed-width serialization.
"""
from __future__ import annotations

import hashlib
import secrets
import threading

import gmpy2
from gmpy2 import mpz

from protocols.paillier.errors import KeyMismatchError
from protocols.paillier.fixedbase import CrtFixedBaseTable, FixedBaseTable, random_digit_columns
from protocols.paillier.keys import (
    PRIVATE_WINDOW_BITS,
    PUBLIC_WINDOW_BITS,
    AdditivePublicKey,
    SecretPrimes,
    _check_key_bits,
    _random_prime,
    split_key_bytes,
)

DEFAULT_OU_KEY_BITS = 2048
MARGIN_BITS = 64      # plaintexts stay this far below the smallest possible p (see above)


def ou_prime_bits(n_bits: int) -> tuple[int, int]:
    """Bit lengths of p and q for an ``n_bits`` modulus: p a third (rounded down), q the rest."""
    p_bits = n_bits // 3
    return p_bits, n_bits - 2 * p_bits


def ou_capacity_bits(n_bits: int) -> int:
    """Plaintext bits of an ``n_bits`` key: below the smallest p by ``MARGIN_BITS`` + 1 bits."""
    return ou_prime_bits(n_bits)[0] - 2 - MARGIN_BITS


def generate_ou_keypair(n_bits: int = DEFAULT_OU_KEY_BITS, *,
                        allow_insecure_key_size_for_tests: bool = False) -> tuple["OUPublicKey", "OUPrivateKey"]:
    """An OU key pair from ``secrets``; the same sizes as Paillier (2048, 3072, 4096 bits)."""
    _check_key_bits(n_bits, allow_insecure_key_size_for_tests, "Okamoto–Uchiyama")
    p_bits, q_bits = ou_prime_bits(n_bits)
    while True:
        p, q = _random_prime(p_bits), _random_prime(q_bits)
        n = p * p * q
        # gcd(p, q−1) = gcd(q, p−1) = 1: y^n for uniform y is then uniform over the encryptions of 0
        if p != q and n.bit_length() == n_bits and gmpy2.gcd(p, q - 1) == 1 and gmpy2.gcd(q, p - 1) == 1:
            break
    psq = p * p
    while True:
        g = mpz(secrets.randbelow(int(n) - 2) + 2)
        if gmpy2.gcd(g, n) == 1 and gmpy2.powmod(g, p - 1, psq) != 1:     # g^(p−1) has order p mod p²
            break
    public = OUPublicKey(n, g, gmpy2.powmod(g, n, n))
    return public, OUPrivateKey(public, p, q)


class OUPublicKey(AdditivePublicKey):
    """``(n, g, h)``. Anyone can check ``h = g^n mod n``; the constructor does."""

    scheme = "ou"

    def __init__(self, n: int, g: int, h: int):
        self.n, self.g, self.h = mpz(n), mpz(g), mpz(h)
        self.n_bits = self.n.bit_length()
        self.p_bits, _ = ou_prime_bits(self.n_bits)
        if self.n_bits < 48 or self.n % 2 == 0:
            raise ValueError("OU modulus is malformed")
        if not (1 < self.g < self.n) or gmpy2.gcd(self.g, self.n) != 1 \
                or self.h != gmpy2.powmod(self.g, self.n, self.n):
            raise ValueError("invalid OU key: g is not a unit or h is not g^n mod n")
        if self.h * self.h % self.n == 1:
            raise ValueError("invalid OU key: h has order 1 or 2 (its randomizers would hide nothing)")
        self.modulus = self.n                       # ciphertexts are residues mod n
        # p has its top two bits set (p > 2^(p_bits−1)); a margin keeps peers' guesses of p useless
        self.capacity_bits = ou_capacity_bits(self.n_bits)
        self.key_bytes = (self.n_bits + 7) // 8
        self.ciphertext_bytes = self.key_bytes
        self.random_bits = self.n_bits + 64         # ord(h) < n: h^r is within 2^-64 of uniform in ⟨h⟩
        digest = hashlib.sha256(b"ou" + self.to_bytes()).hexdigest()
        self.fingerprint = digest[:32]
        self._g_table: FixedBaseTable | None = None
        self._h_table: FixedBaseTable | None = None
        self._lock = threading.Lock()

    def __eq__(self, other) -> bool:
        return isinstance(other, OUPublicKey) and (self.n, self.g, self.h) == (other.n, other.g, other.h)

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        return f"OUPublicKey(n_bits={self.n_bits}, fingerprint={self.fingerprint[:16]})"

    def require_same(self, other, what: str = "ciphertexts") -> None:
        if self != other:
            raise KeyMismatchError(f"{what} are under different keys "
                                   f"({self.fingerprint[:16]} vs {getattr(other, 'fingerprint', '?')[:16]})")

    # -- serialization ---------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Fixed layout: 2-byte modulus byte length, then n, g, h (big-endian, that width each)."""
        kb = self.key_bytes
        return kb.to_bytes(2, "big") + b"".join(int(v).to_bytes(kb, "big") for v in (self.n, self.g, self.h))

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> "OUPublicKey":
        kb, n, rest = split_key_bytes(data, "OU public key")
        return cls(n, mpz.from_bytes(rest[:kb], "big"), mpz.from_bytes(rest[kb:], "big"))

    def token(self) -> tuple:
        """What a worker process needs to rebuild this key (public values only)."""
        return ("ou-public", int(self.n), int(self.g), int(self.h))

    # -- encryption ------------------------------------------------------------------------
    def _g(self) -> FixedBaseTable:
        with self._lock:
            if self._g_table is None:
                self._g_table = FixedBaseTable(self.g, self.n, self.capacity_bits, PUBLIC_WINDOW_BITS)
            return self._g_table

    def _h(self) -> FixedBaseTable:
        with self._lock:
            if self._h_table is None:
                self._h_table = FixedBaseTable(self.h, self.n, self.random_bits, PUBLIC_WINDOW_BITS)
            return self._h_table

    def warm(self) -> None:
        self._g()
        self._h()

    def embed_many(self, plaintexts: list) -> list[mpz]:
        """``g^m mod n`` per plaintext ``0 <= m < 2^capacity_bits`` (fixed-base: no squarings)."""
        table = self._g()
        w, mask = table.window_bits, (1 << table.window_bits) - 1
        out = []
        for m in plaintexts:
            m = int(m)
            if m < 0 or m.bit_length() > self.capacity_bits:
                raise OverflowError(f"an OU plaintext must be in [0, 2^{self.capacity_bits})")
            acc, i = mpz(1), 0
            while m:
                d = m & mask
                if d:
                    acc = acc * table.rows[i][d] % self.n
                m >>= w
                i += 1
            out.append(acc)
        return out

    def randomizers(self, count: int) -> list[mpz]:
        """``count`` values h^r, r uniform over ``n_bits + 64`` bits from ``secrets``: within
        2^-64 of uniform in ⟨h⟩, which also makes them statistical re-randomizers (below)."""
        table = self._h()
        return table.pow_columns(random_digit_columns(count, table.windows, table.window_bits))

    statistical_randomizers = randomizers

    def raw_encrypt_many(self, plaintexts: list) -> list[mpz]:
        n = self.n
        return [e * r % n for e, r in zip(self.embed_many(plaintexts), self.randomizers(len(plaintexts)))]

    def __getstate__(self):
        return {"n": int(self.n), "g": int(self.g), "h": int(self.h)}

    def __setstate__(self, state):
        self.__init__(state["n"], state["g"], state["h"])


class OUPrivateKey(SecretPrimes):
    """The primes p, q. Never printed, logged or pickled (as :class:`PrivateKey`)."""

    scheme_name = "Okamoto–Uchiyama"

    def __init__(self, public_key: OUPublicKey, p: int, q: int):
        p, q = mpz(p), mpz(q)
        if p * p * q != public_key.n:
            raise KeyMismatchError("p²·q does not equal the public modulus")
        if p.bit_length() != public_key.p_bits or not gmpy2.is_prime(p, 32) or not gmpy2.is_prime(q, 32):
            raise ValueError(f"invalid OU key: p must be a {public_key.p_bits}-bit prime and q a prime "
                             "(the plaintext bound depends on p's size)")
        self.public_key = public_key
        self._p, self._q, self._psq = p, q, p * p
        lg = (gmpy2.powmod(public_key.g, p - 1, self._psq) - 1) // p
        if lg % p == 0:
            raise ValueError("invalid OU key: g^(p−1) has order 1 mod p²")
        self._lg_inv = gmpy2.invert(lg, p)
        self._crt_table: CrtFixedBaseTable | None = None
        self._lock = threading.Lock()

    def token(self) -> tuple:
        """Key material for this party's own worker processes (as ``PrivateKey.token``)."""
        pk = self.public_key
        return ("ou-private", int(pk.n), int(pk.g), int(pk.h), int(self._p), int(self._q))

    def warm(self) -> None:
        self.public_key._g()
        self.crt_table()

    def raw_decrypt(self, ciphertext) -> mpz:
        p, psq = self._p, self._psq
        return (gmpy2.powmod(mpz(ciphertext) % psq, p - 1, psq) - 1) // p * self._lg_inv % p

    def raw_decrypt_many(self, ciphertexts) -> list[mpz]:
        dec = self.raw_decrypt
        return [dec(c) for c in ciphertexts]

    def crt_table(self) -> CrtFixedBaseTable:
        """Powers of h mod p² and mod q, for exponents of bits((p−1)(q−1)) + 64 bits: ord(h)
        divides (p−1)(q−1), so h^r is within 2^-64 of uniform in ⟨h⟩, as the public side's."""
        with self._lock:
            if self._crt_table is None:
                bits = ((self._p - 1) * (self._q - 1)).bit_length() + 64
                self._crt_table = CrtFixedBaseTable(self.public_key.h, self._psq, self._q, bits, PRIVATE_WINDOW_BITS)
            return self._crt_table

    def randomizers(self, count: int) -> list[mpz]:
        """h^r like ``OUPublicKey.randomizers``, at about 60% of the cost (CRT, a shorter r)."""
        table = self.crt_table()
        return table.pow_columns(random_digit_columns(count, table.windows, table.window_bits))

    def raw_encrypt_many(self, plaintexts: list) -> list[mpz]:
        n = self.public_key.n
        return [e * r % n for e, r in zip(self.public_key.embed_many(plaintexts), self.randomizers(len(plaintexts)))]
