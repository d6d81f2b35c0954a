"""Dealer-free cross products (Paillier) and triples: correct, checked, never reused."""
from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.mpc.crossprod import CrossKeyHolder, CrossMultiplier, Layout
from protocols.mpc.errors import MpcProtocolError, TripleBudgetError
from protocols.mpc.ring import random_ring, reconstruct, ring_matmul, share
from protocols.mpc.triples import TripleShape, TripleStore, TrustedDealer
from protocols.paillier import PackedEncryptedVector


def _run(sk, x, y, **kw):
    holder = CrossKeyHolder(sk, x, tag="t", workers=1, **{k: v for k, v in kw.items() if k != "min_key_bits"})
    mult = CrossMultiplier(y, tag="t", workers=1, min_key_bits=1024,
                           **{k: v for k, v in kw.items() if k in ("scalar_bits", "mode")})
    reply = mult.reply(holder.offer())
    return holder.finish(reply), mult.share, reply


@given(st.integers(1, 4), st.integers(1, 30), st.integers(1, 25))
@settings(max_examples=8, deadline=None)
def test_matrix_cross_product_shares_add_up_to_y_times_x(small_keypair, m, k, q):
    _, sk = small_keypair
    x, y = random_ring((k, q)), random_ring((m, k))
    mine, theirs, _ = _run(sk, x, y)
    assert mine.shape == theirs.shape == (m, q)
    assert np.array_equal(reconstruct([mine, theirs]), ring_matmul(y, x))


def test_elementwise_and_signed_scalars(small_keypair):
    _, sk = small_keypair
    x, y = random_ring(37), random_ring(37)
    mine, theirs, _ = _run(sk, x, y, mode="elementwise")
    assert np.array_equal(mine + theirs, x * y)
    signed_y = np.random.default_rng(0).integers(-2**20, 2**20, size=(3, 40))
    xm = random_ring((40, 5))
    offset = 1 << 21
    mine, theirs, _ = _run(sk, xm, (signed_y + offset).astype(np.uint64), scalar_bits=22, scalar_offset=offset)
    assert np.array_equal(mine + theirs, ring_matmul(signed_y.astype(np.int64).view(np.uint64), xm))


def test_key_holder_sees_only_masked_slots(small_keypair):
    """What the key holder decrypts is Y·X plus a mask: the slots differ from the product
    (and from one run to the next), and are λ bits wider than it."""
    _, sk = small_keypair
    x, y = random_ring((6, 3)), random_ring((2, 6))
    _, _, reply1 = _run(sk, x, y)
    _, _, reply2 = _run(sk, x, y)
    slots1, slots2 = reply1.cipher.decrypt_ints(sk), reply2.cipher.decrypt_ints(sk)
    lay = Layout("matrix", 6, 3, 64, sk.public_key.n_bits)
    product = [int(v) for v in ring_matmul(y, x).ravel()]
    real = [s for i, s in enumerate(slots1) if i % (lay.groups * lay.slots) < 3]
    assert all(s >= 0 and s < 2**lay.slot_bits for s in slots1)
    assert real != product and slots1 != slots2
    assert max(real).bit_length() > 64 + 64 + 3 + 32      # the mask dominates the product's 131 bits


def test_a_tampered_offer_or_reply_is_refused(small_keypair):
    _, sk = small_keypair
    x, y = random_ring((4, 2)), random_ring((1, 4))
    holder = CrossKeyHolder(sk, x, tag="t", workers=1)
    offer = holder.offer()
    mult = CrossMultiplier(y, tag="t", workers=1, min_key_bits=1024)
    with pytest.raises(MpcProtocolError, match="expected an offer for 't'"):
        mult.reply(dataclasses.replace(offer, tag="u"))
    with pytest.raises(MpcProtocolError, match="rows"):
        mult.reply(dataclasses.replace(offer, rows=5))
    c = offer.cipher
    wide = PackedEncryptedVector(c.public_key, c.ciphertexts, length=c.length, exponent=0, slot_bits=c.slot_bits - 1,
                                 slots=c.slots, offset=0, max_slot=1)
    with pytest.raises(MpcProtocolError, match="layout"):
        mult.reply(dataclasses.replace(offer, cipher=wide))
    with pytest.raises(MpcProtocolError, match="2048-bit minimum"):
        CrossMultiplier(y, tag="t", workers=1).reply(offer)
    reply = mult.reply(offer)
    with pytest.raises(MpcProtocolError, match="reply to 't'"):
        holder.finish(dataclasses.replace(reply, tag="v"))


def test_scalars_above_their_declared_bits_are_refused():
    with pytest.raises(MpcProtocolError, match="more than the declared 8 bits"):
        CrossMultiplier(np.array([[256]], dtype=np.uint64), tag="t", scalar_bits=8)


@pytest.mark.parametrize("shape", [TripleShape("matrix", 3, 4, 2), TripleShape("elementwise", 50)])
@pytest.mark.parametrize("parties", [2, 3])
def test_dealt_triples_hold_and_are_handed_out_once(shape, parties):
    triples = TrustedDealer(parties).deal(shape)
    a = reconstruct([t.a for t in triples])
    b = reconstruct([t.b for t in triples])
    assert np.array_equal(reconstruct([t.c for t in triples]), shape.product(a, b))
    store = TripleStore()
    store.add(triples[0])
    assert store.take(shape) is triples[0]
    with pytest.raises(TripleBudgetError, match="1 made, 1 used"):
        store.take(shape)
    assert store.budget() == {"made": 1, "used": 1, "left": 0, "multiplications_made": shape.multiplications}


def test_triples_are_never_pickled_or_printed():
    t = TrustedDealer(2).deal(TripleShape("elementwise", 4))[0]
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(t)
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(TripleStore())
    assert str(int(t.a[0])) not in repr(t)


def test_shares_of_a_secret_are_uniform_per_party():
    x = np.zeros(4, dtype=np.uint64)
    assert not np.array_equal(share(x, 2)[1], share(x, 2)[1])


@given(st.integers(1, 3), st.integers(1, 40), st.integers(1, 16))
@settings(max_examples=6, deadline=None)
def test_signed_small_values_on_both_sides(small_keypair, m, k, q):
    """Offsets on both sides (as Pearson uses them) cancel: the shares add up to the signed product."""
    _, sk = small_keypair
    rng = np.random.default_rng(m * 1000 + k * 10 + q)
    x, y = rng.integers(-2**29, 2**29, size=(k, q)), rng.integers(-2**29, 2**29, size=(m, k))
    o = 1 << 29
    holder = CrossKeyHolder(sk, (x + o).astype(np.uint64), tag="s", scalar_bits=30, scalar_offset=o, value_bits=30,
                            value_offset=o, workers=1)
    mult = CrossMultiplier((y + o).astype(np.uint64), tag="s", scalar_bits=30, value_bits=30, value_offset=o,
                           min_key_bits=1024, workers=1)
    offer = holder.offer()
    assert offer.cipher.slots > Layout("matrix", k, q, 64, sk.public_key.n_bits).slots   # small values pack more
    mine = holder.finish(mult.reply(offer))
    assert np.array_equal((mine + mult.share).view(np.int64), y @ x)
