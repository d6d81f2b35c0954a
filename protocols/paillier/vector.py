"""``EncryptedVector``: a vector of Paillier ciphertexts with one fixed-point scale.

Layers, as in python-paillier: ``PublicKey.raw_encrypt_many(ints)`` → ``EncryptedVector.encrypt``
(floats/ints with a declared range). Arithmetic with ciphertexts and plaintexts, sums, slices,
concatenation and ``X @ [[v]]`` are vectorized; long vectors run over the worker pool.
"""
from __future__ import annotations

import gmpy2
import numpy as np
from gmpy2 import mpz

from protocols._workers import parallelism
from protocols.paillier import kernels
from protocols.paillier.encoding import (
    DEFAULT_FRAC_BITS,
    DEFAULT_INT_BITS,
    check_headroom,
    decode_floats,
    from_residues,
    scalars_to_fixed,
    to_fixed_point,
    to_residues,
)
from protocols.paillier.errors import DecryptionError, EncodingError
from protocols.paillier.keys import PrivateKey, PublicKey
from protocols.paillier.parallel import map_chunks, submit_chunks

DEFAULT_SCALAR_FRAC_BITS = 16       # resolution of float plaintext multipliers: 2^-16
MATMUL_SPLIT_MIN = 2048             # ciphertexts per worker below which X @ [[v]] stays in one process


PREFETCH_CHUNKS_PER_WORKER = 4


def prefetch_randomizers(key: PublicKey | PrivateKey, count: int, *, workers: int | None = None):
    """Start computing ``count`` fresh randomizers in the worker pool; returns a handle whose
    ``result()`` is the list to pass as ``EncryptedVector.encrypt(..., randomizers=...)``.

    Randomizers do not depend on the plaintexts, so a party can make them while it waits for a
    peer. Each must be used for exactly one encryption. The work is split into a few chunks per
    worker, so that ``cancel()`` on the handle stops most of it when it is no longer wanted.
    """
    chunks = PREFETCH_CHUNKS_PER_WORKER * parallelism(workers)
    per = -(-count // chunks) if count else 0
    counts = [min(per, count - i) for i in range(0, count, per)] if per else []
    return submit_chunks(kernels.randomizers_chunk, key, counts, workers=workers,
                         tasks_per_worker=PREFETCH_CHUNKS_PER_WORKER)


class EncryptedVector:
    """Ciphertexts ``c_i`` of integers ``k_i`` with value ``v_i = k_i · 2^-exponent``.

    ``exponent`` and ``mag_bits`` (|k_i| < 2^mag_bits) are public and derive from parameters,
    not from the data. ``obfuscated`` is False once a ciphertext was computed from others
    (a product or sum whose inputs the recipient may know); ``to_bytes`` re-randomizes those
    before they leave the party.
    """

    __array_ufunc__ = None          # numpy defers `X @ ev`, `a * ev`, `a + ev` to us

    def __init__(self, public_key: PublicKey, ciphertexts: list, exponent: int, mag_bits: int,
                 *, obfuscated: bool = False):
        if public_key.scheme != "paillier":
            raise TypeError(f"signed encrypted vectors need a Paillier key, not {public_key.scheme!r} "
                            "(an OU key holder must never reveal decryptions: see protocols.paillier.ou)")
        self.public_key = public_key
        self.ciphertexts = ciphertexts
        self.exponent = int(exponent)
        self.mag_bits = int(mag_bits)
        self.obfuscated = obfuscated
        check_headroom(self.mag_bits, public_key.n_bits, "this vector")

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def encrypt(cls, key: PublicKey | PrivateKey, values, *, frac_bits: int = DEFAULT_FRAC_BITS,
                int_bits: int = DEFAULT_INT_BITS, workers: int | None = None,
                randomizers: list | None = None) -> "EncryptedVector":
        """Encrypt a 1-D array of floats or ints, |v| < 2^int_bits, resolution 2^-frac_bits.

        With the private key the randomizers are computed by CRT (faster, same distribution).
        ``randomizers``: fresh values from :func:`prefetch_randomizers`, each used once; the
        encryption itself is then one multiplication per value.
        """
        public = key.public_key if isinstance(key, PrivateKey) else key
        ints, mag_bits = to_fixed_point(values, frac_bits, int_bits)
        check_headroom(mag_bits, public.n_bits, "encryption")
        residues = to_residues(ints, public.n)
        if randomizers is None:
            cts = map_chunks(kernels.encrypt_chunk, key, residues, workers=workers)
        else:
            if len(randomizers) != len(residues):
                raise ValueError(f"{len(randomizers)} randomizers for {len(residues)} values")
            n, n2 = public.n, public.nsquare
            cts = [(1 + m * n) * r % n2 for m, r in zip(residues, randomizers)]
        return cls(public, cts, frac_bits, mag_bits, obfuscated=True)

    def decrypt(self, private_key: PrivateKey, *, workers: int | None = None) -> np.ndarray:
        """Decrypt to float64 (to int64 when ``exponent`` is 0 and the values fit)."""
        ints = self.decrypt_ints(private_key, workers=workers)
        if self.exponent == 0 and self.mag_bits < 63:
            return np.array(ints, dtype=np.int64)
        return decode_floats(ints, self.exponent)

    def decrypt_ints(self, private_key: PrivateKey, *, workers: int | None = None) -> list[int]:
        """Decrypt to the exact signed fixed-point integers ``k_i``."""
        pk = self.public_key
        if private_key.public_key != pk:
            raise DecryptionError("decryption failed")
        residues = map_chunks(kernels.decrypt_chunk, private_key, self.ciphertexts, workers=workers)
        return from_residues(residues, pk.n, pk.max_int)

    def _new(self, cts: list, exponent: int | None = None, mag_bits: int | None = None,
             obfuscated: bool = False) -> "EncryptedVector":
        return EncryptedVector(self.public_key, cts, self.exponent if exponent is None else exponent,
                               self.mag_bits if mag_bits is None else mag_bits, obfuscated=obfuscated)

    # -- container protocol ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ciphertexts)

    def __getitem__(self, index) -> "EncryptedVector":
        if isinstance(index, (int, np.integer)):
            cts = [self.ciphertexts[index]]
        elif isinstance(index, slice):
            cts = self.ciphertexts[index]
        else:
            idx = np.asarray(index)
            if idx.dtype == bool:
                if idx.shape != (len(self),):
                    raise IndexError(f"boolean mask of shape {idx.shape} for a vector of length {len(self)}")
                idx = np.flatnonzero(idx)
            cts = [self.ciphertexts[i] for i in idx.tolist()]
        return self._new(cts, obfuscated=self.obfuscated)

    def __repr__(self) -> str:
        return (f"EncryptedVector(len={len(self)}, exponent={self.exponent}, mag_bits={self.mag_bits}, "
                f"key={self.public_key.fingerprint[:16]})")

    @staticmethod
    def concat(vectors: list["EncryptedVector"]) -> "EncryptedVector":
        """Concatenate vectors under one key, aligning them to the largest exponent."""
        if not vectors:
            raise ValueError("nothing to concatenate")
        exponent = max(v.exponent for v in vectors)
        aligned = [v.rescale(exponent) for v in vectors]
        for v in aligned[1:]:
            aligned[0].public_key.require_same(v.public_key)
        cts = [c for v in aligned for c in v.ciphertexts]
        return aligned[0]._new(cts, exponent, max(v.mag_bits for v in aligned),
                               obfuscated=all(v.obfuscated for v in aligned))

    # -- scale -------------------------------------------------------------------------------
    def rescale(self, exponent: int) -> "EncryptedVector":
        """The same values with more fractional bits (multiplies the hidden integers by 2^Δ)."""
        delta = exponent - self.exponent
        if delta < 0:
            raise ValueError("cannot lower the exponent of ciphertexts (that would need division)")
        if delta == 0:
            return self
        n2, factor = self.public_key.nsquare, mpz(1) << delta
        return self._new([gmpy2.powmod(c, factor, n2) for c in self.ciphertexts], exponent, self.mag_bits + delta)

    # -- arithmetic --------------------------------------------------------------------------
    def _plain(self, other, what: str) -> tuple[list[int], int]:
        arr = np.asarray(other)
        if arr.ndim == 0:
            arr = np.full(len(self), arr.item() if arr.dtype != object else other)
        elif arr.shape != (len(self),):
            raise ValueError(f"cannot {what} shape {arr.shape} and an encrypted vector of length {len(self)}")
        ints, mag = to_fixed_point(arr, self.exponent, max(DEFAULT_INT_BITS, 1))
        return ints, mag

    def __add__(self, other) -> "EncryptedVector":
        pk = self.public_key
        if isinstance(other, EncryptedVector):
            pk.require_same(other.public_key)
            if len(other) != len(self) and len(other) != 1 and len(self) != 1:
                raise ValueError(f"cannot add encrypted vectors of lengths {len(self)} and {len(other)}")
            exponent = max(self.exponent, other.exponent)
            a, b = self.rescale(exponent), other.rescale(exponent)
            mag = max(a.mag_bits, b.mag_bits) + 1
            check_headroom(mag, pk.n_bits, "addition")
            ca, cb = a.ciphertexts, b.ciphertexts
            if len(ca) == 1 and len(cb) != 1:
                ca = ca * len(cb)
            elif len(cb) == 1 and len(ca) != 1:
                cb = cb * len(ca)
            n2 = pk.nsquare
            return self._new([x * y % n2 for x, y in zip(ca, cb)], exponent, mag)
        ints, mag = self._plain(other, "add")
        mag = max(self.mag_bits, mag) + 1
        check_headroom(mag, pk.n_bits, "addition")
        n, n2 = pk.n, pk.nsquare
        return self._new([c * (1 + (k % n) * n) % n2 for c, k in zip(self.ciphertexts, ints)], mag_bits=mag)

    def add_raw(self, ints: list[int], mag_bits: int) -> "EncryptedVector":
        """Add signed integers already at this vector's scale, declared |k| < 2^mag_bits.

        For masks: the declared bound (a protocol parameter) is what the result's public
        ``mag_bits`` reveals, never the mask itself.
        """
        if len(ints) != len(self):
            raise ValueError(f"{len(ints)} integers for an encrypted vector of length {len(self)}")
        limit = 1 << mag_bits
        if any(not -limit < k < limit for k in ints):
            raise ValueError(f"an integer exceeds the declared bound 2^{mag_bits}")
        mag = max(self.mag_bits, mag_bits) + 1
        check_headroom(mag, self.public_key.n_bits, "addition")
        n, n2 = self.public_key.n, self.public_key.nsquare
        return self._new([c * (1 + (k % n) * n) % n2 for c, k in zip(self.ciphertexts, ints)], mag_bits=mag)

    __radd__ = __add__

    def __neg__(self) -> "EncryptedVector":
        n2 = self.public_key.nsquare
        return self._new([gmpy2.invert(c, n2) for c in self.ciphertexts])

    def __sub__(self, other) -> "EncryptedVector":
        if isinstance(other, EncryptedVector):
            return self + (-other)
        return self + (-np.asarray(other))

    def __rsub__(self, other) -> "EncryptedVector":
        return (-self) + other

    def mul(self, other, *, frac_bits: int | None = None, workers: int | None = None) -> "EncryptedVector":
        """Multiply by plaintext scalar(s). Floats are encoded with ``frac_bits`` (default 16)."""
        arr = np.asarray(other)
        if frac_bits is None:
            frac_bits = 0 if arr.dtype.kind in "iub" else DEFAULT_SCALAR_FRAC_BITS
        if arr.ndim == 0:
            arr = arr.reshape(1)
        elif arr.shape != (len(self),):
            raise ValueError(f"cannot multiply shape {arr.shape} with an encrypted vector of length {len(self)}")
        ints, k_bits = scalars_to_fixed(arr, frac_bits)
        mag = self.mag_bits + k_bits
        check_headroom(mag, self.public_key.n_bits, "multiplication")
        if len(ints) == 1:
            ints = ints * len(self)
        cts = map_chunks(kernels.powmod_chunk, self.public_key, list(zip(self.ciphertexts, ints)), workers=workers)
        return self._new(cts, self.exponent + frac_bits, mag)

    def __mul__(self, other) -> "EncryptedVector":
        if isinstance(other, EncryptedVector):
            raise TypeError("Paillier cannot multiply two ciphertexts; multiply by a plaintext instead")
        return self.mul(other)

    __rmul__ = __mul__

    def sum(self) -> "EncryptedVector":
        """The encrypted sum of all elements (a vector of length 1)."""
        n2 = self.public_key.nsquare
        acc = mpz(1)
        for c in self.ciphertexts:
            acc = acc * c % n2
        mag = self.mag_bits + max(len(self) - 1, 0).bit_length()
        return self._new([acc], mag_bits=mag)

    def matmul(self, matrix, *, frac_bits: int | None = None, scalar_bits: int | None = None,
               workers: int | None = None) -> "EncryptedVector":
        """``matrix @ [[v]]`` for a plaintext (m, n) matrix: one multi-exponentiation per row.

        The usual gradient is ``X.T @ [[d]]`` (X of shape (n, m)). Floats in ``matrix`` are
        encoded with ``frac_bits`` (default 16); the result's exponent is the sum of both scales.
        ``scalar_bits`` declares |encoded entry| < 2^scalar_bits, so the result's public
        ``mag_bits`` reveals the declaration, not the largest entry.
        """
        mat = np.asarray(matrix)
        if mat.ndim != 2 or mat.shape[1] != len(self):
            raise ValueError(f"cannot multiply a matrix of shape {mat.shape} with an encrypted vector "
                             f"of length {len(self)}")
        if frac_bits is None:
            frac_bits = 0 if mat.dtype.kind in "iub" else DEFAULT_SCALAR_FRAC_BITS
        ints, k_bits = scalars_to_fixed(mat, frac_bits)
        if scalar_bits is not None:     # a declared bound keeps the public mag_bits independent of the data
            if k_bits > scalar_bits:
                raise EncodingError(f"matrix entries need {k_bits} bits, more than the declared {scalar_bits}")
            k_bits = scalar_bits
        mag = self.mag_bits + k_bits + max(len(self) - 1, 0).bit_length()
        check_headroom(mag, self.public_key.n_bits, "matrix product")
        n_rows, n_cols = mat.shape
        rows = [ints[i * n_cols:(i + 1) * n_cols] for i in range(n_rows)]
        # Split the ciphertexts (not the rows of the matrix) across workers: every worker gets
        # an equal share of the bases once and returns one partial product per row.
        parts = max(min(parallelism(workers), n_cols // MATMUL_SPLIT_MIN), 1)
        step = -(-n_cols // parts)
        tasks = [(self.ciphertexts[a:a + step], [r[a:a + step] for r in rows]) for a in range(0, n_cols, step)]
        partials = map_chunks(kernels.matmul_chunk, self.public_key, tasks, workers=workers, min_chunk=1)
        n2 = self.public_key.nsquare
        cts = partials[0]
        for part in partials[1:]:
            cts = [a * b % n2 for a, b in zip(cts, part)]
        return self._new(cts, self.exponent + frac_bits, mag)

    def weighted_sum(self, weights, *, frac_bits: int, scalar_bits: int,
                     workers: int | None = None) -> "EncryptedVector":
        """``[[Σ_i w_i·v_i]]`` (a vector of length 1) for plaintext weights |encoded w| < 2^scalar_bits.

        Unlike :meth:`matmul` the work does not depend on the weights' signs or largest size
        (:func:`~protocols.paillier.multiexp.offset_multiexp`): use it where the party that owns
        the weights computes and someone else can time it. The ciphertexts must be invertible
        mod n² (checked when they were received).
        """
        ints, k_bits = scalars_to_fixed(np.asarray(weights).reshape(-1), frac_bits)
        if len(ints) != len(self):
            raise ValueError(f"{len(ints)} weights for {len(self)} ciphertexts")
        if k_bits > scalar_bits:
            raise EncodingError(f"weights need {k_bits} bits, more than the declared {scalar_bits}")
        mag = self.mag_bits + scalar_bits + max(len(self) - 1, 0).bit_length()
        check_headroom(mag, self.public_key.n_bits, "weighted sum")
        # each worker takes a share of the bases: its offset correction is self-contained
        parts = max(min(parallelism(workers), len(ints) // MATMUL_SPLIT_MIN), 1)
        step = -(-len(ints) // parts) if ints else 1
        tasks = [(self.ciphertexts[a:a + step], ints[a:a + step], scalar_bits) for a in range(0, len(ints), step)]
        n2, ct = self.public_key.nsquare, mpz(1)
        for part in map_chunks(kernels.weighted_sum_chunk, self.public_key, tasks, workers=workers, min_chunk=1):
            ct = ct * part % n2
        return self._new([ct], self.exponent + frac_bits, mag)

    def __rmatmul__(self, matrix) -> "EncryptedVector":
        return self.matmul(matrix)

    # -- leaving the party -------------------------------------------------------------------
    def obfuscate(self, *, workers: int | None = None) -> "EncryptedVector":
        """Re-randomize every ciphertext (multiply by a fresh r^n, r uniform), like phe's ``be_secure``.

        Needed before sending anything computed from ciphertexts the recipient could know:
        without it, ``c^k`` or a sum reveals its inputs' relation to the recipient. The
        obfuscator does not use the key holder's DJN base, so it hides even from the key holder.
        """
        cts = map_chunks(kernels.obfuscate_chunk, self.public_key, self.ciphertexts, workers=workers)
        return self._new(cts, obfuscated=True)

    def wire_meta(self) -> dict:
        """Public metadata for the wire codec (msgpack-able)."""
        return {"key": self.public_key.fingerprint, "len": len(self), "exponent": self.exponent,
                "mag_bits": self.mag_bits}

    def to_bytes(self, *, obfuscate: bool = True) -> bytes:
        """Fixed-width big-endian ciphertexts, concatenated.

        Non-fresh ciphertexts are re-randomized first unless ``obfuscate=False``; skipping is
        safe only when the recipient already holds exactly these ciphertexts' inputs anyway
        or they stay on this party's disk.
        """
        vec = self.obfuscate() if obfuscate and not self.obfuscated else self
        width = self.public_key.ciphertext_bytes
        return b"".join(c.to_bytes(width, "big") for c in vec.ciphertexts)

    @classmethod
    def from_wire(cls, public_key: PublicKey, meta: dict, data) -> "EncryptedVector":
        """Rebuild from ``wire_meta`` and ``to_bytes`` output, validating sizes and ranges."""
        try:
            length, exponent, mag_bits = int(meta["len"]), int(meta["exponent"]), int(meta["mag_bits"])
            key_id = meta["key"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"encrypted vector metadata is malformed: {exc}") from None
        if key_id != public_key.fingerprint:
            raise ValueError("encrypted vector is under another key than the one given")
        if length < 0 or not 0 <= exponent <= 4096 or not 0 <= mag_bits:
            raise ValueError("encrypted vector metadata is out of range")
        # Received ciphertexts are not fresh for their sender: sending any of them back (a
        # slice, a concatenation) re-randomizes first.
        return cls(public_key, kernels.ciphertexts_from_bytes(public_key, data, length), exponent, mag_bits,
                   obfuscated=False)
