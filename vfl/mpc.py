"""A secret-sharing session over a :class:`vfl.transport.Transport`: the messages between the
local steps of :mod:`protocols.mpc`.

Parties are numbered by their position in ``parties``; party 0 is the hub. In a job the hub is
the active party, the only one linked to every other (passives never connect to each other), so
a message between two passives travels through it: :meth:`MpcSession.transfer` is that one
place. What the hub sees of a relayed message: Paillier ciphertexts under another party's key,
shares masked with a key the two parties agreed (X25519 through the hub, then a SHAKE-256
stream per message), or OT messages it holds no key to (base-OT points, U, corrections): never
a share in the clear. The threat model is semi-honest: a hub that
swapped the two parties' X25519 keys could read relayed shares (it cannot read ciphertexts).

Every party calls the same methods in the same order with the same public arguments (shapes,
tags, who holds what); a method returns this party's result, or None where it gets none.
"""
from __future__ import annotations

import dataclasses
import hashlib
import secrets

import numpy as np
from nacl.bindings import crypto_scalarmult
from nacl.public import PrivateKey as X25519Key

from protocols.mpc import approx, online
from protocols.mpc.crossprod import MIN_KEY_BITS, CrossKeyHolder, CrossMultiplier, matrix_cost
from protocols.mpc.errors import MpcProtocolError, TripleBudgetError
from protocols.mpc.messages import (
    PROTOCOL_VERSION,
    CrossOffer,
    CrossReply,
    MpcKey,
    Opening,
    OtBase,
    OtCorrect,
    OtExtend,
    PairKey,
    Shares,
)
from protocols.mpc.ot import OleReceiver, OleSender, OtError
from protocols.mpc.ring import DEFAULT_FRAC_BITS, RING_BITS, as_ring, encode, random_ring, ring_matmul
from protocols.mpc.triples import Triple, TripleShape, TripleStore, start_triple
from protocols.paillier import PackedEncryptedVector, generate_keypair
from vfl.errors import ProtocolError

TRIPLE_SOURCES = ("ot", "paillier")
OLE_CHUNK = 8192          # products per OT-extension round (its matrix: 128 × 64·8192 bits = 8 MiB)
OLE_WORDS = 1 << 24       # words of corrections per matrix OT-extension round (128 MiB)


def _relayable(message):
    """A relayed message goes on as received: its ciphertexts were randomized by their sender
    and are forwarded unchanged (re-randomizing them at the hub would add nothing)."""
    cipher = getattr(message, "cipher", None)
    if isinstance(cipher, PackedEncryptedVector) and not cipher.obfuscated:
        c = cipher
        fresh = PackedEncryptedVector(c.public_key, c.ciphertexts, length=c.length, exponent=c.exponent,
                                      slot_bits=c.slot_bits, slots=c.slots, offset=c.offset, max_slot=c.max_slot,
                                      obfuscated=True)
        return dataclasses.replace(message, cipher=fresh)
    return message


class MpcSession:
    """This party's end of a secret-sharing session among ``parties`` (party 0 is the hub).

    ``private_key``: this party's Paillier key for the cross products it holds the key of (the
    active's job key, say); without one, a key of ``key_bits`` is made the first time one is
    needed. ``min_key_bits``: the smallest key of another party this one accepts.
    """

    def __init__(self, transport, parties: list[str], *, private_key=None, key_bits: int = 2048,
                 min_key_bits: int = MIN_KEY_BITS, workers: int | None = None, timeout: float | None = None,
                 triples: str = "ot"):
        if triples not in TRIPLE_SOURCES:
            raise ValueError(f"triples must be one of {TRIPLE_SOURCES}, got {triples!r}")
        if len(parties) < 2 or len(set(parties)) != len(parties) or transport.party not in parties:
            raise ValueError(f"a session needs at least two distinct parties including this one, got {parties}")
        self.t, self.parties, self.me = transport, list(parties), transport.party
        self.index = self.parties.index(self.me)
        self.hub = self.parties[0]
        self._private_key, self.key_bits, self.min_key_bits = private_key, key_bits, min_key_bits
        self.workers, self.timeout = workers, timeout
        self._keys_sent: set[str] = set()
        self._x25519 = X25519Key.generate()
        self._pair_keys: dict[tuple[str, str], bytes] = {}
        self._pair_counts: dict[tuple[str, str], int] = {}
        self.triples = TripleStore()
        self.cross_products = 0           # made with this party, as key holder or multiplier
        self.triple_source = triples      # "ot" (protocols/mpc/ot.py) or "paillier" (cross products)
        self._oles: dict[tuple[str, str], object] = {}     # (sender, receiver) -> this party's OT side
        self.ot_multiplications = 0       # scalar products made over OT with this party (m, or m·k·n)
        self._bit_triples: list[np.ndarray] = [np.zeros(0, np.uint8)] * 3     # AND triples (u, v, w), XOR-shared
        self.bit_triples_made = 0
        self._masked_products: dict[tuple, list[dict]] = {}   # prepare_plain_times, by (owner, rows, inner, cols)

    def __reduce__(self):
        raise TypeError("a session holds keys and shares: it is never pickled")

    # -- links ---------------------------------------------------------------------------------
    def transfer(self, sender: str, receiver: str, message=None, kind=None):
        """Move one message from ``sender`` to ``receiver``, through the hub if neither is it.
        Every party calls this; the receiver gets the message, the others None. Shares between
        two parties that are not the hub are masked for the way through it."""
        if sender == receiver:
            raise ValueError("a party does not send to itself")
        direct = self.hub in (sender, receiver)
        masked = not direct and kind is Shares
        if masked:
            key = self._pair_key(sender, receiver)
        if self.me == sender:
            if masked:
                message = dataclasses.replace(message, values=message.values + self._mask(key, sender, receiver,
                                                                                          message))
            self.t.send(receiver if direct else self.hub, message)
        elif self.me == receiver:
            got = self.t.recv(sender if direct else self.hub, kind, timeout=self.timeout)
            if masked:
                got = dataclasses.replace(got, values=got.values - self._mask(key, sender, receiver, got))
            return got
        elif self.me == self.hub and not direct:
            self.t.send(receiver, _relayable(self.t.recv(sender, kind, timeout=self.timeout)))
        return None

    def _pair_key(self, a: str, b: str) -> bytes | None:
        """The key ``a`` and ``b`` share (X25519 through the hub); None at every other party."""
        pair = tuple(sorted((a, b)))
        if pair in self._pair_keys:
            return self._pair_keys[pair]
        mine = PairKey(self.me, bytes(self._x25519.public_key))
        theirs = {}
        for x, y in (pair, pair[::-1]):
            got = self.transfer(x, y, mine if self.me == x else None, PairKey)
            if got is not None:
                if got.owner != x or len(got.public) != 32:
                    raise ProtocolError(f"expected {x}'s 32-byte pair key, received {got.owner}'s")
                theirs = got.public
        key = None
        if self.me in pair:
            other = pair[0] if pair[1] == self.me else pair[1]
            key = derive_pair_key(bytes(self._x25519), theirs, pair, other)
        self._pair_keys[pair] = key
        return key

    def _mask(self, key: bytes, sender: str, receiver: str, message) -> np.ndarray:
        """A fresh pseudorandom pad for one message from ``sender`` to ``receiver`` (never reused:
        a counter per direction, the tag and the shape go into the stream's input)."""
        count = self._pair_counts.get((sender, receiver), 0)
        self._pair_counts[(sender, receiver)] = count + 1
        values = message.values
        if values.dtype != np.uint64:
            raise ProtocolError(f"{sender} sent {values.dtype} shares for {message.tag!r}; expected uint64")
        label = f"{sender}>{receiver}|{count}|{message.tag}|{values.shape}".encode()
        stream = hashlib.shake_256(key + label).digest(8 * values.size)
        return np.frombuffer(stream, dtype=np.uint64).reshape(values.shape)

    @property
    def private_key(self):
        if self._private_key is None:
            small = self.key_bits < 2048          # refused by every peer unless it allows test keys
            _, self._private_key = generate_keypair(self.key_bits, allow_insecure_key_size_for_tests=small)
        return self._private_key

    def _send_key(self, holder: str, to: str) -> None:
        """``holder``'s public key to ``to`` (once), so its ciphertexts decode there."""
        pair = f"{holder}>{to}"
        if pair in self._keys_sent:
            return
        self._keys_sent.add(pair)
        msg = MpcKey(PROTOCOL_VERSION, holder, self.private_key.public_key) if self.me == holder else None
        got = self.transfer(holder, to, msg, MpcKey)
        if got is not None and (got.owner != holder or got.version != PROTOCOL_VERSION):
            raise ProtocolError(f"expected {holder}'s key (version {PROTOCOL_VERSION}), received {got.owner}'s "
                                f"(version {got.version})")

    # -- cross products ------------------------------------------------------------------------
    def cross(self, holder: str, multipliers: list[str], *, tag: str, x=None, y=None, mode: str = "matrix",
              scalar_bits: int = RING_BITS, scalar_offset: int = 0, value_bits: int = RING_BITS,
              value_offset: int = 0, rows: int, cols: int, outputs: dict[str, int]) -> np.ndarray | dict | None:
        """Shares of ``y_M · x`` for every multiplier M, with ``x`` held by ``holder`` (offsets and
        bit widths as in :mod:`protocols.mpc.crossprod`; every party passes the same ones).

        ``holder`` passes ``x`` and gets ``{multiplier: its share}``; each multiplier passes its
        ``y`` and gets its share; other parties relay or do nothing and get None. The offer
        (``Enc(x)``) is made once for every multiplier. ``rows``, ``cols`` (x's shape; elementwise:
        rows values, one column) and ``outputs`` (each multiplier's rows of y) are public and
        every party passes the same: an offer or a reply of another shape is refused.
        """
        for m in multipliers:
            self._send_key(holder, m)
        key_holder = None
        if self.me == holder:
            self.t.register_public_key(self.private_key.public_key)      # replies come under it
            key_holder = CrossKeyHolder(self.private_key, x, tag=tag, scalar_bits=scalar_bits,
                                        scalar_offset=scalar_offset, value_bits=value_bits,
                                        value_offset=value_offset, mode=mode, workers=self.workers)
            if (key_holder.layout.rows, key_holder.layout.cols) != (rows, cols):
                raise ValueError(f"x of shape {np.shape(x)} is not the declared {rows}x{cols}")
            offer = key_holder.offer()
        out = {}
        for m in multipliers:
            got = self.transfer(holder, m, offer if self.me == holder else None, CrossOffer)
            reply = None
            if self.me == m:
                if mode == "matrix" and np.shape(y)[0] != outputs[m]:
                    raise ValueError(f"y has {np.shape(y)[0]} rows, not the declared {outputs[m]}")
                mult = CrossMultiplier(y, tag=tag, scalar_bits=scalar_bits, value_bits=value_bits,
                                       value_offset=value_offset, mode=mode, expect_cols=cols,
                                       min_key_bits=self.min_key_bits, workers=self.workers)
                try:
                    reply = mult.reply(got)
                except MpcProtocolError as exc:
                    raise ProtocolError(f"cross product {tag!r} from {holder}: {exc}") from None
                out = mult.share
            back = self.transfer(m, holder, reply, CrossReply)
            if self.me == holder:
                try:
                    out[m] = key_holder.finish(back, outputs[m] if mode == "matrix" else None)
                except MpcProtocolError as exc:
                    raise ProtocolError(f"cross product {tag!r} with {m}: {exc}") from None
        self.cross_products += len(multipliers)
        return out if self.me == holder or self.me in multipliers else None

    # -- products over OT ----------------------------------------------------------------------
    def _ole(self, sender: str, receiver: str):
        """This party's side of the OLE from ``sender`` to ``receiver``: its base OTs run the first
        time the pair needs them (every party calls; the hub relays for two passives)."""
        pair = (sender, receiver)
        if pair not in self._oles:
            side = OleSender(receiver) if self.me == sender else OleReceiver(sender) if self.me == receiver else None
            tag = f"ot/{sender}>{receiver}"
            offer = self.transfer(receiver, sender, OtBase(tag, side.offer()) if self.me == receiver else None,
                                  OtBase)
            try:
                reply = OtBase(tag, side.reply(_tagged(offer, tag, receiver).points)) if self.me == sender else None
                got = self.transfer(sender, receiver, reply, OtBase)
                if self.me == receiver:
                    side.accept(_tagged(got, tag, sender).points)
            except OtError as exc:
                raise ProtocolError(f"oblivious transfer {tag}: {exc}") from None
            self._oles[pair] = side
        return self._oles[pair]

    def ole(self, sender: str, receiver: str, *, tag: str, length: int, x=None, y=None,
            chunk: int = OLE_CHUNK) -> np.ndarray | None:
        """Shares of ``x·y`` (elementwise, mod 2^64), ``x`` held by ``sender``, ``y`` by
        ``receiver`` (:mod:`protocols.mpc.ot`); the two get their shares, the others None (and
        relay, if they are the hub). ``length`` is public: every party passes the same."""
        side = self._ole(sender, receiver)
        mine = x if self.me == sender else y if self.me == receiver else None
        if length < 1:
            raise ValueError(f"{tag!r}: a product of {length} values")
        if mine is not None and np.shape(mine) != (length,):
            raise ValueError(f"{tag!r}: this party's values have shape {np.shape(mine)}, not the declared ({length},)")
        out = []
        for k, lo in enumerate(range(0, length, chunk)):
            part = slice(lo, min(length, lo + chunk))
            out.append(self._ole_round(sender, receiver, f"{tag}/{k}", lambda: side.start(as_ring(y)[part]),
                                       lambda u: side.multiply(as_ring(x)[part], u), lambda c: side.finish(c)))
        if self.me not in (sender, receiver):
            return None
        self.ot_multiplications += length
        return np.concatenate(out) if out else np.zeros(0, np.uint64)

    def _ole_round(self, sender: str, receiver: str, step: str, start, multiply, finish) -> np.ndarray | None:
        """One OT-extension round: the receiver's U (``start()``), the sender's share and
        corrections (``multiply(U)``), the receiver's share (``finish(corrections)``); this
        party's share, or None outside the pair."""
        ext = self.transfer(receiver, sender, OtExtend(step, start()) if self.me == receiver else None, OtExtend)
        try:
            share = corrections = None
            if self.me == sender:
                share, corrections = multiply(_tagged(ext, step, receiver).matrix)
            back = self.transfer(sender, receiver, OtCorrect(step, corrections) if self.me == sender else None,
                                 OtCorrect)
            if self.me == receiver:
                share = finish(_tagged(back, step, sender).values)
        except OtError as exc:
            raise ProtocolError(f"oblivious transfer {step}: {exc}") from None
        return share

    def ole_matrix(self, sender: str, receiver: str, *, tag: str, rows: int, inner: int, cols: int, x=None,
                   y=None) -> np.ndarray | None:
        """Shares of ``X @ Y`` (mod 2^64), ``X`` (rows × inner) held by ``sender``, ``Y`` (inner ×
        cols) by ``receiver``: 64 OTs per entry of Y, each carrying a column of X. A round carries
        at most :data:`OLE_WORDS` words of corrections: X's rows in blocks, and within a block Y's
        rows (X's columns) in blocks whose products add up. The shape is public."""
        if min(rows, inner, cols) < 1:
            raise ValueError(f"{tag!r}: an empty product {rows}x{inner} by {inner}x{cols}")
        side = self._ole(sender, receiver)
        mine, want = (x, (rows, inner)) if self.me == sender else (y, (inner, cols))
        if self.me in (sender, receiver) and np.shape(mine) != want:
            raise ValueError(f"{tag!r}: this party's matrix has shape {np.shape(mine)}, not the declared {want}")
        row_step = rows if 64 * cols * rows <= OLE_WORDS else max(1, OLE_WORDS // (64 * cols))
        inner_step = max(1, OLE_WORDS // (64 * cols * row_step))
        out, k = [], 0
        for lo in range(0, rows, row_step):
            part, total = slice(lo, min(rows, lo + row_step)), None
            for i0 in range(0, inner, inner_step):
                block = slice(i0, min(inner, i0 + inner_step))
                share = self._ole_round(sender, receiver, f"{tag}/{k}",
                                        lambda: side.start_matrix(as_ring(y)[block], part.stop - part.start),
                                        lambda u: side.multiply_matrix(as_ring(x)[part, block], u, cols),
                                        lambda c: side.finish_matrix(c))
                total = share if total is None else total + share
                k += 1
            out.append(total)
        if self.me not in (sender, receiver):
            return None
        self.ot_multiplications += rows * inner * cols
        return np.concatenate(out, axis=0)

    def prepare_plain_times(self, owner: str, *, tag: str, rows: int, inner: int, cols: int, count: int = 1,
                            x=None) -> None:
        """Offline, for ``count`` later :meth:`plain_times_shared` calls with ``owner``'s X (``rows``
        × ``inner``, the same matrix then) and a shared V (``inner`` × ``cols``): every other
        party q draws a uniform mask M_q and the pair gets shares of ``X @ M_q`` by an OLE over OT
        (:meth:`ole_matrix`). Like triples, each is used once and never pickled."""
        if self.me == owner and np.shape(x) != (rows, inner):
            raise ValueError(f"{tag!r}: X has shape {np.shape(x)}, not the declared ({rows}, {inner})")
        waiting = self._masked_products.setdefault((owner, rows, inner, cols), [])
        entries = [{} for _ in range(count)]
        for q in self.parties:                 # the count masks side by side: one OLE, X @ [M_1 … M_count]
            if q == owner:
                continue
            masks = random_ring((inner, cols * count)) if self.me == q else None
            got = self.ole_matrix(owner, q, tag=f"{tag}/{q}", rows=rows, inner=inner, cols=cols * count,
                                  x=x if self.me == owner else None, y=masks)
            if got is not None:
                for t, entry in enumerate(entries):
                    part = slice(t * cols, (t + 1) * cols)
                    entry[q] = (None if masks is None else np.ascontiguousarray(masks[:, part]),
                                np.ascontiguousarray(got[:, part]))
        waiting.extend(entries)

    def plain_times_shared(self, owner: str, shares: np.ndarray, *, tag: str, rows: int, x=None) -> np.ndarray:
        """Shares of ``X @ V``: ``X`` (``rows`` × k) a plaintext matrix of ``owner``'s (its
        columns, say), ``V`` (k × c) secret-shared among all parties (this party's share
        ``shares``). The owner multiplies its own share locally; every other party q sends it
        ``V_q − M_q`` (uniform: M_q is a fresh mask) and adds its share of ``X @ M_q``, made
        offline (:meth:`prepare_plain_times`; made here first when none is waiting). The owner
        adds ``X @ (V_q − M_q)`` and its share of ``X @ M_q``. No one but the owner sees X and no
        one sees V; online this is one message of k × c words per other party. The step of a
        shared linear model: ``z = X_p·w`` or ``g = X_pᵀ·d`` per party."""
        shares = as_ring(shares)
        if shares.ndim != 2:
            raise ValueError(f"{tag!r}: shares of V must be a matrix, got shape {shares.shape}")
        inner, cols = shares.shape
        if self.me == owner and np.shape(x) != (rows, inner):
            raise ValueError(f"{tag!r}: X has shape {np.shape(x)}, not the declared ({rows}, {inner})")
        key = (owner, rows, inner, cols)
        if not self._masked_products.get(key):
            self.prepare_plain_times(owner, tag=f"{tag}/offline", rows=rows, inner=inner, cols=cols, x=x)
        entry = self._masked_products[key].pop(0)
        out = ring_matmul(as_ring(x), shares) if self.me == owner else np.zeros((rows, cols), np.uint64)
        for q in self.parties:
            if q == owner:
                continue
            mask, product = entry.get(q, (None, None))
            got = self.transfer(q, owner, Shares(f"{tag}/{q}", shares - mask) if self.me == q else None, Shares)
            if self.me == owner:
                _check(got, f"{tag}/{q}", (inner, cols), q)
                out = out + ring_matmul(as_ring(x), got.values) + product
            elif self.me == q:
                out = out + product
        return out

    def masked_products_waiting(self) -> int:
        return sum(len(v) for v in self._masked_products.values())

    # -- triples (offline) ---------------------------------------------------------------------
    def generate_triples(self, shape: TripleShape, count: int = 1, *, tag: str = "triples") -> None:
        """Make ``count`` triples of ``shape`` among all parties, dealer-free, into :attr:`triples`.

        With ``triples="ot"`` (the default) every cross term ``a_i·b_j`` (or ``a_i @ b_j``) is an
        OLE over OT from i to j (:meth:`ole`, :meth:`ole_matrix`). With ``triples="paillier"``
        each cross term is a cross product with j holding the key and offering
        ``Enc(b_j)`` — or, for matrix triples where it is cheaper (a tall ``a``, say
        10000×20 by 20×1), with i holding the key and offering ``Enc(a_iᵀ)`` packed along its
        long side, the shares then being of ``(a_i·b_j)ᵀ``. Every party makes the same choice
        from the public shape.
        """
        mode = "matrix" if shape.kind == "matrix" else "elementwise"
        if self.triple_source == "ot" and mode == "elementwise" and count > 1:
            # count elementwise triples are one of count × the length, cut apart: the same OTs in
            # fewer rounds
            whole = TripleShape("elementwise", shape.m * count)
            a, b, c = start_triple(whole)
            for i in self.parties:
                for j in self.parties:
                    if i != j:
                        c = c + self._ot_cross(whole, i, j, a, b, f"{tag}/{i}>{j}")
            for t in range(count):
                part = slice(t * shape.m, (t + 1) * shape.m)
                self.triples.add(Triple(shape, *(np.ascontiguousarray(v[part]) for v in (a, b, c))))
            return
        if self.triple_source == "ot":
            for t in range(count):
                a, b, c = start_triple(shape)
                for i in self.parties:
                    for j in self.parties:
                        if i != j:
                            c = c + self._ot_cross(shape, i, j, a, b, f"{tag}/{t}/{i}>{j}")
                self.triples.add(Triple(shape, a, b, c))
            return
        transposed = mode == "matrix" and self._transpose_cheaper(shape)
        for t in range(count):
            a, b, c = start_triple(shape)
            for j, holder in enumerate(self.parties):
                others = [p for p in self.parties if p != holder]
                mine, theirs = (a.T, b.T) if transposed else (b, a)
                if mode == "matrix":
                    shape_x = (shape.k, shape.m) if transposed else (shape.k, shape.n)
                    y_rows = shape.n if transposed else shape.m
                else:
                    shape_x, y_rows = (shape.m, 1), 1
                got = self.cross(holder, others, tag=f"{tag}/{t}/{j}", mode=mode, rows=shape_x[0],
                                 cols=shape_x[1], outputs={p: y_rows for p in others},
                                 x=np.ascontiguousarray(mine) if self.me == holder else None,
                                 y=np.ascontiguousarray(theirs) if self.me != holder else None)
                for share in (got.values() if isinstance(got, dict) else [got] if got is not None else []):
                    c = c + (share.T if transposed else share)
            self.triples.add(Triple(shape, a, b, c))

    def ensure_triples(self, shape: TripleShape, count: int, *, tag: str) -> None:
        """Make (:meth:`generate_triples`) only those of ``count`` triples of ``shape`` that the
        store lacks: an offline phase that made them ahead leaves nothing to do here."""
        missing = count - self.triples.available(shape)
        if missing > 0:
            self.generate_triples(shape, missing, tag=tag)

    def _ot_cross(self, shape: TripleShape, i: str, j: str, a: np.ndarray, b: np.ndarray, tag: str) -> np.ndarray:
        """This party's share of ``a_i·b_j`` (or ``a_i @ b_j``) over OT; zeros at a party outside
        the pair. A matrix product takes the orientation with fewer OTs: ``a_i @ b_j`` costs
        64·k·n OTs, ``(b_jᵀ @ a_iᵀ)ᵀ`` 64·k·m (every party decides alike, from the shape)."""
        if shape.kind == "elementwise":
            got = self.ole(i, j, tag=tag, x=a if self.me == i else None, y=b if self.me == j else None,
                           length=shape.m)
            return np.zeros(shape.c, np.uint64) if got is None else got
        if shape.m < shape.n:
            got = self.ole_matrix(j, i, tag=tag, rows=shape.n, inner=shape.k, cols=shape.m,
                                  x=b.T if self.me == j else None, y=a.T if self.me == i else None)
            return np.zeros(shape.c, np.uint64) if got is None else np.ascontiguousarray(got.T)
        got = self.ole_matrix(i, j, tag=tag, rows=shape.m, inner=shape.k, cols=shape.n,
                              x=a if self.me == i else None, y=b if self.me == j else None)
        return np.zeros(shape.c, np.uint64) if got is None else got

    @staticmethod
    def _transpose_cheaper(shape: TripleShape) -> bool:
        """From the public shape alone (costs at 2048 bits), so every party chooses alike."""
        cost = matrix_cost
        return cost(shape.k, shape.m, shape.n, MIN_KEY_BITS) < cost(shape.k, shape.n, shape.m, MIN_KEY_BITS)

    # -- online --------------------------------------------------------------------------------
    def open(self, share: np.ndarray, *, tag: str, xor: bool = False) -> np.ndarray:
        """The value of ``share`` (every party learns it): passives send their shares to the hub,
        which adds them (XORs them, with ``xor``) and sends the result back."""
        share = as_ring(share)
        if self.me == self.hub:
            total = share.copy()
            for p in self.parties[1:]:
                got = self.t.recv(p, Opening, timeout=self.timeout)
                _check(got, tag, share.shape, p)
                if xor:
                    total ^= got.values
                else:
                    total += got.values
            for p in self.parties[1:]:
                self.t.send(p, Opening(tag, total))
        else:
            self.t.send(self.hub, Opening(tag, share))
            total = self.t.recv(self.hub, Opening, timeout=self.timeout)
            _check(total, tag, share.shape, self.hub)
            total = total.values
        return total

    def multiply(self, x: np.ndarray, y: np.ndarray, *, tag: str, matrix: bool = False) -> np.ndarray:
        """Shares of ``x·y`` (``x @ y`` with ``matrix``), using one stored triple of that shape."""
        x, y = as_ring(x), as_ring(y)
        shape = (TripleShape("matrix", x.shape[0], x.shape[1], y.shape[1]) if matrix
                 else TripleShape("elementwise", x.size))
        triple = self.triples.take(shape)
        e, f = online.beaver_open(x if matrix else x.ravel(), y if matrix else y.ravel(), triple)
        opened = self.open(np.concatenate([e.ravel(), f.ravel()]), tag=tag)
        e, f = opened[:e.size].reshape(e.shape), opened[e.size:].reshape(f.shape)
        z = online.beaver_close(self.index, triple, e, f)
        return z if matrix else z.reshape(x.shape)

    def truncate(self, x: np.ndarray, frac_bits: int, *, tag: str) -> np.ndarray:
        """Shares of ``x / 2^frac_bits`` (see :func:`protocols.mpc.online.truncate_two_party`);
        with more than two parties, parties 2… first hand their shares to party 1, which then
        re-randomizes its pair with party 0. The local truncation is right (to one unit, with the
        documented failure probability) only for a uniform sharing: with two parties, never
        truncate a sharing in which one party's share is its own plaintext and the other's zero."""
        # Party 1 holds the others' shares summed: with party 0's share zero (a value shared among
        # the passives only) that sum is the value itself, and the local truncation, which needs
        # uniform shares, would be wrong; so the pair is re-randomized first (_two_party).
        x = self._two_party(as_ring(x), tag)
        if self.index >= 2:
            return x
        return online.truncate_two_party(x, self.index, frac_bits)

    # -- fixed-point arithmetic (elementwise; each Beaver product takes one stored triple) --------
    def add_public(self, x: np.ndarray, value: float, frac_bits: int = DEFAULT_FRAC_BITS) -> np.ndarray:
        """Shares of ``x + value`` for a public real ``value``."""
        return online.add_public(x, np.broadcast_to(encode(value, frac_bits), np.shape(x)), self.index)

    def scale(self, x: np.ndarray, value: float, *, tag: str, frac_bits: int = DEFAULT_FRAC_BITS) -> np.ndarray:
        """Shares of ``x · value`` for a public real ``value`` (a local product, then a truncation)."""
        return self.truncate(online.mul_public(x, encode(value, frac_bits)), frac_bits, tag=tag)

    def mul_fixed(self, x: np.ndarray, y: np.ndarray, *, tag: str, frac_bits: int = DEFAULT_FRAC_BITS) -> np.ndarray:
        """Shares of the fixed-point product ``x·y`` (a Beaver product, then a truncation)."""
        return self.truncate(self.multiply(x, y, tag=f"{tag}/mul"), frac_bits, tag=f"{tag}/trunc")

    def polynomial(self, x: np.ndarray, coeffs, *, tag: str, frac_bits: int = DEFAULT_FRAC_BITS) -> np.ndarray:
        """Shares of ``Σ c_k x^k`` (public coefficients, Horner: degree − 1 Beaver products)."""
        coeffs = [float(c) for c in coeffs]
        if len(coeffs) == 1:
            return self.add_public(np.zeros_like(as_ring(x)), coeffs[0], frac_bits)
        acc = self.add_public(self.scale(x, coeffs[-1], tag=f"{tag}/0", frac_bits=frac_bits), coeffs[-2], frac_bits)
        for k, c in enumerate(reversed(coeffs[:-2])):
            acc = self.add_public(self.mul_fixed(acc, x, tag=f"{tag}/{k + 1}", frac_bits=frac_bits), c, frac_bits)
        return acc

    def sigmoid(self, x: np.ndarray, method: str = "cheb9", *, tag: str,
                frac_bits: int = DEFAULT_FRAC_BITS) -> np.ndarray:
        """Shares of σ(x) by a recipe of :mod:`protocols.mpc.approx` (its interval and error there
        are documented; values outside it are not clipped here: :meth:`clip` them first)."""
        coeffs, scale = approx.SIGMOIDS[method]
        t = x if scale == 1.0 else self.scale(x, 1.0 / scale, tag=f"{tag}/scale", frac_bits=frac_bits)
        odd = approx.odd_part(method)
        if odd is None:
            return self.polynomial(t, coeffs, tag=tag, frac_bits=frac_bits)
        c0, odd_coeffs = odd               # c₀ + t·q(t²): about half the products of Horner in t
        u = self.mul_fixed(t, t, tag=f"{tag}/sq", frac_bits=frac_bits)
        q = self.polynomial(u, odd_coeffs, tag=tag, frac_bits=frac_bits)
        return self.add_public(self.mul_fixed(t, q, tag=f"{tag}/odd", frac_bits=frac_bits), c0, frac_bits)

    def reciprocal(self, x: np.ndarray, lo: float, hi: float, *, tag: str,
                   frac_bits: int = DEFAULT_FRAC_BITS) -> np.ndarray:
        """Shares of 1/x for public bounds 0 < lo ≤ x ≤ hi: Newton ``y ← y(2 − xy)`` from 1/hi
        (:func:`protocols.mpc.approx.newton_steps` steps; the first is local)."""
        steps = approx.newton_steps("reciprocal", lo, hi, frac_bits)
        y0 = 1.0 / hi
        y = self.scale(self.add_public(-self.scale(x, y0, tag=f"{tag}/0a", frac_bits=frac_bits), 2.0, frac_bits),
                       y0, tag=f"{tag}/0b", frac_bits=frac_bits)
        for k in range(1, steps):
            xy = self.mul_fixed(x, y, tag=f"{tag}/{k}a", frac_bits=frac_bits)
            y = self.mul_fixed(y, self.add_public(-xy, 2.0, frac_bits), tag=f"{tag}/{k}b", frac_bits=frac_bits)
        return y

    def inv_sqrt(self, x: np.ndarray, lo: float, hi: float, *, tag: str,
                 frac_bits: int = DEFAULT_FRAC_BITS) -> np.ndarray:
        """Shares of 1/√x for public bounds 0 < lo ≤ x ≤ hi: Newton ``y ← y(3 − xy²)/2`` from 1/√hi."""
        steps = approx.newton_steps("inv_sqrt", lo, hi, frac_bits)
        y0 = 1.0 / np.sqrt(hi)
        y = self.scale(self.add_public(-self.scale(x, y0 * y0, tag=f"{tag}/0a", frac_bits=frac_bits), 3.0,
                                       frac_bits), y0 / 2, tag=f"{tag}/0b", frac_bits=frac_bits)
        for k in range(1, steps):
            yy = self.mul_fixed(y, y, tag=f"{tag}/{k}a", frac_bits=frac_bits)
            xyy = self.mul_fixed(x, yy, tag=f"{tag}/{k}b", frac_bits=frac_bits)
            y = self.scale(self.mul_fixed(y, self.add_public(-xyy, 3.0, frac_bits), tag=f"{tag}/{k}c",
                                          frac_bits=frac_bits), 0.5, tag=f"{tag}/{k}d", frac_bits=frac_bits)
        return y

    # -- comparison (boolean shares: uint8 0/1 arrays, the value the XOR of every party's) ---------
    def and_bits(self, sender: str, receiver: str, *, tag: str, length: int, x=None, y=None) -> np.ndarray:
        """XOR shares of ``x ∧ y`` (bits), ``x`` held by ``sender``, ``y`` by ``receiver``: one OT
        per bit; every other party gets zeros."""
        side = self._ole(sender, receiver)
        got = self._ole_round(sender, receiver, f"{tag}/and",
                              lambda: side.start_bits(np.asarray(y, np.uint8)),
                              lambda u: side.and_bits(np.asarray(x, np.uint8), u),
                              lambda c: side.finish_bits(c))
        return np.zeros(length, np.uint8) if got is None else got

    def open_bits(self, bits: np.ndarray, *, tag: str) -> np.ndarray:
        """The value of XOR-shared bits (uint8 0/1), packed 64 to a word on the way."""
        bits = np.asarray(bits, np.uint8)
        packed = np.packbits(bits.ravel())
        packed = np.concatenate([packed, np.zeros(-len(packed) % 8, np.uint8)]).view("<u8").astype(np.uint64)
        opened = self.open(packed, tag=tag, xor=True).astype("<u8").view(np.uint8)
        return np.unpackbits(opened, count=bits.size).reshape(bits.shape)

    def bit_triples_waiting(self) -> int:
        return len(self._bit_triples[0])

    def ensure_bit_triples(self, count: int, *, tag: str) -> None:
        """Make only those of ``count`` AND triples the session lacks."""
        missing = count - self.bit_triples_waiting()
        if missing > 0:
            self.generate_bit_triples(missing, tag=tag)

    def generate_bit_triples(self, count: int, *, tag: str = "bits") -> None:
        """``count`` AND triples (u, v, w = u ∧ v), XOR-shared, dealer-free: every party draws its
        own u_i, v_i; each cross term u_i ∧ v_j is one OT from i to j."""
        u = np.frombuffer(secrets.token_bytes(count), np.uint8) & 1
        v = np.frombuffer(secrets.token_bytes(count), np.uint8) & 1
        w = u & v
        for i in self.parties:
            for j in self.parties:
                if i != j:
                    w = w ^ self.and_bits(i, j, tag=f"{tag}/{i}>{j}", length=count, x=u if self.me == i else None,
                                          y=v if self.me == j else None)
        self._bit_triples = [np.concatenate([have, new]) for have, new in zip(self._bit_triples, (u, v, w))]
        self.bit_triples_made += count

    def and_shared(self, x: np.ndarray, y: np.ndarray, *, tag: str) -> np.ndarray:
        """XOR shares of ``x ∧ y`` for XOR-shared bits: one AND triple per bit, one opening."""
        x, y = np.asarray(x, np.uint8), np.asarray(y, np.uint8)
        n = x.size
        if len(self._bit_triples[0]) < n:
            raise TripleBudgetError(f"{tag!r} needs {n} AND triples, {len(self._bit_triples[0])} are left")
        u, v, w = (t[:n].reshape(x.shape) for t in self._bit_triples)
        self._bit_triples = [t[n:] for t in self._bit_triples]
        opened = self.open_bits(np.concatenate([(x ^ u).ravel(), (y ^ v).ravel()]), tag=tag)
        d, e = opened[:n].reshape(x.shape), opened[n:].reshape(x.shape)
        z = w ^ (d & v) ^ (e & u)
        return z ^ (d & e) if self.index == 0 else z

    # AND triples one comparison (negative) takes per value: 63 for the generate bits, 126 for the
    # six levels of the prefix adder (64 + 32 + … + 2)
    BITS_PER_COMPARISON = 63 + 126

    def comparison_triples(self, values: int) -> dict:
        """What :meth:`negative` on ``values`` values takes from the stores: AND triples, and
        elementwise triples of ``values`` (the conversion of the sign bit, one per party after the first)."""
        return {"bits": values * self.BITS_PER_COMPARISON, "elementwise": len(self.parties) - 1}

    def negative(self, x: np.ndarray, *, tag: str) -> np.ndarray:
        """Arithmetic shares of ``[x < 0]`` (1 or 0) for shares ``x`` of values in two's complement:
        the sign bit of ``x_0 + x_1`` is ``msb(x_0) ⊕ msb(x_1) ⊕`` the carry out of their low 63
        bits, by a parallel-prefix adder on AND triples (7 rounds: the generate bits, then 6
        levels). With more than two parties the others first hand their shares to party 1, as for
        truncation. Takes its triples from the stores (:meth:`comparison_triples`), making any
        that are missing first."""
        x = self._two_party(as_ring(x), f"{tag}/pair")
        shape, flat = x.shape, x.ravel()
        n = flat.size
        self.ensure_bit_triples(n * self.BITS_PER_COMPARISON, tag=f"{tag}/t")
        bits = ((flat[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)   # n × 64
        zero = np.zeros_like(bits)
        a = bits if self.index == 0 else zero           # party 0's share, as a boolean sharing
        b = bits if self.index == 1 else zero
        g = self.and_shared(a[:, :63], b[:, :63], tag=f"{tag}/g")
        p = (a ^ b)[:, :63]
        # pad to 64 positions with the combine's identity at the top (G = 0, P = 1)
        g = np.concatenate([g, zero[:, :1]], axis=1)
        p = np.concatenate([p, np.full((n, 1), 1 if self.index == 0 else 0, np.uint8)], axis=1)
        level = 0
        while g.shape[1] > 1:                           # combine (hi, lo): G = G_hi ⊕ P_hi∧G_lo, P = P_hi∧P_lo
            g_lo, g_hi, p_lo, p_hi = g[:, 0::2], g[:, 1::2], p[:, 0::2], p[:, 1::2]
            both = self.and_shared(np.concatenate([p_hi, p_hi], axis=1), np.concatenate([g_lo, p_lo], axis=1),
                                   tag=f"{tag}/l{level}")
            half = g_lo.shape[1]
            g, p = g_hi ^ both[:, :half], both[:, half:]
            level += 1
        sign = (a[:, 63] ^ b[:, 63] ^ g[:, 0]).reshape(shape)
        return self.bit_to_ring(sign, tag=f"{tag}/b2a")

    def bit_to_ring(self, bits: np.ndarray, *, tag: str) -> np.ndarray:
        """Arithmetic shares of XOR-shared bits: party by party ``acc ← acc + b_j − 2·acc·b_j``,
        the product of the shared acc with party j's own bit b_j (shared as b_j and zeros) one
        Beaver product (an elementwise triple from the store, made first if missing)."""
        bits = np.asarray(bits, np.uint8)
        shape, flat = bits.shape, bits.ravel().astype(np.uint64)
        acc = flat.copy() if self.index == 0 else np.zeros_like(flat)
        for j, holder in enumerate(self.parties[1:], start=1):
            mine = flat if self.me == holder else np.zeros_like(flat)
            self.ensure_triples(TripleShape("elementwise", flat.size), 1, tag=f"{tag}/{j}/t")
            product = self.multiply(acc, mine, tag=f"{tag}/{j}")
            acc = acc + mine - np.uint64(2) * product
        return acc.reshape(shape)

    def relu(self, x: np.ndarray, *, tag: str) -> np.ndarray:
        """Shares of ``max(x, 0)`` (one comparison and one Beaver product)."""
        x = as_ring(x)
        keep = online.add_public(np.uint64(0) - self.negative(x, tag=f"{tag}/neg"), np.ones(x.shape, np.uint64),
                                 self.index)
        self.ensure_triples(TripleShape("elementwise", x.size), 1, tag=f"{tag}/t")
        return self.multiply(x, keep, tag=f"{tag}/mul")

    def clip(self, x: np.ndarray, lo: float, hi: float, *, tag: str, frac_bits: int = DEFAULT_FRAC_BITS) -> np.ndarray:
        """Shares of ``x`` clipped to the public [lo, hi]: ``lo + relu(x − lo) − relu(x − hi)``."""
        if not lo < hi:
            raise ValueError(f"clip needs lo < hi, got {lo}, {hi}")
        x = as_ring(x)
        below = self.relu(self.add_public(x, -lo, frac_bits), tag=f"{tag}/lo")
        above = self.relu(self.add_public(x, -hi, frac_bits), tag=f"{tag}/hi")
        return self.add_public(below - above, lo, frac_bits)

    def _two_party(self, x: np.ndarray, tag: str) -> np.ndarray:
        """With more than two parties: parties 2… hand their shares to party 1, which re-randomizes
        its pair with party 0; every party then holds its share of a 2-party sharing (zeros from 2 on)."""
        if len(self.parties) == 2:
            return x
        first = self.parties[1]
        for p in self.parties[2:]:
            got = self.transfer(p, first, Shares(tag, x) if self.me == p else None, Shares)
            if got is not None:
                _check(got, tag, x.shape, p)
                x = x + got.values
        if self.index >= 2:
            return np.zeros_like(x)
        mask = random_ring(x.shape) if self.index == 1 else None
        got = self.transfer(first, self.hub, Shares(f"{tag}/mask", mask) if self.index == 1 else None, Shares)
        if self.index == 1:
            return x - mask
        _check(got, f"{tag}/mask", x.shape, first)
        return x + got.values

    def reveal(self, share: np.ndarray | None, to: list[str], *, tag: str, holders: list[str] | None = None,
               shape: tuple | None = None) -> np.ndarray | None:
        """The value of a shared ``share`` at the parties ``to``; the others learn nothing (None).

        ``holders``: the parties holding shares (default: all; the others pass None); a receiver
        that holds none must pass the ``shape``. Shares relayed through the hub are masked
        (:meth:`transfer`).
        """
        holders = list(self.parties) if holders is None else list(holders)
        mine = as_ring(share) if self.me in holders else None
        value = None
        for receiver in to:
            if self.me == receiver:
                expected = mine.shape if mine is not None else tuple(shape)
                total = mine.copy() if mine is not None else np.zeros(expected, dtype=np.uint64)
            for sender in holders:
                if sender == receiver:
                    continue
                got = self.transfer(sender, receiver, Shares(tag, mine) if self.me == sender else None, Shares)
                if got is not None:
                    _check(got, tag, expected, sender)
                    total += got.values
            if self.me == receiver:
                value = total
        return value

def _tagged(message, tag: str, peer: str):
    if message.tag != tag:
        raise ProtocolError(f"expected {tag!r} from {peer}, received {message.tag!r}")
    return message


def derive_pair_key(secret: bytes, theirs: bytes, pair: tuple, other: str) -> bytes:
    """The two parties' shared key: X25519, hashed with both names. A low-order point (which
    libsodium refuses, or which gives an all-zero secret) is a named protocol error."""
    try:
        shared = crypto_scalarmult(secret, theirs)
    except Exception:
        shared = bytes(32)
    if shared == bytes(32):
        raise ProtocolError(f"{other}'s pair key is not a usable X25519 public key")
    return hashlib.blake2b(shared + "|".join(pair).encode(), digest_size=32, person=b"vfl-mpc-pair").digest()


def _check(message, tag: str, shape: tuple, peer: str) -> None:
    if message.tag != tag:
        raise ProtocolError(f"expected values of {tag!r} from {peer}, received values of {message.tag!r}")
    if message.values.dtype != np.uint64 or message.values.shape != tuple(shape):
        raise ProtocolError(f"{peer} sent {message.values.dtype} values of shape {message.values.shape} for "
                            f"{tag!r}; expected uint64 of shape {tuple(shape)}")
