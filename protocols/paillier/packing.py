"""Several fixed-point values per plaintext ("packing") and per ciphertext ("compression").

A packed plaintext holds ``s`` slots of ``b`` bits: ``P = Σ_j u_j · 2^(b·j)`` with every slot
``u_j = k_j + offset`` non-negative (``offset`` removes the sign). Adding packed ciphertexts adds
slot by slot; the vector tracks a public exact bound ``u <= max_slot < 2^b`` and refuses a sum
that could carry into the next slot. Compression turns t ciphertexts of s slots into one of t·s slots
by Horner's rule on ciphertexts, ``C = (…(c_{t-1})^(2^(b·s)) · c_{t-2} …) · c_0``: the sender
pays about b squarings per value; the key holder then decrypts t·s values at once.
"""
from __future__ import annotations

import gmpy2
import numpy as np
from gmpy2 import mpz

from protocols._workers import Shared, parallelism
from protocols.paillier import kernels
from protocols.paillier.encoding import DEFAULT_FRAC_BITS, DEFAULT_INT_BITS, decode_floats, to_fixed_point
from protocols.paillier.errors import DecryptionError
from protocols.paillier.keys import PrivateKey, PublicKey
from protocols.paillier.parallel import map_chunks


def pack_ints(slots: list[int], slot_bits: int, per_ct: int) -> list[mpz]:
    """Non-negative slot values, ``per_ct`` per plaintext, lowest slot first."""
    out = []
    for start in range(0, len(slots), per_ct):
        acc = mpz(0)
        for u in reversed(slots[start:start + per_ct]):
            acc = (acc << slot_bits) | u
        out.append(acc)
    return out


def horner_chunk(public_key, groups: list, shift: int, rerandomize: bool = False) -> list:
    """Worker body: fold each group of ciphertexts (lowest slot first) into one ciphertext;
    with ``rerandomize``, multiply each result by hs^α (:meth:`PublicKey.statistical_randomizers`)."""
    n2, factor = public_key.modulus, mpz(1) << shift
    out = []
    for group in groups:
        acc = group[-1]
        for c in reversed(group[:-1]):
            acc = gmpy2.powmod(acc, factor, n2) * c % n2
        out.append(acc)
    if rerandomize:
        out = [c * r % n2 for c, r in zip(out, public_key.statistical_randomizers(len(out)))]
    return out


PARALLEL_GROUP_SUMS = 200_000      # ciphertexts × runs below which group sums stay in this process


def group_sums_chunk(public_key, runs: list, ciphertexts: list, pad_to: int, pad_unit: int) -> list:
    """Worker body of ``group_sums``: per run (a list of index arrays into ``ciphertexts``) the
    cumulative sums, each padded to ``pad_to`` terms by ``(pad_to − terms)·pad_unit``."""
    n2 = public_key.modulus
    pads: dict[int, mpz] = {}               # encodings of (pad_to − terms)·pad_unit, made once each
    out = []
    for groups in runs:
        acc, terms = mpz(1), 0
        for idx in groups:
            for i in idx.tolist():
                acc = acc * ciphertexts[i] % n2
            terms += len(idx)
            if terms > pad_to:
                raise OverflowError(f"a sum of {terms} terms exceeds pad_to={pad_to}")
            pad = pads.get(terms)
            if pad is None:
                pad = pads[terms] = public_key.embed_many([(pad_to - terms) * pad_unit])[0]
            out.append(acc * pad % n2)
    return out


class PackedEncryptedVector:
    """``length`` values in ciphertexts of ``slots`` slots of ``slot_bits`` bits each."""

    def __init__(self, public_key: PublicKey, ciphertexts: list, *, length: int, exponent: int,
                 slot_bits: int, slots: int, offset: int, max_slot: int, obfuscated: bool = False):
        # Size checks first, with no big-number work: these fields may come from a peer.
        if slots < 1 or slot_bits < 1 or slots * slot_bits > public_key.capacity_bits:
            raise OverflowError(f"{slots} slots of {slot_bits} bits do not fit a {public_key.n_bits}-bit key")
        if max_slot < 0 or max_slot.bit_length() > slot_bits:
            raise OverflowError(f"slot values need {max_slot.bit_length()} bits but slots have {slot_bits}")
        if len(ciphertexts) != -(-length // slots):
            raise ValueError(f"{len(ciphertexts)} ciphertexts cannot hold {length} values in {slots} slots")
        self.public_key, self.ciphertexts, self.length = public_key, ciphertexts, length
        self.exponent, self.slot_bits, self.slots = exponent, slot_bits, slots
        self.offset, self.max_slot = offset, max_slot
        self.obfuscated = obfuscated

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return (f"PackedEncryptedVector(len={self.length}, ciphertexts={len(self.ciphertexts)}, "
                f"slots={self.slots}x{self.slot_bits}b)")

    @staticmethod
    def max_slots(public_key: PublicKey, slot_bits: int) -> int:
        return public_key.capacity_bits // slot_bits

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def encrypt(cls, key: PublicKey | PrivateKey, values, *, frac_bits: int = DEFAULT_FRAC_BITS,
                int_bits: int = DEFAULT_INT_BITS, sum_terms: int = 1, slots: int | None = None,
                workers: int | None = None, randomizers: list | None = None) -> "PackedEncryptedVector":
        """Encrypt values packed; slots leave room for sums of up to ``sum_terms`` such vectors.

        ``randomizers``: fresh values from ``prefetch_randomizers`` (one per ciphertext, each
        used once), made while this party waited; the encryption is then one product each.
        """
        public = getattr(key, "public_key", key)          # a private key encrypts with CRT
        ints, mag = to_fixed_point(values, frac_bits, int_bits)
        offset = 1 << mag
        max_slot = (1 << (mag + 1)) - 1               # k + offset in [1, 2^(mag+1))
        slot_bits = (max_slot * max(sum_terms, 1)).bit_length()
        slots = slots or cls.max_slots(public, slot_bits)
        plain = pack_ints([k + offset for k in ints], slot_bits, slots)
        if randomizers is None:
            cts = map_chunks(kernels.encrypt_chunk, key, plain, workers=workers)
        elif len(randomizers) != len(plain):
            raise ValueError(f"{len(randomizers)} randomizers for {len(plain)} ciphertexts")
        else:
            mod = public.modulus
            cts = [e * r % mod for e, r in zip(public.embed_many(plain), randomizers)]
        return cls(public, cts, length=len(ints), exponent=frac_bits, slot_bits=slot_bits, slots=slots,
                   offset=offset, max_slot=max_slot, obfuscated=True)

    @classmethod
    def from_vector(cls, vector, *, extra_bits: int = 0, workers: int | None = None) -> "PackedEncryptedVector":
        """Compress an ``EncryptedVector`` (e.g. after homomorphic sums) into packed ciphertexts.

        ``extra_bits`` leaves room in each slot for later sums of such packed vectors.
        """
        pk = vector.public_key
        offset = 1 << vector.mag_bits
        shifted = vector.add_raw([offset] * len(vector), vector.mag_bits + 1)
        max_slot = (1 << (vector.mag_bits + 1)) - 1
        slot_bits = vector.mag_bits + 1 + extra_bits
        per_ct = cls.max_slots(pk, slot_bits)
        if per_ct < 1:
            raise OverflowError(f"a {slot_bits}-bit slot does not fit a {pk.n_bits}-bit key")
        cts = shifted.ciphertexts
        groups = [cts[i:i + per_ct] for i in range(0, len(cts), per_ct)]
        packed = map_chunks(horner_chunk, pk, groups, extra=(slot_bits,), workers=workers, min_chunk=4)
        return cls(pk, packed, length=len(vector), exponent=vector.exponent, slot_bits=slot_bits,
                   slots=per_ct, offset=offset, max_slot=max_slot)

    # -- arithmetic --------------------------------------------------------------------------
    def _same_layout(self, other: "PackedEncryptedVector") -> None:
        self.public_key.require_same(other.public_key)
        if (self.length, self.slots, self.slot_bits, self.exponent) != \
                (other.length, other.slots, other.slot_bits, other.exponent):
            raise ValueError("packed vectors have different layouts (length, slots, slot bits or scale)")

    def __add__(self, other: "PackedEncryptedVector") -> "PackedEncryptedVector":
        if not isinstance(other, PackedEncryptedVector):
            return NotImplemented
        self._same_layout(other)
        n2 = self.public_key.modulus
        return PackedEncryptedVector(
            self.public_key, [a * b % n2 for a, b in zip(self.ciphertexts, other.ciphertexts)],
            length=self.length, exponent=self.exponent, slot_bits=self.slot_bits, slots=self.slots,
            offset=self.offset + other.offset, max_slot=self.max_slot + other.max_slot)

    # -- sums over groups of ciphertexts (histograms) ----------------------------------------
    # Here each ciphertext is one record of ``slots`` values (e.g. a sample's g and h). A sum of
    # m records has offset ``m · offset``; padding it with ``pad_to − m`` encoded zeros gives
    # every sum the same public offset ``pad_to · offset``, so the recipient can strip it
    # without learning m (e.g. how many samples fell into a histogram bin).
    def _pad_plain(self, terms: int) -> int:
        unit = sum(1 << (self.slot_bits * j) for j in range(self.slots))
        return terms * self.offset * unit

    def group_sums(self, groups, *, pad_to: int, segments=None, workers: int | None = None) -> "PackedEncryptedVector":
        """One ciphertext per group: the record-wise sum over that group's ciphertext indices,
        padded to ``pad_to`` terms (result offset ``pad_to · offset``, bound ``pad_to · max_slot``).

        ``segments``: lengths of consecutive runs of groups; inside a run the sums are
        cumulative (output j sums groups ``start..j``), as for the left-child sums of split
        candidates. Groups within a run must be disjoint; no sum may exceed ``pad_to`` terms.
        ``workers``: runs go to the process pool when there is enough work (each worker gets the
        ciphertexts its runs use).
        """
        if self.length != len(self.ciphertexts) * self.slots:
            raise ValueError("group sums need full ciphertexts (length a multiple of slots)")
        segments = [1] * len(groups) if segments is None else list(segments)
        if sum(segments) != len(groups) or any(s < 1 for s in segments):
            raise ValueError(f"segments {segments} do not cover {len(groups)} groups")
        if pad_to < 1 or pad_to * self.max_slot >= 1 << self.slot_bits:
            raise OverflowError(f"sums padded to pad_to={pad_to} terms could carry out of {self.slot_bits}-bit slots")
        cts = self.ciphertexts
        groups = [np.asarray(idx, dtype=np.int64).reshape(-1) for idx in groups]
        used = np.unique(np.concatenate(groups)) if groups else np.zeros(0, np.int64)
        if len(used) and (used[0] < 0 or used[-1] >= len(cts)):
            raise IndexError(f"group index out of range for {len(cts)} ciphertexts")
        runs, g = [], 0
        for seg in segments:
            runs.append([np.searchsorted(used, idx) for idx in groups[g:g + seg]])
            g += seg
        n_workers = parallelism(workers)
        chunk = max(len(runs) // n_workers, 1)       # about one task per worker: each gets the ciphertexts
        if n_workers > 1 and len(used) * len(runs) < PARALLEL_GROUP_SUMS:
            chunk = len(runs)                       # too little work to ship the ciphertexts
        out = map_chunks(group_sums_chunk, self.public_key, runs, workers=workers, min_chunk=chunk,
                         extra=(Shared([cts[i] for i in used.tolist()]), pad_to, self._pad_plain(1)))
        return PackedEncryptedVector(self.public_key, out, length=len(out) * self.slots, exponent=self.exponent,
                                     slot_bits=self.slot_bits, slots=self.slots, offset=pad_to * self.offset,
                                     max_slot=pad_to * self.max_slot)

    def take(self, indices) -> "PackedEncryptedVector":
        """The records (whole ciphertexts) at ``indices``, in that order."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self.ciphertexts)):
            raise IndexError(f"record index out of range for {len(self.ciphertexts)} ciphertexts")
        if self.length != len(self.ciphertexts) * self.slots:
            raise ValueError("take needs full ciphertexts (length a multiple of slots)")
        return PackedEncryptedVector(self.public_key, [self.ciphertexts[i] for i in idx.tolist()],
                                     length=len(idx) * self.slots, exponent=self.exponent,
                                     slot_bits=self.slot_bits, slots=self.slots, offset=self.offset,
                                     max_slot=self.max_slot, obfuscated=self.obfuscated)

    @classmethod
    def concat(cls, vectors: list) -> "PackedEncryptedVector":
        """Records of several full vectors of one layout (same key, slots, scale and offset)."""
        if not vectors:
            raise ValueError("nothing to concatenate")
        first = vectors[0]
        for v in vectors:
            first.public_key.require_same(v.public_key)
            if (v.slots, v.slot_bits, v.exponent, v.offset, v.max_slot) != \
                    (first.slots, first.slot_bits, first.exponent, first.offset, first.max_slot):
                raise ValueError("packed vectors have different layouts (slots, slot bits, scale or offset)")
            if v.length != len(v.ciphertexts) * v.slots:
                raise ValueError("concat needs full ciphertexts (length a multiple of slots)")
        cts = [c for v in vectors for c in v.ciphertexts]
        return cls(first.public_key, cts, length=len(cts) * first.slots, exponent=first.exponent,
                   slot_bits=first.slot_bits, slots=first.slots, offset=first.offset, max_slot=first.max_slot,
                   obfuscated=all(v.obfuscated for v in vectors))

    def compress(self, group: int | None = None, *, workers: int | None = None,
                 rerandomize: bool = False) -> "PackedEncryptedVector":
        """Fold ``group`` ciphertexts (default: as many as fit) into one; only full ones are safe.

        Requires the vector to fill its ciphertexts exactly (length a multiple of ``slots``).
        ``rerandomize``: multiply each result by hs^α, α of n_bits + 64 bits, in the same pass —
        its randomness is then within 2^-64 of uniform in ⟨hs⟩, where the randomness of every
        ciphertext this engine encrypts lies: it hides how the result was computed from a key
        holder that encrypted the inputs honestly (semi-honest), at a sixth of a full r^n.
        """
        if self.length % self.slots:
            raise ValueError("compress needs full ciphertexts (length a multiple of slots)")
        group = group or max(self.max_slots(self.public_key, self.slot_bits) // self.slots, 1)
        new_slots = group * self.slots
        if new_slots * self.slot_bits > self.public_key.capacity_bits:
            raise OverflowError(f"{new_slots} slots of {self.slot_bits} bits do not fit the key")
        groups = [self.ciphertexts[i:i + group] for i in range(0, len(self.ciphertexts), group)]
        packed = map_chunks(horner_chunk, self.public_key, groups, extra=(self.slot_bits * self.slots, rerandomize),
                            workers=workers, min_chunk=4)
        return PackedEncryptedVector(self.public_key, packed, length=self.length, exponent=self.exponent,
                                     slot_bits=self.slot_bits, slots=new_slots, offset=self.offset,
                                     max_slot=self.max_slot, obfuscated=rerandomize)

    # -- decryption --------------------------------------------------------------------------
    def decrypt_ints(self, private_key: PrivateKey, *, workers: int | None = None) -> list[int]:
        if private_key.public_key != self.public_key:
            raise DecryptionError("decryption failed")
        plains = map_chunks(kernels.decrypt_chunk, private_key, self.ciphertexts, workers=workers)
        mask, b, off = (1 << self.slot_bits) - 1, self.slot_bits, self.offset
        used_last = self.length - (len(plains) - 1) * self.slots      # values in the last ciphertext
        out: list[int] = []
        for i, p in enumerate(plains):
            p = int(p)
            for _ in range(self.slots if i < len(plains) - 1 else used_last):
                out.append((p & mask) - off)
                p >>= b
            if p:        # bits beyond the last value: an honest sender leaves them 0
                raise OverflowError("packed plaintext has bits beyond its last value")
        return out

    def decrypt(self, private_key: PrivateKey, *, workers: int | None = None) -> np.ndarray:
        return decode_floats(self.decrypt_ints(private_key, workers=workers), self.exponent)

    # -- wire --------------------------------------------------------------------------------
    def wire_meta(self) -> dict:
        return {"key": self.public_key.fingerprint, "len": self.length, "exponent": self.exponent,
                "slot_bits": self.slot_bits, "slots": self.slots, "offset": str(self.offset),
                "max_slot": str(self.max_slot)}

    def obfuscate(self, *, workers: int | None = None) -> "PackedEncryptedVector":
        """Re-randomize every ciphertext (see ``EncryptedVector.obfuscate``)."""
        cts = map_chunks(kernels.obfuscate_chunk, self.public_key, self.ciphertexts, workers=workers)
        return PackedEncryptedVector(self.public_key, cts, length=self.length, exponent=self.exponent,
                                     slot_bits=self.slot_bits, slots=self.slots, offset=self.offset,
                                     max_slot=self.max_slot, obfuscated=True)

    def to_bytes(self, *, obfuscate: bool = True) -> bytes:
        """Fixed-width big-endian ciphertexts; computed ones are re-randomized first."""
        vec = self.obfuscate() if obfuscate and not self.obfuscated else self
        width = self.public_key.ciphertext_bytes
        return b"".join(mpz(c).to_bytes(width, "big") for c in vec.ciphertexts)

    @classmethod
    def from_wire(cls, public_key: PublicKey, meta: dict, data) -> "PackedEncryptedVector":
        try:
            length, slots = int(meta["len"]), int(meta["slots"])
            fields = dict(exponent=int(meta["exponent"]), slot_bits=int(meta["slot_bits"]), slots=slots,
                          offset=int(meta["offset"]), max_slot=int(meta["max_slot"]))
            key_id = meta["key"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"packed vector metadata is malformed: {exc}") from None
        if key_id != public_key.fingerprint:
            raise ValueError("packed vector is under another key than the one given")
        if length < 0 or slots < 1 or fields["slot_bits"] < 1 or fields["offset"] < 0:
            raise ValueError("packed vector metadata is out of range")
        cts = kernels.ciphertexts_from_bytes(public_key, data, -(-length // slots))
        return cls(public_key, cts, length=length, obfuscated=False, **fields)   # not fresh for the sender
