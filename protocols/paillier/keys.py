"""Paillier keys with g = n + 1 and a Damgård–Jurik–Nielsen (DJN) randomizer base.

Encryption is ``c = (1 + m·n) · h_s^α mod n²`` with ``h_s = (−x²)^n mod n²`` public and ``α`` a
fresh uniformly random exponent of at least n_bits/2 bits. The result is an ordinary Paillier
ciphertext: any Paillier private key (python-paillier's too) decrypts it.
"""
from __future__ import annotations

import hashlib
import secrets
import threading

import gmpy2
from gmpy2 import mpz

from protocols.paillier.errors import KeyMismatchError, KeySizeError
from protocols.paillier.fixedbase import CrtFixedBaseTable, FixedBaseTable, random_digit_columns

# 2048-bit moduli give about 112-bit security (NIST SP 800-57 Part 1, Table 2); 3072 gives 128.
DEFAULT_KEY_BITS = 2048
SECURE_KEY_BITS = (2048, 3072, 4096)
# Smallest size accepted with the explicit test opt-in (still far too small for real data).
_MIN_TEST_KEY_BITS = 256

# Window widths of the fixed-base tables, chosen by measurement (docs/benchmarks.md):
# public-key side works mod n² (4096-bit entries for 2048-bit keys, 128 windows × 256 ≈ 17 MB);
# the key holder works mod p² and q² (half-size entries; 2^10-entry windows ≈ 55 MB per key).
PUBLIC_WINDOW_BITS = 8
PRIVATE_WINDOW_BITS = 10
WIDE_WINDOW_BITS = 6            # statistical re-randomizers: 352 windows of 64 entries (11 MB at 2048 bits)
_PARALLEL_THRESHOLD = 512


def _random_prime(bits: int) -> mpz:
    """A uniformly sampled prime p ≡ 3 (mod 4) with its two top bits set (so |p·q| = 2·bits)."""
    while True:
        candidate = mpz(secrets.randbits(bits)) | (mpz(3) << (bits - 2)) | 3
        if gmpy2.is_prime(candidate, 64):
            return candidate


def _check_key_bits(n_bits: int, allow_insecure: bool, scheme: str = "Paillier") -> None:
    if n_bits in SECURE_KEY_BITS:
        return
    if not allow_insecure:
        raise KeySizeError(
            f"refusing a {n_bits}-bit {scheme} key: use one of {SECURE_KEY_BITS} "
            "(2048 bits ≈ 112-bit security). Tests may pass allow_insecure_key_size_for_tests=True.")
    if n_bits < _MIN_TEST_KEY_BITS or n_bits % 2:
        raise KeySizeError(f"key size must be even and >= {_MIN_TEST_KEY_BITS} bits, got {n_bits}")


def generate_keypair(n_bits: int = DEFAULT_KEY_BITS, *,
                     allow_insecure_key_size_for_tests: bool = False) -> tuple["PublicKey", "PrivateKey"]:
    """Generate a Paillier key pair with primes p ≡ q ≡ 3 (mod 4) from ``secrets``.

    ``n_bits`` must be 2048 (default), 3072 or 4096. Smaller keys exist only for fast tests and
    need the loudly named opt-in ``allow_insecure_key_size_for_tests=True``.
    """
    _check_key_bits(n_bits, allow_insecure_key_size_for_tests)
    half = n_bits // 2
    while True:
        p, q = _random_prime(half), _random_prime(half)
        if p != q and (p * q).bit_length() == n_bits:
            break
    public = PublicKey(p * q)
    return public, PrivateKey(public, p, q)


def _derive_hs(n: mpz, nsquare: mpz) -> mpz:
    """DJN base: h = −x² mod n for random x ∈ Z_n*, h_s = h^n mod n²."""
    while True:
        x = mpz(secrets.randbelow(int(n) - 2) + 2)
        if gmpy2.gcd(x, n) == 1:
            break
    h = (-x * x) % n
    return gmpy2.powmod(h, n, nsquare)


def split_key_bytes(data, what: str) -> tuple[int, mpz, bytes]:
    """A serialized public key's modulus byte length ``kb``, its modulus (``kb`` bytes, of
    about ``8·kb`` bits) and the ``2·kb`` bytes after it; ``ValueError`` naming ``what``."""
    data = bytes(data)
    if len(data) < 2:
        raise ValueError(f"{what} bytes truncated")
    kb = int.from_bytes(data[:2], "big")
    if kb * 8 < _MIN_TEST_KEY_BITS or kb * 8 > 8192 or len(data) != 2 + 3 * kb:
        raise ValueError(f"{what} bytes have the wrong length ({len(data)} for {kb}-byte modulus)")
    n = mpz.from_bytes(data[2:2 + kb], "big")
    if n.bit_length() < kb * 8 - 7:
        raise ValueError(f"{what} modulus is malformed")
    return kb, n, data[2 + kb:]


class AdditivePublicKey:
    """What the packed-vector code needs of an additively homomorphic public key (Paillier or
    Okamoto–Uchiyama): ``scheme``, ``modulus`` (of ciphertexts), ``capacity_bits`` (of a packed
    plaintext), ``n_bits``, ``ciphertext_bytes``, ``fingerprint``, ``embed_many``,
    ``randomizers``, ``statistical_randomizers``, ``raw_encrypt_many``, ``token``, ``warm``,
    ``to_bytes``. A message field typed with this class takes either scheme's key."""

    scheme = ""


class PublicKey(AdditivePublicKey):
    """A Paillier public key: modulus ``n`` and the DJN randomizer base ``hs``.

    A key made from a bare modulus (e.g. converted from python-paillier) draws its own ``hs``;
    ciphertexts under it still decrypt with the matching private key.
    """

    scheme = "paillier"

    def __init__(self, n: int, hs: int | None = None):
        self.n = mpz(n)
        self.nsquare = self.n * self.n
        self.modulus = self.nsquare             # ciphertexts are residues mod n²
        self.n_bits = self.n.bit_length()
        self.capacity_bits = self.n_bits - 2    # of a packed plaintext (no wrap past n)
        self.hs = _derive_hs(self.n, self.nsquare) if hs is None else mpz(hs)
        if not (1 < self.hs < self.nsquare - 1) or gmpy2.gcd(self.hs, self.n) != 1 \
                or self.hs * self.hs % self.nsquare == 1:
            raise ValueError("invalid DJN base hs for this modulus")
        self.max_int = self.n // 3            # plaintexts in the middle third mean overflow
        self.key_bytes = (self.n_bits + 7) // 8
        self.ciphertext_bytes = 2 * self.key_bytes
        self.alpha_bits = (self.n_bits + 1) // 2
        self.fingerprint = hashlib.sha256(int(self.n).to_bytes(self.key_bytes, "big")).hexdigest()[:32]
        self._table: FixedBaseTable | None = None
        self._wide_table: FixedBaseTable | None = None
        self._lock = threading.Lock()

    # -- identity --------------------------------------------------------------------------
    def __eq__(self, other) -> bool:
        return isinstance(other, PublicKey) and self.n == other.n

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        return f"PublicKey(n_bits={self.n_bits}, fingerprint={self.fingerprint[:16]})"

    def require_same(self, other: "PublicKey", what: str = "ciphertexts") -> None:
        if self != other:
            raise KeyMismatchError(f"{what} are under different keys "
                                   f"({self.fingerprint[:16]} vs {other.fingerprint[:16]})")

    # -- serialization ---------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Fixed layout: 2-byte key byte length, n, hs (big-endian, fixed width)."""
        return (self.key_bytes.to_bytes(2, "big") + self.n.to_bytes(self.key_bytes, "big")
                + self.hs.to_bytes(self.ciphertext_bytes, "big"))

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> "PublicKey":
        kb, n, rest = split_key_bytes(data, "public key")
        if n % 2 == 0:
            raise ValueError("public key modulus is malformed")
        return cls(n, mpz.from_bytes(rest, "big"))

    def token(self) -> tuple:
        """What a worker process needs to rebuild this key (public values only)."""
        return ("public", int(self.n), int(self.hs))

    # -- randomizers -----------------------------------------------------------------------
    def warm(self) -> None:
        self.table()

    def table(self) -> FixedBaseTable:
        """The fixed-base table of ``hs`` mod n², built on first use (thread-safe)."""
        with self._lock:
            if self._table is None:
                self._table = FixedBaseTable(self.hs, self.nsquare, self.alpha_bits, PUBLIC_WINDOW_BITS)
            return self._table

    def randomizers(self, count: int) -> list[mpz]:
        """``count`` fresh values hs^α mod n², α uniform over ``alpha_bits``+ bits from ``secrets``."""
        table = self.table()
        return table.pow_columns(random_digit_columns(count, table.windows, table.window_bits))

    def statistical_randomizers(self, count: int) -> list[mpz]:
        """``count`` values hs^α with α uniform over ``n_bits`` + 64 bits (from ``secrets``).

        The order of hs is below 2^n_bits, so α mod ord(hs) is within 2^-64 of uniform and
        hs^α within 2^-64 of a uniform element of ⟨hs⟩ — whoever knows the factorization
        included. Every ciphertext this engine makes has its randomness in ⟨hs⟩, so multiplying
        a ciphertext computed from them by one of these hides how it was computed, statistically,
        from the key holder too: the cheap (fixed-base) form of a full r^n re-randomization for
        replies to a key holder that encrypted honestly (semi-honest).
        """
        with self._lock:
            if self._wide_table is None:
                self._wide_table = FixedBaseTable(self.hs, self.nsquare, self.n_bits + 64, WIDE_WINDOW_BITS)
            table = self._wide_table
        return table.pow_columns(random_digit_columns(count, table.windows, table.window_bits))

    def embed_many(self, plaintexts: list) -> list[mpz]:
        """The deterministic part of an encryption, ``1 + m·n mod n²``, per integer m."""
        n, n2 = self.n, self.nsquare
        return [(1 + m % n * n) % n2 for m in plaintexts]

    def raw_encrypt_many(self, plaintexts: list) -> list[mpz]:
        """Encrypt non-negative integers < n. You probably want ``EncryptedVector.encrypt``."""
        n, n2 = self.n, self.nsquare
        return [(1 + m * n) * r % n2 for m, r in zip(plaintexts, self.randomizers(len(plaintexts)))]

    def raw_encrypt(self, plaintext: int) -> mpz:
        return self.raw_encrypt_many([mpz(plaintext)])[0]

    def __getstate__(self):
        # Sent to worker processes: the table is rebuilt there rather than copied.
        return {"n": int(self.n), "hs": int(self.hs)}

    def __setstate__(self, state):
        self.__init__(state["n"], state["hs"])


class SecretPrimes:
    """What every private key of the engine shares: primes ``_p``, ``_q`` and a ``public_key``,
    never printed (``repr`` shows only the fingerprint) and never pickled."""

    scheme_name = ""
    _p: mpz
    _q: mpz

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<secret>, fingerprint={self.public_key.fingerprint[:16]})"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError(f"a {self.scheme_name} private key is not serializable; workers get key material through "
                        "protocols.paillier.parallel, never by pickling the key")

    @property
    def p(self) -> mpz:
        return self._p

    @property
    def q(self) -> mpz:
        return self._q


class PrivateKey(SecretPrimes):
    """The key holder's secret: primes p, q. Decrypts with CRT; encrypts with CRT too.

    Never printed, logged or serialized (``repr`` shows only the fingerprint; pickling raises).
    The one way key material reaches this party's own worker processes is explicit:
    :func:`protocols.paillier.parallel` hands them ``(n, hs, p, q)`` as plain integers over the
    pool's local pipe, and each worker keeps one key at a time.
    """

    scheme_name = "Paillier"

    def __init__(self, public_key: PublicKey, p: int, q: int):
        p, q = mpz(p), mpz(q)
        if p * q != public_key.n:
            raise KeyMismatchError("p·q does not equal the public modulus")
        self.public_key = public_key
        self._p, self._q = p, q
        self._psquare, self._qsquare = p * p, q * q
        self._hp = self._h(p, self._psquare)
        self._hq = self._h(q, self._qsquare)
        self._p_inv_q = gmpy2.invert(p, q)
        self._crt_table: CrtFixedBaseTable | None = None
        self._lock = threading.Lock()

    def _h(self, prime: mpz, prime_sq: mpz) -> mpz:
        g = self.public_key.n + 1
        lx = (gmpy2.powmod(g, prime - 1, prime_sq) - 1) // prime
        return gmpy2.invert(lx, prime)

    def token(self) -> tuple:
        """Key material for this party's own worker processes (see the class docstring)."""
        pk = self.public_key
        return ("private", int(pk.n), int(pk.hs), int(self._p), int(self._q))

    def warm(self) -> None:
        self.crt_table()

    # -- decryption ------------------------------------------------------------------------
    def raw_decrypt(self, ciphertext) -> mpz:
        """Decrypt one ciphertext to an integer in [0, n). You probably want ``decrypt``."""
        c = mpz(ciphertext)
        p, q = self._p, self._q
        mp = (gmpy2.powmod(c % self._psquare, p - 1, self._psquare) - 1) // p * self._hp % p
        mq = (gmpy2.powmod(c % self._qsquare, q - 1, self._qsquare) - 1) // q * self._hq % q
        return mp + ((mq - mp) * self._p_inv_q % q) * p

    def raw_decrypt_many(self, ciphertexts) -> list[mpz]:
        dec = self.raw_decrypt
        return [dec(c) for c in ciphertexts]

    # -- encryption with CRT (the key holder's fast path) ----------------------------------
    def crt_table(self) -> CrtFixedBaseTable:
        with self._lock:
            if self._crt_table is None:
                pk = self.public_key
                self._crt_table = CrtFixedBaseTable(pk.hs, self._psquare, self._qsquare, pk.alpha_bits,
                                                    PRIVATE_WINDOW_BITS)
            return self._crt_table

    def randomizers(self, count: int) -> list[mpz]:
        """hs^α like ``PublicKey.randomizers`` (α of windows·w ≥ n_bits/2 bits: 1030 bits here,
        1024 on the public side), computed mod p² and q² and joined by CRT."""
        table = self.crt_table()
        return table.pow_columns(random_digit_columns(count, table.windows, table.window_bits))

    def raw_encrypt_many(self, plaintexts: list) -> list[mpz]:
        n, n2 = self.public_key.n, self.public_key.nsquare
        return [(1 + m * n) * r % n2 for m, r in zip(plaintexts, self.randomizers(len(plaintexts)))]
