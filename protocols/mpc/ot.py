"""Oblivious transfer, and products of two parties' ring elements from it (semi-honest, sans-IO).

Two parties want additive shares of ``x·y`` (mod 2^64), ``x`` held by one, ``y`` by the other,
without either learning the other's value: an oblivious linear evaluation (OLE). Two OLEs give a
Beaver triple's cross terms, with no dealer and no homomorphic encryption per element
(:func:`elementwise_triples`). Built from three standard pieces:

1. **Base OT** (Chou and Orlandi 2015, "the simplest OT"), κ = 128 of them, once per ordered pair
   of parties, on edwards25519 through libsodium (PyNaCl). The OLE receiver R offers
   ``A = a·G``; the OLE sender S, for each of its secret bits ``s_i``, answers ``B_i = b_i·G``
   (s_i = 0) or ``A + b_i·G`` (s_i = 1). R's keys are ``k_i^0 = H(a·B_i)``, ``k_i^1 = H(a·(B_i − A))``;
   S's is ``k_i^{s_i} = H(b_i·A)``; ``b_i·G`` hides ``s_i`` perfectly, CDH hides the other key.
2. **OT extension** (Ishai, Kilian, Nissim and Petrank 2003), roles reversed: for m new OTs with
   choice bits r, R sends ``U_i = G(k_i^0) ⊕ G(k_i^1) ⊕ r`` (κ rows of m bits, G = AES-128-CTR on
   the key, each call further down its stream); S computes ``Q_i = G(k_i^{s_i}) ⊕ s_i·U_i``. Row j
   of the transposes satisfies ``q_j = t_j ⊕ r_j·s``: S can hash ``q_j`` and ``q_j ⊕ s``, R only
   ``t_j``, the one its choice gives. The hash is the tweakable correlation-robust
   ``H(j, x) = π(π(x) ⊕ j) ⊕ π(x)`` with π fixed-key AES (Guo, Katz, Wang and Yu 2020), ``j`` the
   OT's index in the pair's session (never repeated).
3. **Gilboa's product** from correlated OT: for bit k of y, OT number j = 64·e + k carries the
   correlation ``x·2^k``: S keeps ``h0_j = H(j, q_j)`` and sends ``c_j = h0_j + x·2^k − H(j, q_j ⊕ s)``;
   R computes ``H(j, t_j) + r_j·c_j = h0_j + r_j·x·2^k``. S's share is ``−Σ_k h0_j``, R's
   ``Σ_k (H(j, t_j) + r_j·c_j)``: together ``x·Σ_k r_k·2^k = x·y``.

What each party sees: S sees the base points (uniform, independent of r) and U (a one-time pad
of r under G(k_i^{1−s_i}), which S cannot compute); R sees ``c_j``, a one-time pad of ``x·2^k`` under
``H(j, q_j ⊕ s)`` where r_j = 0, and under ``h0_j`` where r_j = 1 — each the hash of a value R does
not know. Semi-honest security with κ = 128; docs/mpc.md has the steps and the cost.
"""
from __future__ import annotations

import hashlib
import secrets

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from nacl import bindings as sodium
from nacl.exceptions import RuntimeError as SodiumError

from protocols.mpc.errors import MpcProtocolError
from protocols.mpc.ring import random_ring

KAPPA = 128                                   # base OTs, and the bits of s
POINT = 32                                    # an edwards25519 point, compressed
_BITS = np.arange(64, dtype=np.uint64)
# π of the hash: AES-128 under a fixed, public key (the random-permutation model needs no secret)
_FIXED_KEY = hashlib.sha256(b"vfl-engine: fixed key of the OT extension's hash").digest()[:16]


class OtError(MpcProtocolError):
    """A peer's OT message is malformed (bad point, wrong size): the OT cannot go on."""


def _aes_ecb(blocks: np.ndarray) -> np.ndarray:
    """π applied to every 128-bit row of ``blocks`` (m×2 uint64)."""
    enc = Cipher(algorithms.AES(_FIXED_KEY), modes.ECB()).encryptor()
    out = enc.update(memoryview(np.ascontiguousarray(blocks)).cast("B"))
    return np.frombuffer(out, dtype=np.uint64).reshape(-1, 2)


def tccr_hash(blocks: np.ndarray, first_tweak: int, words: int = 1, salt: int = 0) -> np.ndarray:
    """``words`` ring elements per row x_j of ``blocks`` (m×2 uint64): the 64-bit halves of
    ``H(t, x_j) = π(π(x_j) ⊕ t) ⊕ π(x_j)`` for the ⌈words/2⌉ tweaks t = (first_tweak + j·⌈words/2⌉ + w,
    ``salt``): the low word counts within one direction of a pair's session (every value once),
    the high word names the session and direction (a hash of its base-OT transcript)."""
    per = -(-words // 2)
    p = _aes_ecb(blocks)
    rows = np.repeat(p, per, axis=0) if per > 1 else p.copy()
    tweaks = np.arange(first_tweak, first_tweak + len(rows), dtype=np.uint64)
    rows[:, 0] ^= tweaks
    rows[:, 1] ^= np.uint64(salt)
    out = _aes_ecb(rows).copy()
    rows[:, 0] ^= tweaks                              # π(x_j) again
    rows[:, 1] ^= np.uint64(salt)
    out ^= rows
    return np.ascontiguousarray(out.reshape(len(p), 2 * per)[:, :words])


def _prg(key: bytes, first_block: int, nbytes: int) -> np.ndarray:
    """``nbytes`` of AES-128-CTR under ``key`` from 16-byte block ``first_block`` of its stream."""
    enc = Cipher(algorithms.AES(key), modes.CTR(int(first_block).to_bytes(16, "big"))).encryptor()
    return np.frombuffer(enc.update(bytes(nbytes)), dtype=np.uint8)


_REVERSED = np.array([int(f"{i:08b}"[::-1], 2) for i in range(256)], dtype=np.uint8)


def _transpose(rows: np.ndarray, m: int) -> np.ndarray:
    """κ rows of m bits (κ × bytes, each byte's bits most significant first) → m rows of κ bits,
    as m×2 uint64: the bit matrix cut into 8×8 blocks, each block (eight bytes, one uint64)
    transposed by three masked swaps (Hacker's Delight, §7-3), the blocks put in their new places."""
    k, nbytes = rows.shape
    x = np.ascontiguousarray(rows.reshape(k // 8, 8, nbytes).transpose(2, 0, 1)).view(np.uint64)[..., 0]
    for shift, mask in ((7, 0x00AA00AA00AA00AA), (14, 0x0000CCCC0000CCCC), (28, 0x00000000F0F0F0F0)):
        t = (x ^ (x >> np.uint64(shift))) & np.uint64(mask)
        x = x ^ t ^ (t << np.uint64(shift))
    blocks = _REVERSED[x.view(np.uint8).reshape(nbytes, k // 8, 8)[..., ::-1]]      # numpy's bit order again
    out = np.ascontiguousarray(blocks.transpose(0, 2, 1)).reshape(8 * nbytes, k // 8)[:m]
    return out.view(np.uint64).reshape(m, 2)


def _key(transcript: bytes, index: int, point: bytes) -> bytes:
    return hashlib.blake2b(transcript + index.to_bytes(4, "big") + point, digest_size=16,
                           person=b"vfl-base-ot").digest()


def _salt(transcript: bytes) -> int:
    """The session's tweak word: both sides of one direction of a pair derive it from its base OTs."""
    return int.from_bytes(hashlib.blake2b(transcript, digest_size=8, person=b"vfl-ot-tweak").digest(), "little")


def _scalar() -> bytes:
    return sodium.crypto_core_ed25519_scalar_reduce(secrets.token_bytes(64))


def _point(raw: bytes, who: str) -> bytes:
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != POINT or \
            not sodium.crypto_core_ed25519_is_valid_point(bytes(raw)):
        raise OtError(f"{who} sent a base-OT point that is not a valid edwards25519 point")
    return bytes(raw)


def _times(scalar: bytes, point: bytes, who: str) -> bytes:
    try:
        return sodium.crypto_scalarmult_ed25519_noclamp(scalar, point)
    except SodiumError:
        raise OtError(f"{who} sent a base-OT point of small order") from None


class _Side:
    """What both sides share: a session that any failure breaks for good. After an error the two
    sides' stream positions may differ (one took its step, the other refused), and a product
    made then would be wrong without anyone noticing; so every later call is refused."""

    _broken: str | None = None

    def _usable(self) -> None:
        if self._broken is not None:
            raise OtError(f"this OT session with {self.peer} broke earlier ({self._broken}): start a new one")

    def _guarded(self, step, *args):
        self._usable()
        try:
            return step(*args)
        except Exception as exc:
            self._broken = f"{type(exc).__name__}: {exc}"
            raise


class _Stream:
    """How far a pair's OT session has gone: PRG blocks used and OT indices spent (both sides
    count the same, so nothing is ever reused)."""

    def __init__(self):
        self.blocks = 0
        self.tweaks = 0
        self.ots = 0

    @staticmethod
    def bytes_for(m: int) -> int:
        return -(-m // 128) * 16                   # whole AES blocks of m bits

    def take(self, m: int, words: int) -> tuple[int, int, int]:
        """(first PRG block, first hash tweak, bytes of U) for m OTs of ``words`` words each."""
        nbytes = self.bytes_for(m)
        first = (self.blocks, self.tweaks)
        self.blocks += nbytes // 16
        self.tweaks += m * -(-words // 2)
        self.ots += m
        return first[0], first[1], nbytes


class OleReceiver(_Side):
    """The party holding ``y`` (OT-extension receiver, base-OT sender)."""

    def __init__(self, peer: str = "the peer"):
        self.peer = peer
        self._a = _scalar()
        self._offer = sodium.crypto_scalarmult_ed25519_base_noclamp(self._a)
        self._keys: list[tuple[bytes, bytes]] | None = None
        self._stream = _Stream()
        self._pending = None

    def offer(self) -> bytes:
        """Step 1: ``A = a·G``, sent to the sender."""
        return self._offer

    def accept(self, reply: bytes) -> None:
        """Step 3: the sender's κ points; this party's two keys per base OT."""
        self._guarded(self._accept, reply)

    def _accept(self, reply: bytes) -> None:
        if not isinstance(reply, (bytes, bytearray)) or len(reply) != KAPPA * POINT:
            raise OtError(f"{self.peer} sent {len(reply) if isinstance(reply, (bytes, bytearray)) else '?'} bytes "
                          f"of base-OT points, not {KAPPA * POINT}")
        transcript = self._offer + bytes(reply)
        keys = []
        for i in range(KAPPA):
            b = _point(reply[i * POINT:(i + 1) * POINT], self.peer)
            k0 = _key(transcript, i, _times(self._a, b, self.peer))
            k1 = _key(transcript, i, _times(self._a, sodium.crypto_core_ed25519_sub(b, self._offer), self.peer))
            keys.append((k0, k1))
        self._keys, self._salt = keys, _salt(transcript)

    def start(self, y: np.ndarray, words: int = 1, *, vectors: bool = False) -> np.ndarray:
        """Step 4: choose the bits of ``y`` (uint64, n values), each to be multiplied by a vector of
        ``words`` ring elements of the sender's (``vectors``; else one: an elementwise product);
        returns U (κ × bytes, uint8) for the sender."""
        return self._guarded(self._start, y, words, vectors)

    def _start(self, y: np.ndarray, words: int, vectors: bool) -> np.ndarray:
        y = np.ascontiguousarray(y, dtype=np.uint64).ravel()
        if not len(y) or words < 1:
            raise ValueError(f"an OT round needs values and words, got {len(y)} values of {words} words")
        choices = ((y[:, None] >> _BITS) & np.uint64(1)).astype(np.uint8).ravel()
        u_rows, first_tweak, t = self._extend(choices, words)
        self._pending = (len(y), words, vectors, first_tweak, choices.astype(np.uint64), t)
        return u_rows

    def _extend(self, choices: np.ndarray, words: int) -> tuple[np.ndarray, int, np.ndarray]:
        """The IKNP step for choice bits ``choices`` (m of them, 0/1): (U, the first tweak, t)."""
        if self._keys is None:
            raise OtError("the base OTs are not done")
        m = len(choices)
        block, first_tweak, nbytes = self._stream.take(m, words)
        packed = np.zeros(nbytes, np.uint8)
        packed[:-(-m // 8)] = np.packbits(choices)
        t_rows = np.empty((KAPPA, nbytes), np.uint8)
        u_rows = np.empty((KAPPA, nbytes), np.uint8)
        for i, (k0, k1) in enumerate(self._keys):
            t_rows[i] = _prg(k0, block, nbytes)
            u_rows[i] = t_rows[i] ^ _prg(k1, block, nbytes) ^ packed
        return u_rows, first_tweak, _transpose(t_rows, m)

    def start_bits(self, bits: np.ndarray) -> np.ndarray:
        """Step 4 of ANDs of bits: this party's bits ``y`` (0/1, one OT each); returns U."""
        return self._guarded(self._start_bits, bits)

    def _start_bits(self, bits: np.ndarray) -> np.ndarray:
        bits = np.ascontiguousarray(bits, dtype=np.uint8).ravel()
        if not len(bits) or bits.max() > 1:
            raise ValueError("ANDs need a non-empty array of bits (0 or 1)")
        u_rows, first_tweak, t = self._extend(bits, 1)
        self._pending_bits = (bits, first_tweak, t)
        return u_rows

    def finish_bits(self, corrections: np.ndarray) -> np.ndarray:
        """Step 6 of ANDs of bits: this party's XOR shares of each ``x_j ∧ y_j`` (0/1, uint8)."""
        return self._guarded(self._finish_bits, corrections)

    def _finish_bits(self, corrections: np.ndarray) -> np.ndarray:
        if getattr(self, "_pending_bits", None) is None:
            raise OtError("no ANDs started")
        bits, first_tweak, t = self._pending_bits
        self._pending_bits = None
        corrections = np.asarray(corrections)
        if corrections.dtype != np.uint8 or corrections.shape != (-(-len(bits) // 8),):
            raise OtError(f"{self.peer} sent AND corrections of {corrections.dtype} {corrections.shape}, not uint8 "
                          f"({-(-len(bits) // 8)},)")
        c = np.unpackbits(corrections, count=len(bits))
        h = (tccr_hash(t, first_tweak, 1, self._salt)[:, 0] & np.uint64(1)).astype(np.uint8)
        return h ^ (bits & c)

    def finish(self, corrections: np.ndarray) -> np.ndarray:
        """Step 6: the sender's corrections; this party's shares of each ``y_e·x_e``: n values, or
        n × words for vectors."""
        return self._guarded(self._finish, corrections)

    def _finish(self, corrections: np.ndarray) -> np.ndarray:
        if self._pending is None:
            raise OtError("no product started")
        n, words, vectors, first_tweak, choices, t = self._pending
        self._pending = None
        corrections = np.asarray(corrections)
        want = (64 * n, words) if vectors else (64 * n,)
        if corrections.dtype != np.uint64 or corrections.shape != want:
            raise OtError(f"{self.peer} sent corrections of {corrections.dtype} {corrections.shape}, not uint64 "
                          f"{want}")
        v = tccr_hash(t, first_tweak, words, self._salt) + choices[:, None] * corrections.reshape(64 * n, words)
        out = v.reshape(n, 64, words).sum(axis=1, dtype=np.uint64)
        return out if vectors else out[:, 0]

    def start_matrix(self, y: np.ndarray, rows: int) -> np.ndarray:
        """Step 4 of a product ``X @ Y``: ``Y`` (k × c) here, ``X`` (``rows`` × k) at the sender."""
        y = np.asarray(y, dtype=np.uint64)
        if y.ndim != 2:
            raise ValueError(f"Y must be a matrix, got shape {y.shape}")
        self._matrix = y.shape
        return self.start(y, words=rows, vectors=True)

    def finish_matrix(self, corrections: np.ndarray) -> np.ndarray:
        """Step 6 of ``X @ Y``: this party's share (rows × c)."""
        k, c = self._matrix
        per_entry = self.finish(corrections)              # (k·c) × rows: shares of Y[i, j]·X[:, i]
        return per_entry.reshape(k, c, -1).sum(axis=0, dtype=np.uint64).T.copy()


class OleSender(_Side):
    """The party holding ``x`` (OT-extension sender, base-OT receiver of its secret bits s)."""

    def __init__(self, peer: str = "the peer"):
        self.peer = peer
        self._s = np.frombuffer(secrets.token_bytes(KAPPA // 8), dtype=np.uint8)
        self._s_bits = np.unpackbits(self._s)
        self._s_block = self._s.view(np.uint64).copy()
        self._keys: list[bytes] | None = None
        self._stream = _Stream()

    def reply(self, offer: bytes) -> bytes:
        """Step 2: the receiver's ``A``; κ points, one per bit of s."""
        return self._guarded(self._reply, offer)

    def _reply(self, offer: bytes) -> bytes:
        a = _point(offer, self.peer)
        points, scalars = [], []
        for bit in self._s_bits:
            b = _scalar()
            g = sodium.crypto_scalarmult_ed25519_base_noclamp(b)
            points.append((g, sodium.crypto_core_ed25519_add(a, g))[bit])     # both made, whichever the bit
            scalars.append(b)
        reply = b"".join(points)
        transcript = a + reply
        self._keys = [_key(transcript, i, _times(b, a, self.peer)) for i, b in enumerate(scalars)]
        self._salt = _salt(transcript)
        return reply

    def multiply(self, x: np.ndarray, u_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step 5: ``x`` (uint64, n values) and the receiver's U; returns (this party's shares of
        x·y, the corrections for the receiver)."""
        x = np.ascontiguousarray(x, dtype=np.uint64).ravel()
        share, corrections = self._guarded(self._products, x[:, None], u_rows)
        return share[:, 0], corrections[:, 0].copy()

    def multiply_matrix(self, x: np.ndarray, u_rows: np.ndarray, cols: int) -> tuple[np.ndarray, np.ndarray]:
        """Step 5 of ``X @ Y``: ``X`` (r × k) here, the receiver's ``Y`` (k × ``cols``) chose U;
        returns (this party's share, r × cols; the corrections)."""
        x = np.asarray(x, dtype=np.uint64)
        if x.ndim != 2:
            raise ValueError(f"X must be a matrix, got shape {x.shape}")
        vectors = np.repeat(np.ascontiguousarray(x.T), cols, axis=0)        # entry (i, j) of Y meets X[:, i]
        share, corrections = self._guarded(self._products, vectors, u_rows)
        return share.reshape(x.shape[1], cols, -1).sum(axis=0, dtype=np.uint64).T.copy(), corrections

    def and_bits(self, x: np.ndarray, u_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step 5 of ANDs of bits: this party's bits ``x`` (0/1) and the receiver's U; returns (this
        party's XOR shares of each ``x_j ∧ y_j``, the packed corrections). One OT per AND: the
        sender keeps ``h0 = H(j, q_j)`` and sends ``h0 ⊕ x_j ⊕ H(j, q_j ⊕ s)`` (low bits)."""
        return self._guarded(self._and_bits, x, u_rows)

    def _and_bits(self, x: np.ndarray, u_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.uint8).ravel()
        if not len(x) or x.max() > 1:
            raise ValueError("ANDs need a non-empty array of bits (0 or 1)")
        q = self._extended(len(x), 1, u_rows)
        one = np.uint64(1)
        h0 = (tccr_hash(q, self._tweak, 1, self._salt)[:, 0] & one).astype(np.uint8)
        h1 = (tccr_hash(q ^ self._s_block, self._tweak, 1, self._salt)[:, 0] & one).astype(np.uint8)
        return h0, np.packbits(h0 ^ x ^ h1)

    def _extended(self, m: int, words: int, u_rows: np.ndarray) -> np.ndarray:
        """The IKNP step for m OTs: the rows q_j (m×2 uint64); the round's first tweak in ``_tweak``."""
        if self._keys is None:
            raise OtError("the base OTs are not done")
        u_rows = np.asarray(u_rows)
        if u_rows.dtype != np.uint8 or u_rows.shape != (KAPPA, _Stream.bytes_for(m)):
            raise OtError(f"{self.peer} sent an OT-extension matrix of {u_rows.dtype} {u_rows.shape}, not uint8 "
                          f"({KAPPA}, {_Stream.bytes_for(m)})")
        block, self._tweak, nbytes = self._stream.take(m, words)
        q_rows = np.empty((KAPPA, nbytes), np.uint8)
        for i, (bit, key) in enumerate(zip(self._s_bits, self._keys)):
            q_rows[i] = _prg(key, block, nbytes) ^ (u_rows[i] & np.uint8(0xFF * int(bit)))     # no branch on s
        return _transpose(q_rows, m)

    def _products(self, vectors: np.ndarray, u_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each entry e of the receiver's values, shares of ``y_e·vectors[e]`` (n × words):
        64 correlated OTs an entry, the one for bit k correlated by ``vectors[e]·2^k``."""
        n, words = vectors.shape
        if not n or not words:
            raise ValueError(f"an OT round needs values and words, got {n} values of {words} words")
        m = 64 * n
        q = self._extended(m, words, u_rows)
        h0 = tccr_hash(q, self._tweak, words, self._salt)
        corrections = h0 - tccr_hash(q ^ self._s_block, self._tweak, words, self._salt)
        corrections += (vectors[:, None, :] << _BITS[None, :, None]).reshape(m, words)
        return np.uint64(0) - h0.reshape(n, 64, words).sum(axis=1, dtype=np.uint64), corrections


def elementwise_triples(n: int, chunk: int = 4096) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """``n`` elementwise Beaver triples for two parties, both run here (tests and the benchmark):
    each party's (a, b, c), with c_0 + c_1 = (a_0 + a_1)·(b_0 + b_1). The two cross terms are one
    OLE each way; in a real run each party holds one side of each (:class:`OleSender`,
    :class:`OleReceiver`) and the arrays travel between them."""
    a0, b0, a1, b1 = (random_ring(n) for _ in range(4))
    s01, r01 = OleSender("p1"), OleReceiver("p0")          # a0·b1: p0 sends, p1 receives
    s10, r10 = OleSender("p0"), OleReceiver("p1")          # a1·b0: p1 sends, p0 receives
    r01.accept(s01.reply(r01.offer()))
    r10.accept(s10.reply(r10.offer()))
    c0, c1 = a0 * b0, a1 * b1
    for lo in range(0, n, chunk):
        part = slice(lo, min(n, lo + chunk))
        share0, corr = s01.multiply(a0[part], r01.start(b1[part]))
        share1 = r01.finish(corr)
        c0[part] += share0
        c1[part] += share1
        share1, corr = s10.multiply(a1[part], r10.start(b0[part]))
        share0 = r10.finish(corr)
        c0[part] += share0
        c1[part] += share1
    return (a0, b0, c0), (a1, b1, c1)
