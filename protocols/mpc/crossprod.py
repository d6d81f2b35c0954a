"""Dealer-free products of two parties' private matrices, into additive shares (Paillier).

The key holder K holds ``X`` (integers in [0, 2^v), ``k×q``: ring elements with v = 64, or small
data) and a Paillier key; the multiplier M holds ``Y`` (integers in [0, 2^b), ``m×k``). They end
with shares ``Z_K + Z_M = Y·X (mod 2^64)``:

1. K packs each row of X into ciphertexts of ``S`` slots of ``s`` bits (``S·s ≤ n_bits − 2``),
   encrypts them (CRT, fresh randomness) and sends them (:class:`~protocols.mpc.messages.CrossOffer`).
2. M computes, for every output row i and slot group g, the multi-exponentiation
   ``Π_l E[l, g]^Y[i, l] = Enc(Σ_j (Y·X)[i, gS+j] · 2^(s·j))`` — every slot an exact integer
   below ``k·2^(v+b)`` — adds a uniform mask ``r`` below ``2^(s−1)`` to every slot, re-randomizes
   each ciphertext with ``hs^α`` (α of n_bits + 64 bits) and sends them back (:class:`CrossReply`).
   M's share is ``−r``.
3. K decrypts; its share is each slot ``(Y·X + r) mod 2^64``.

Elementwise products ``y ⊙ x`` use the same steps with ``k = 1``: K encrypts each ``x_j``
already shifted into slot ``j mod S``, so M's multi-exponentiation over a group of S values
lands each product in its own slot.

What each party sees (semi-honest): M sees only ciphertexts under K's key; K sees
``Y·X + r`` in every slot, where ``r`` has λ = ``stat_bits`` (default 64) more bits than the
product, so the statistical distance from uniform is at most 2^−λ per slot. K also knows the
factorization, so the reply's randomness must not carry Y either: the randomness of K's own
ciphertexts lies in ⟨hs⟩, so that of ``Π E^Y`` does too, and the factor ``hs^α`` makes it
within 2^−64 of uniform in ⟨hs⟩ (:meth:`PublicKey.statistical_randomizers`) — a fixed-base
power, 6x cheaper here than a full ``r^n``, which would also cover a key holder that made its
ciphertexts with other randomness (outside the semi-honest model). Slot sizes,
shapes and ``b`` are public. M's multi-exponentiation skips zero digits of its scalars, so its
running time depends (weakly) on them; only M's own machine observes it.

Signed values: K passes ``x + o_x`` and M ``y + o_y`` with public offsets (``value_offset``,
``scalar_offset``, e.g. 2^(v−1), 2^(b−1)). Then ``Σ y·x = Σ y'·x' − o_y·Σ x' − o_x·Σ y' + k·o_x·o_y``:
K subtracts ``o_y·Σ_l X'[l, :]`` and ``k·o_x·o_y``, M subtracts ``o_x·Σ_l Y'[i, l]``, and the shares
add up to the signed product. Small values (v, b ≈ 30 for standardized data) make slots of
``v + b + ⌈log2 k⌉ + λ + 1`` bits, so more of them fit a ciphertext.
"""
from __future__ import annotations

import secrets

import numpy as np
from gmpy2 import mpz

from protocols._workers import parallelism
from protocols.mpc import kernels
from protocols.mpc.errors import MpcProtocolError
from protocols.mpc.messages import CrossOffer, CrossReply
from protocols.mpc.ring import RING_BITS, as_ring, from_python_ints, to_python_ints
from protocols.paillier import PackedEncryptedVector, PrivateKey, PublicKey
from protocols.paillier.packing import pack_ints
from protocols.paillier.parallel import map_chunks

DEFAULT_STAT_BITS = 64          # λ: statistical hiding of each slot from the key holder
MIN_KEY_BITS = 2048
_RING_MAX = (1 << RING_BITS) - 1


def slot_bits(terms: int, scalar_bits: int, stat_bits: int = DEFAULT_STAT_BITS, value_bits: int = RING_BITS) -> int:
    """Bits of one slot: a sum of ``terms`` products below 2^(v+b), a mask λ bits wider, a carry."""
    return value_bits + scalar_bits + max(terms - 1, 0).bit_length() + stat_bits + 1


def slots_per_ciphertext(n_bits: int, bits: int) -> int:
    return (n_bits - 2) // bits


# Rough costs in 4096-bit modular multiplications, to choose between equivalent layouts
ENCRYPT_COST = 150          # a key holder's CRT encryption (two fixed-base powers mod p², q²)
OUTPUT_COST = 2600          # one reply ciphertext: a full r^n re-randomization and a CRT decryption


def matrix_cost(rows: int, cols: int, outputs: int, n_bits: int, *, scalar_bits: int = RING_BITS,
                value_bits: int = RING_BITS) -> float:
    """Estimated work of a matrix cross product (X: ``rows×cols`` at the key holder, ``outputs``
    rows of Y): encryptions, multi-exponentiations over ``rows`` bases, reply ciphertexts."""
    from protocols.paillier.multiexp import best_window
    lay = Layout("matrix", rows, cols, scalar_bits, n_bits, value_bits=value_bits)
    c = best_window(rows, scalar_bits)
    multiexp = -(-scalar_bits // c) * (rows + (2 << c)) + scalar_bits
    products = outputs * lay.groups
    return rows * lay.groups * ENCRYPT_COST + products * (multiexp + OUTPUT_COST)


class Layout:
    """The public shape of one cross product, computed the same way by both parties."""

    def __init__(self, mode: str, rows: int, cols: int, scalar_bits: int, n_bits: int,
                 stat_bits: int = DEFAULT_STAT_BITS, value_bits: int = RING_BITS):
        if mode not in ("matrix", "elementwise"):
            raise MpcProtocolError(f"unknown cross-product mode {mode!r}")
        if rows < 1 or cols < 1 or not 1 <= scalar_bits <= RING_BITS or not 1 <= value_bits <= RING_BITS:
            raise MpcProtocolError(f"a {rows}x{cols} cross product of {value_bits}-bit values and {scalar_bits}-bit "
                                   "scalars is not valid")
        if mode == "elementwise" and cols != 1:
            raise MpcProtocolError("an elementwise cross product has one column")
        self.mode, self.rows, self.cols, self.scalar_bits, self.value_bits = mode, rows, cols, scalar_bits, value_bits
        terms = rows if mode == "matrix" else 1
        self.slot_bits = slot_bits(terms, scalar_bits, stat_bits, value_bits)
        self.slots = slots_per_ciphertext(n_bits, self.slot_bits)
        if self.slots < 1:
            raise MpcProtocolError(f"a {self.slot_bits}-bit slot does not fit a {n_bits}-bit key")
        self.groups = -(-cols // self.slots)        # matrix: ciphertexts per row of X

    def offer_fields(self) -> dict:
        """What the key holder's packed vector must look like."""
        if self.mode == "matrix":
            return dict(length=self.rows * self.groups * self.slots, slots=self.slots, slot_bits=self.slot_bits)
        return dict(length=self.rows, slots=1, slot_bits=self.slot_bits * self.slots)

    def reply_fields(self, outputs: int) -> dict:
        length = outputs * self.groups * self.slots if self.mode == "matrix" else self.rows
        return dict(length=length, slots=self.slots, slot_bits=self.slot_bits)


def _check_fields(cipher: PackedEncryptedVector, expected: dict, what: str) -> None:
    got = dict(length=cipher.length, slots=cipher.slots, slot_bits=cipher.slot_bits)
    if got != expected or cipher.offset != 0 or cipher.exponent != 0:
        raise MpcProtocolError(f"{what} has layout {got} (offset {cipher.offset}), expected {expected}")


class CrossKeyHolder:
    """The party with X and the private key: :meth:`offer`, then :meth:`finish` with the reply."""

    def __init__(self, private_key: PrivateKey, x: np.ndarray, *, tag: str, scalar_bits: int = RING_BITS,
                 scalar_offset: int = 0, value_bits: int = RING_BITS, value_offset: int = 0, mode: str = "matrix",
                 workers: int | None = None):
        x = as_ring(x)
        if mode == "matrix" and x.ndim != 2 or mode == "elementwise" and x.ndim != 1:
            raise MpcProtocolError(f"a {mode} cross product takes a {'2' if mode == 'matrix' else '1'}-D X")
        if value_bits < RING_BITS and x.size and int(x.max()) >> value_bits:
            raise MpcProtocolError(f"a value has more than the declared {value_bits} bits")
        self.private_key, self.x, self.tag, self.workers = private_key, x, tag, workers
        rows, cols = (x.shape if mode == "matrix" else (x.shape[0], 1))
        self.layout = Layout(mode, rows, cols, scalar_bits, private_key.public_key.n_bits, value_bits=value_bits)
        self.scalar_offset, self.value_offset = int(scalar_offset), int(value_offset)
        self.outputs: int | None = None

    def offer(self) -> CrossOffer:
        lay, pk = self.layout, self.private_key.public_key
        s = lay.slot_bits
        if lay.mode == "matrix":
            padded = np.zeros((lay.rows, lay.groups * lay.slots), dtype=np.uint64)
            padded[:, :lay.cols] = self.x
            plains = pack_ints(to_python_ints(padded), s, lay.slots)
        else:
            plains = [mpz(v) << (s * (j % lay.slots)) for j, v in enumerate(to_python_ints(self.x))]
        from protocols.paillier import kernels as pk_kernels
        cts = map_chunks(pk_kernels.encrypt_chunk, self.private_key, plains, workers=self.workers)
        fields = lay.offer_fields()
        cipher = PackedEncryptedVector(pk, cts, exponent=0, offset=0, max_slot=(1 << fields["slot_bits"]) - 1,
                                       obfuscated=True, **fields)
        return CrossOffer(tag=self.tag, mode=lay.mode, rows=lay.rows, cols=lay.cols, value_bits=lay.value_bits,
                          scalar_bits=lay.scalar_bits, cipher=cipher)

    def finish(self, reply: CrossReply, outputs: int | None = None) -> np.ndarray:
        """This party's share of ``Y·X`` (``outputs × q``; elementwise: ``(rows,)``)."""
        lay = self.layout
        if reply.tag != self.tag:
            raise MpcProtocolError(f"expected the reply to {self.tag!r}, received one to {reply.tag!r}")
        if lay.mode == "matrix":
            if outputs is None:                       # not declared: a whole number of rows
                outputs = reply.cipher.length // max(lay.groups * lay.slots, 1)
            if outputs < 1:
                raise MpcProtocolError("the cross-product reply holds no rows")
            _check_fields(reply.cipher, lay.reply_fields(outputs), "the cross-product reply")
        else:
            _check_fields(reply.cipher, lay.reply_fields(0), "the cross-product reply")
        if reply.cipher.public_key != self.private_key.public_key:
            raise MpcProtocolError("the cross-product reply is under another key")
        try:
            slots = reply.cipher.decrypt_ints(self.private_key, workers=self.workers)
        except (OverflowError, ValueError) as exc:
            raise MpcProtocolError(f"the cross-product reply does not decrypt to its layout: {exc}") from None
        if lay.mode == "matrix":
            share = from_python_ints(slots, (outputs, lay.groups * lay.slots))[:, :lay.cols]
            correction = self.x.sum(axis=0, dtype=np.uint64)
        else:
            share = from_python_ints(slots)
            correction = self.x
        if self.scalar_offset:
            share = share - np.uint64(self.scalar_offset & _RING_MAX) * correction
        if self.scalar_offset and self.value_offset:
            terms = lay.rows if lay.mode == "matrix" else 1
            share = share + np.uint64(terms * self.scalar_offset * self.value_offset & _RING_MAX)
        return np.ascontiguousarray(share)


class CrossMultiplier:
    """The party with Y: :meth:`reply` to an offer; its share is then :attr:`share`."""

    def __init__(self, y: np.ndarray, *, tag: str, scalar_bits: int = RING_BITS, value_bits: int = RING_BITS,
                 value_offset: int = 0, mode: str = "matrix", min_key_bits: int = MIN_KEY_BITS,
                 expect_cols: int | None = None, workers: int | None = None):
        y = np.asarray(y)
        if y.dtype not in (np.uint64, np.int64) or mode == "matrix" and y.ndim != 2 or \
                mode == "elementwise" and y.ndim != 1:
            raise MpcProtocolError(f"a {mode} cross product takes integer scalars of the right shape, got "
                                   f"{y.dtype} {y.shape}")
        if y.dtype == np.int64 and y.size and int(y.min()) < 0:
            raise MpcProtocolError("scalars must be non-negative (shift signed ones, see scalar_offset)")
        y = y.astype(np.uint64, copy=False)
        if scalar_bits < RING_BITS and y.size and int(y.max()) >> scalar_bits:
            raise MpcProtocolError(f"a scalar has more than the declared {scalar_bits} bits")
        self.y, self.tag, self.scalar_bits, self.mode = y, tag, scalar_bits, mode
        self.value_bits, self.value_offset = value_bits, int(value_offset)
        self.expect_cols = expect_cols              # the key holder's column count, if public
        self.min_key_bits, self.workers = min_key_bits, workers
        self.share: np.ndarray | None = None

    def _check(self, offer: CrossOffer) -> Layout:
        if offer.tag != self.tag:
            raise MpcProtocolError(f"expected an offer for {self.tag!r}, received one for {offer.tag!r}")
        key = offer.cipher.public_key
        if key.n_bits < self.min_key_bits:
            raise MpcProtocolError(f"the key holder's {key.n_bits}-bit key is below the "
                                   f"{self.min_key_bits}-bit minimum")
        if (offer.mode, offer.scalar_bits, offer.value_bits) != (self.mode, self.scalar_bits, self.value_bits):
            raise MpcProtocolError(f"the offer is {offer.mode} of {offer.value_bits}-bit values with "
                                   f"{offer.scalar_bits}-bit scalars; this party multiplies {self.mode} of "
                                   f"{self.value_bits}-bit values with {self.scalar_bits}-bit scalars")
        inner = self.y.shape[1] if self.mode == "matrix" else self.y.shape[0]
        if offer.rows != inner:
            raise MpcProtocolError(f"the offer has {offer.rows} rows; this party's operand needs {inner}")
        if self.expect_cols is not None and offer.cols != self.expect_cols:
            raise MpcProtocolError(f"the offer has {offer.cols} columns; the key holder's operand has "
                                   f"{self.expect_cols}")
        lay = Layout(offer.mode, offer.rows, offer.cols, offer.scalar_bits, key.n_bits, value_bits=offer.value_bits)
        _check_fields(offer.cipher, lay.offer_fields(), "the cross-product offer")
        return lay

    def reply(self, offer: CrossOffer) -> CrossReply:
        lay = self._check(offer)
        key: PublicKey = offer.cipher.public_key
        cts, b = offer.cipher.ciphertexts, self.scalar_bits
        if lay.mode == "matrix":
            m, g = self.y.shape[0], lay.groups
            cols = self.y.T.tolist()                                   # column r of Y: scalars Y[:, r]
            items = [(tuple(cts[r * g:(r + 1) * g]), tuple(cols[r])) for r in range(lay.rows)]
            # one chunk of the shared dimension per worker: fewer, longer multi-exponentiations
            per = max(len(items) // parallelism(self.workers), 1) if len(items) >= 256 else len(items)
            partials = map_chunks(kernels.matrix_rows_chunk, key, items, extra=(m, g, b),
                                  workers=self.workers, min_chunk=per)
            n2 = key.nsquare
            products = list(partials[:m * g])
            for start in range(m * g, len(partials), m * g):
                products = [a * c % n2 for a, c in zip(products, partials[start:start + m * g])]
            outputs = m * g * lay.slots
        else:
            ys = to_python_ints(self.y)
            items = [(cts[i:i + lay.slots], ys[i:i + lay.slots]) for i in range(0, lay.rows, lay.slots)]
            products = map_chunks(kernels.slot_groups_chunk, key, items, extra=(b,), workers=self.workers,
                                  min_chunk=8)
            outputs = len(products) * lay.slots
        used = outputs if lay.mode == "matrix" else lay.rows      # the slots past the last row carry nothing
        masks = [secrets.randbits(lay.slot_bits - 1) if i < used else 0 for i in range(outputs)]
        packed = pack_ints(masks, lay.slot_bits, lay.slots)
        cts_out = map_chunks(kernels.mask_chunk, key, list(zip(products, packed)), workers=self.workers, min_chunk=4)
        share = -from_python_ints(masks)
        if lay.mode == "matrix":
            share = np.ascontiguousarray(share.reshape(self.y.shape[0], lay.groups * lay.slots)[:, :lay.cols])
            correction = self.y.sum(axis=1, dtype=np.uint64)[:, None]
        else:
            share, correction = share[:lay.rows], self.y
        if self.value_offset:
            share = share - np.uint64(self.value_offset & _RING_MAX) * correction
        self.share = share
        fields = lay.reply_fields(self.y.shape[0] if lay.mode == "matrix" else 0)
        cipher = PackedEncryptedVector(key, cts_out, exponent=0, offset=0, max_slot=(1 << lay.slot_bits) - 1,
                                       obfuscated=True, **fields)
        return CrossReply(tag=self.tag, cipher=cipher)
