"""Oblivious transfer and the OLE products on it (protocols/mpc/ot.py): the base OTs give the
receiver exactly the chosen key, the bit transpose is the plain one, every product is exact in
the ring (edge values included, over several calls that must not reuse a stream), triples
satisfy a·b = c, and malformed peer messages are refused by name."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.mpc import ot
from protocols.mpc.ring import random_ring


def _pair():
    sender, receiver = ot.OleSender("R"), ot.OleReceiver("S")
    receiver.accept(sender.reply(receiver.offer()))
    return sender, receiver


def _product(sender, receiver, x, y):
    mine, corrections = sender.multiply(x, receiver.start(y))
    return mine, receiver.finish(corrections)


def test_the_base_ots_give_the_receiver_its_chosen_key_and_never_the_other():
    sender, receiver = _pair()
    for bit, key, (k0, k1) in zip(sender._s_bits, sender._keys, receiver._keys):
        assert key == (k1 if bit else k0) and key != (k0 if bit else k1)
    assert 32 < int(sender._s_bits.sum()) < 96                  # s is random, not all zeros


def test_the_fast_transpose_is_the_plain_bit_transpose():
    rng = np.random.default_rng(0)
    for m in (64, 1280, 64 * 777):
        rows = rng.integers(0, 256, size=(ot.KAPPA, -(-m // 128) * 16), dtype=np.uint8)
        bits = np.unpackbits(rows, axis=1, count=m)
        plain = np.ascontiguousarray(np.packbits(bits.T, axis=1)).view(np.uint64).reshape(m, 2)
        assert np.array_equal(ot._transpose(rows, m), plain)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)), min_size=1, max_size=40))
def test_shares_of_a_product_add_up_to_it_in_the_ring(pairs):
    sender, receiver = _PAIR
    x = np.array([p[0] for p in pairs], dtype=np.uint64)
    y = np.array([p[1] for p in pairs], dtype=np.uint64)
    mine, theirs = _product(sender, receiver, x, y)
    assert np.array_equal(mine + theirs, x * y)


_PAIR = _pair()        # one session for every example: its streams must move on, call after call


def test_edge_values_and_repeated_calls_on_one_session():
    sender, receiver = _pair()
    x = np.array([0, 1, 2**63, 2**64 - 1, 12345], dtype=np.uint64)
    y = np.array([2**64 - 1, 2**64 - 1, 2, 2**64 - 1, 0], dtype=np.uint64)
    seen = []
    for _ in range(3):
        mine, theirs = _product(sender, receiver, x, y)
        assert np.array_equal(mine + theirs, x * y)
        seen.append(mine)
    assert not np.array_equal(seen[0], seen[1])                # fresh randomness every call
    assert sender._stream.ots == receiver._stream.ots == 3 * 64 * len(x)


def test_elementwise_triples_multiply_out():
    (a0, b0, c0), (a1, b1, c1) = ot.elementwise_triples(5000, chunk=1024)
    assert np.array_equal(c0 + c1, (a0 + a1) * (b0 + b1))
    assert len(np.unique(a0)) == 5000 and not np.array_equal(c0, c1)


def test_a_share_alone_says_nothing_of_the_product():
    """Each party's share of x·y is uniform: with x·y fixed at 0 (y = 0), the shares still look random."""
    sender, receiver = _pair()
    x = random_ring(4096)
    mine, theirs = _product(sender, receiver, x, np.zeros(4096, np.uint64))
    assert np.array_equal(mine + theirs, np.zeros(4096, np.uint64))
    top = (mine >> np.uint64(63)).astype(int)
    assert 1800 < top.sum() < 2300                                # the top bit is a fair coin


@pytest.mark.parametrize("bad,message", [
    (b"\x00" * 32, "not a valid edwards25519 point"),
    (b"\x01" * 31, "not a valid edwards25519 point"),
])
def test_a_bad_base_point_is_refused(bad, message):
    with pytest.raises(ot.OtError, match=message):
        ot.OleSender("p1").reply(bad)
    receiver = ot.OleReceiver("p1")
    with pytest.raises(ot.OtError):
        receiver.accept(bad * ot.KAPPA)


def test_wrong_sizes_are_refused_and_nothing_runs_before_the_base_ots():
    sender, receiver = _pair()
    with pytest.raises(ot.OtError, match="OT-extension matrix of uint8 \\(128, 16\\), not uint8 \\(128, 32\\)"):
        sender.multiply(np.ones(3, np.uint64), np.zeros((128, 16), np.uint8))
    receiver.start(np.ones(2, np.uint64))
    with pytest.raises(ot.OtError, match="corrections of uint64 \\(5,\\)"):
        receiver.finish(np.zeros(5, np.uint64))
    with pytest.raises(ot.OtError, match="base OTs are not done"):
        ot.OleReceiver().start(np.ones(2, np.uint64))
    with pytest.raises(ot.OtError, match="bytes of base-OT points"):
        ot.OleReceiver("p1").accept(b"short")


@pytest.mark.parametrize("rows,inner,cols", [(1, 1, 1), (5, 3, 2), (300, 7, 1), (2, 40, 3)])
def test_matrix_products_over_ot_are_exact(rows, inner, cols):
    sender, receiver = _pair()
    x, y = random_ring((rows, inner)), random_ring((inner, cols))
    for _ in range(2):                                          # the session's streams move on
        mine, corrections = sender.multiply_matrix(x, receiver.start_matrix(y, rows), cols)
        theirs = receiver.finish_matrix(corrections)
        assert mine.shape == theirs.shape == (rows, cols)
        assert np.array_equal(mine + theirs, (x[:, :, None] * y[None, :, :]).sum(axis=1, dtype=np.uint64))
    assert sender._stream.tweaks == receiver._stream.tweaks == 2 * 64 * inner * cols * -(-rows // 2)


def test_the_hash_takes_a_fresh_tweak_for_every_word():
    blocks = np.zeros((3, 2), np.uint64)                        # one input, 9 tweaks: 18 different words
    words = ot.tccr_hash(blocks, 0, words=6)
    assert words.shape == (3, 6) and len(np.unique(words)) == 18


def test_a_session_that_failed_once_refuses_every_later_product():
    """After a refused round the two sides' streams may stand apart; a later product would be
    wrong without a word, so both sides refuse to go on."""
    sender, receiver = _pair()
    u = receiver.start(np.ones(3, np.uint64))
    with pytest.raises(ot.OtError, match="OT-extension matrix"):
        sender.multiply(np.ones(2, np.uint64), u)               # another length than the receiver chose
    with pytest.raises(ot.OtError, match="broke earlier"):
        sender.multiply(np.ones(3, np.uint64), u)
    with pytest.raises(ot.OtError, match="corrections"):
        receiver.finish(np.zeros(7, np.uint64))
    with pytest.raises(ot.OtError, match="broke earlier"):
        receiver.start(np.ones(3, np.uint64))


def test_empty_products_are_refused_by_name():
    sender, receiver = _pair()
    with pytest.raises(ValueError, match="needs values"):
        receiver.start(np.zeros(0, np.uint64))
    with pytest.raises(ValueError, match="needs values"):
        _pair()[0].multiply_matrix(np.zeros((0, 3), np.uint64), np.zeros((128, 16), np.uint8), 1)


def test_the_two_directions_of_a_pair_hash_under_different_session_words():
    a, b = _pair(), _pair()
    assert a[0]._salt == a[1]._salt and a[0]._salt != b[0]._salt
