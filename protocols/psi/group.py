"""The group of the PSI: X25519 (Curve25519, libsodium through PyNaCl) on curve points.

Why X25519. PSI cost is four variable-base scalar multiplications per id pair, so the fastest
well-kept multiplication wins. Measured on the 2-core machine of this project (one core):
libsodium X25519 ≈27k/s, OpenSSL X25519 through ``cryptography`` ≈22k/s (object overhead per
call), libsodium ed25519 ``noclamp`` ≈9k/s (it re-checks every point). PyNaCl 1.6 exposes no
ristretto255 bindings. ``vfl bench psi`` measures the two X25519 paths again on each run.

Commutativity. X25519 clamps a scalar to ``8·k' + 2^254``; the ladder works on u-coordinates,
which name a point up to sign, and ``u(c·(±P)) = u(c·P)``. Hence
``X25519(a, X25519(b, u)) == X25519(b, X25519(a, u))``: the masks commute.

Hash to the group. Try-and-increment: keyed BLAKE2b (key = the job salt, personalization =
:data:`PERSON`, BLAKE2b salt = a counter) gives 64 bytes, i.e. two candidate u-coordinates;
the first that lies on Curve25519 (``u < p`` and ``u³ + 486662·u² + u`` a square mod p) is the
point. This is a random oracle onto the curve's points (up to sign); clamping then clears the
cofactor, so every masked value lies in the prime-order subgroup. Points are kept off the
quadratic twist on purpose: a twist point would be recognisable, and since every party knows
the salt, that bit would be a (tiny) leak about which id sits behind a masked value. The
number of tries depends only on the id and the public salt, never on a secret scalar.

Peer input. X25519 is safe on any 32-byte input (twist-secure, cofactor cleared by clamping),
so points received from a peer are not re-validated; libsodium rejects small-order points,
which surfaces as :class:`~protocols.psi.errors.InvalidPointError`. Every multiplication, of
a party's own hashed ids and of a peer's points alike, is libsodium's: :func:`backend` names it
for the PSI report and the audit log.
"""
from __future__ import annotations

import hashlib
import secrets
from importlib import metadata

import gmpy2
import numpy as np
from nacl.bindings import crypto_scalarmult

from protocols.psi.errors import InvalidPointError

POINT_BYTES = 32
PERSON = b"vfl.psi.x25519.1"          # BLAKE2b personalization: at most 16 bytes
SALT_BYTES = 32
_P = gmpy2.mpz(2**255 - 19)
_A = 486662
_U_MASK = (1 << 255) - 1


class Scalar:
    """A party's secret X25519 scalar for one job. Never printed, never serialized."""

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes):
        if not isinstance(raw, bytes) or len(raw) != 32:
            raise ValueError("a scalar is 32 bytes")
        self._raw = raw

    @classmethod
    def generate(cls) -> "Scalar":
        """Fresh randomness from :mod:`secrets` (the OS CSPRNG)."""
        return cls(secrets.token_bytes(32))

    def __repr__(self) -> str:
        return "Scalar(<secret>)"

    def __reduce__(self):
        raise TypeError("a secret scalar is not picklable; pass .raw_bytes() to a local worker explicitly")

    def raw_bytes(self) -> bytes:
        """The secret bytes, for this party's own worker processes only."""
        return self._raw


def backend() -> str:
    """The implementation of the group operations, as the PSI report and audit log record it."""
    try:
        version = metadata.version("pynacl")
    except metadata.PackageNotFoundError:      # running from a source tree without metadata
        version = "unknown version"
    return f"libsodium X25519 (PyNaCl {version})"


def new_salt() -> bytes:
    """A fresh per-job salt (public: it keys the id hash, it does not protect ids by itself)."""
    return secrets.token_bytes(SALT_BYTES)


def _candidate(half: bytes) -> bytes | None:
    """``half`` with its top bit cleared if that is a Curve25519 u-coordinate, else None."""
    u = gmpy2.mpz(int.from_bytes(half, "little") & _U_MASK)
    # jacobi(u·(u·(u + A) + 1), p) is the Legendre symbol of u³ + A·u² + u: no reduction needed
    if u < _P and gmpy2.jacobi(u * (u * (u + _A) + 1), _P) == 1:
        return half[:31] + bytes((half[31] & 0x7F,))
    return None


def hash_to_point(item: bytes, salt: bytes) -> bytes:
    """Keyed, domain-separated hash of one id to a Curve25519 u-coordinate (32 bytes)."""
    return _hash_from(item, salt, 0)


def _hash_from(item: bytes, salt: bytes, counter: int) -> bytes:
    """:func:`hash_to_point` from try ``counter`` on (earlier tries are known to have failed)."""
    while True:
        digest = hashlib.blake2b(item, digest_size=64, key=salt, person=PERSON,
                                 salt=counter.to_bytes(16, "little")).digest()
        point = _candidate(digest[:32]) or _candidate(digest[32:])
        if point is not None:
            return point
        counter += 1


def hash_blob(items: list[bytes], salt: bytes) -> bytes:
    """:func:`hash_to_point` over many ids, concatenated (the common first try inlined).

    BLAKE2b's default salt is 16 zero bytes, i.e. counter 0: the inlined try is try 0, so a
    miss goes on from try 1 (a quarter of the ids; redoing try 0 cost ≈15% of the hashing).
    """
    blake2b, candidate, out = hashlib.blake2b, _candidate, []
    for item in items:
        digest = blake2b(item, digest_size=64, key=salt, person=PERSON).digest()
        out.append(candidate(digest[:32]) or candidate(digest[32:]) or _hash_from(item, salt, 1))
    return b"".join(out)


def mult_blob(scalar_raw: bytes, blob: bytes) -> bytes:
    """X25519 of every 32-byte point in ``blob`` with one scalar, concatenated."""
    mult = crypto_scalarmult
    try:
        return b"".join([mult(scalar_raw, blob[i:i + 32]) for i in range(0, len(blob), 32)])
    except RuntimeError:                       # libsodium: small-order input point
        raise InvalidPointError("a point of small order was received") from None


def hash_mult_blob(scalar_raw: bytes, items: list[bytes], salt: bytes) -> bytes:
    """Hash ids to points and multiply them with one scalar: ``H(id)^k`` for a party's own ids."""
    return mult_blob(scalar_raw, hash_blob(items, salt))


def blob_to_points(blob: bytes) -> np.ndarray:
    """Concatenated points as a read-only ``(n, 32)`` uint8 array (no copy)."""
    return np.frombuffer(blob, dtype=np.uint8).reshape(-1, POINT_BYTES)


def check_points(points, what: str) -> np.ndarray:
    """A peer's points must be a ``(n, 32)`` uint8 array; returned C-contiguous."""
    if not isinstance(points, np.ndarray) or points.dtype != np.uint8 or points.ndim != 2 \
            or points.shape[1] != POINT_BYTES:
        shape = getattr(points, "shape", None)
        dtype = getattr(points, "dtype", type(points).__name__)
        raise InvalidPointError(f"{what}: expected a (n, 32) uint8 array, got {dtype} of shape {shape}")
    return np.ascontiguousarray(points)
