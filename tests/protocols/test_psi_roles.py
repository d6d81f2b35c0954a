"""The sans-IO PSI roles, messages passed by hand: results against a plain set intersection."""
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.psi import (
    ActivePsi,
    PassivePsi,
    PsiActiveMasked,
    PsiAlignment,
    PsiDoubleMasked,
    PsiInputError,
    PsiLimits,
    PsiPassiveMasked,
    PsiPolicyError,
    PsiProtocolError,
    PsiReMasked,
    PsiSetup,
)


def exchange(active: ActivePsi, name: str, passive: PassivePsi, sent: list):
    """Steps 2-5 between the active and one passive; returns the passive's reveal."""
    remasked = []
    for msg in passive.masked_stream():
        remasked += active.accept(name, msg)
    for msg in sent + remasked:
        passive.accept(msg)
    reveal = passive.reveal()
    for msg in passive.double_masked_stream():
        assert active.accept(name, msg) == []
    assert active.expecting(name) is None and passive.expecting() is None
    return reveal


def run(sets, *, private=False, chunk_size=64, reveals=None):
    """Active holds sets[0]; passive i holds sets[i]. Returns (active outcome, {name: outcome})."""
    names = [f"p{i}" for i in range(1, len(sets))]
    active = ActivePsi(sets[0], names, private=private, chunk_size=chunk_size, workers=1)
    passives = {n: PassivePsi(s, workers=1) for n, s in zip(names, sets[1:])}
    for p in passives.values():
        p.accept_setup(active.setup())
    sent = list(active.masked_stream())
    for name, p in passives.items():
        reveal = exchange(active, name, p, sent)
        if reveals is not None:
            reveals[name] = reveal
    outcome, alignments = active.finish()
    return outcome, {n: p.accept_alignment(alignments[n]) for n, p in passives.items()}


def ids(values):
    return [str(v).encode() for v in values]


def check_aligned(sets, outcome, passive_outcomes):
    """Common row i is one id everywhere, and the rows are exactly the intersection."""
    expected = set(sets[0]).intersection(*sets[1:])
    mine = [sets[0][r] for r in outcome.rows]
    assert set(mine) == expected and len(mine) == len(expected) == outcome.size
    for i, (name, po) in enumerate(sorted(passive_outcomes.items()), start=1):
        theirs = [sets[i][r] for r in po.rows[outcome.positions]]
        assert theirs == mine, name


@pytest.mark.parametrize("seed", [0, 1])
def test_two_parties_random_sets(seed):
    rng = random.Random(seed)
    universe = ids(rng.sample(range(10**9), 1500))
    a, b = rng.sample(universe, 700), rng.sample(universe, 900)
    outcome, passives = run([a, b])
    check_aligned([a, b], outcome, passives)
    assert outcome.matched == {"p1": len(set(a) & set(b))} and passives["p1"].size == outcome.size
    assert not np.array_equal(outcome.rows, np.sort(outcome.rows))     # the common order is shuffled


def test_three_parties_passives_learn_only_the_global_intersection():
    a, b, c = ids(range(0, 600)), ids(range(300, 900)), ids(range(0, 900, 2))
    outcome, passives = run([a, b, c], chunk_size=100)
    check_aligned([a, b, c], outcome, passives)
    glob = len(set(a) & set(b) & set(c))
    assert outcome.size == glob == 150
    assert outcome.matched == {"p1": 300, "p2": 300}                       # pairwise: active only
    # each passive gets exactly the global rows, not its pairwise intersection with the active
    assert {len(p.rows) for p in passives.values()} == {glob} and {p.size for p in passives.values()} == {glob}


@pytest.mark.parametrize("overlap", ["none", "full"])
def test_zero_and_full_overlap(overlap):
    a = ids(range(200))
    b = ids(range(1000, 1150)) if overlap == "none" else list(reversed(a))
    outcome, passives = run([a, b, b[:100]])
    check_aligned([a, b, b[:100]], outcome, passives)
    assert outcome.size == (0 if overlap == "none" else 100)


def test_private_mode_pads_passives_with_fillers():
    a, b, c = ids(range(0, 400)), ids(range(200, 700)), ids(range(0, 700, 2))
    outcome, passives = run([a, b, c], private=True, chunk_size=128)
    check_aligned([a, b, c], outcome, passives)
    n_rows = min(len(b), len(c))
    assert outcome.private and outcome.n_rows == n_rows and outcome.size == 100
    for name, po in passives.items():
        assert po.size is None and po.private and len(po.rows) == n_rows
        assert len(set(po.rows.tolist())) == n_rows
    # the smallest passive holds every one of its rows: it cannot tell which matched
    assert sorted(passives["p2"].rows.tolist()) == list(range(len(c)))


def test_bad_inputs_are_named():
    with pytest.raises(PsiInputError, match="bank: no ids"):
        PassivePsi([], name="bank")
    with pytest.raises(PsiInputError, match="1 duplicate"):
        ActivePsi([b"1", b"1"], ["p"])
    with pytest.raises(PsiInputError, match="bytes"):
        ActivePsi(["1"], ["p"])
    with pytest.raises(PsiInputError, match="passive"):
        ActivePsi([b"1"], [])
    with pytest.raises(PsiInputError, match="chunk_size"):
        ActivePsi([b"1"], ["p"], chunk_size=0)


def _started(chunk_size=4):
    active = ActivePsi(ids(range(10)), ["p"], chunk_size=chunk_size, workers=1)
    passive = PassivePsi(ids(range(5, 15)), workers=1)
    passive.accept_setup(active.setup())
    return active, passive


def test_passive_rejects_bad_setup_and_early_messages():
    active, passive = _started()
    with pytest.raises(PsiProtocolError, match="second"):
        passive.accept_setup(active.setup())
    fresh = PassivePsi(ids(range(3)))
    with pytest.raises(PsiProtocolError, match="not arrived"):
        list(fresh.masked_stream())
    for bad in (PsiSetup(version=99, salt=b"s" * 32, private=False, chunk_size=4, active_size=3),
                PsiSetup(version=2, salt=b"short", private=False, chunk_size=4, active_size=3),
                PsiSetup(version=2, salt=b"s" * 32, private=False, chunk_size=0, active_size=3),
                PsiSetup(version=2, salt=b"s" * 32, private=False, chunk_size=4, active_size=0)):
        with pytest.raises(PsiProtocolError):
            PassivePsi(ids(range(3))).accept_setup(bad)
    with pytest.raises(PsiProtocolError, match="before the exchange"):
        passive.accept_alignment(PsiAlignment(positions=np.arange(2), size=2))


def test_streams_are_checked_for_order_count_and_shape():
    active, passive = _started()
    first, second, *_ = list(active.masked_stream())
    with pytest.raises(PsiProtocolError, match="expected chunk 0"):
        passive.accept(second)
    with pytest.raises(PsiProtocolError, match="has 3 points"):
        passive.accept(PsiActiveMasked(seq=0, total=first.total, points=first.points[:3]))
    with pytest.raises(PsiProtocolError, match="total changed"):
        passive.accept(PsiActiveMasked(seq=0, total=11, points=first.points))
    with pytest.raises(PsiProtocolError, match="expected psi.active_masked"):
        passive.accept(PsiReMasked(seq=0, total=10, points=first.points))
    with pytest.raises(PsiProtocolError, match="before reveal"):
        list(passive.double_masked_stream())
    mine = list(passive.masked_stream())
    with pytest.raises(PsiProtocolError, match="expected psi.passive_masked"):
        active.accept("p", PsiDoubleMasked(seq=0, total=10, points=first.points))
    with pytest.raises(PsiProtocolError, match="expected chunk 0, received 1"):
        active.accept("p", mine[1])
    active.accept("p", mine[0])
    with pytest.raises(PsiProtocolError, match="total changed"):
        active.accept("p", PsiPassiveMasked(seq=1, total=99, points=mine[1].points))
    with pytest.raises(PsiProtocolError, match="not a passive"):
        active.expecting("stranger")
    with pytest.raises(PsiProtocolError, match="finish"):
        active.finish()


def test_repeated_points_from_a_passive_are_rejected():
    active = ActivePsi(ids(range(4)), ["p"], chunk_size=8, workers=1)
    passive = PassivePsi(ids(range(4)), workers=1)
    passive.accept_setup(active.setup())
    (sent,) = list(active.masked_stream())
    (theirs,) = list(passive.masked_stream())
    twice = np.repeat(theirs.points[:1], 4, axis=0)
    (remasked,) = active.accept("p", PsiPassiveMasked(seq=0, total=4, points=twice))
    passive.accept(sent)
    with pytest.raises(PsiProtocolError, match="repeated"):          # the passive sees it first
        passive.accept(remasked) or passive.reveal()


@pytest.mark.parametrize("positions,size,match", [
    (np.array([0, 99]), 2, "out of range"), (np.array([1, 1]), 2, "repeat"),
    (np.array([0.5]), 1, "integer"), (np.array([0, 1]), 5, "size")])
def test_alignment_is_checked(positions, size, match):
    active, passive = _started(chunk_size=16)
    exchange(active, "p", passive, list(active.masked_stream()))
    with pytest.raises(PsiProtocolError, match=match):
        passive.accept_alignment(PsiAlignment(positions=positions, size=size))


def _own_positions(passive: PassivePsi, rows) -> np.ndarray:
    """Where the passive's own rows sit in its stream (what an alignment names)."""
    return np.array([int(np.flatnonzero(passive._order == r)[0]) for r in rows])


def test_an_alignment_may_only_name_rows_the_active_can_have_matched():
    active, passive = _started(chunk_size=16)        # the passive holds 5..14, the active 0..9
    reveal = exchange(active, "p", passive, list(active.masked_stream()))
    assert reveal.count == 5 and sorted(reveal.rows.tolist()) == [0, 1, 2, 3, 4]
    unmatched = _own_positions(passive, [9])         # its id 14, which the active does not hold
    with pytest.raises(PsiProtocolError, match="cannot have matched"):
        passive.accept_alignment(PsiAlignment(positions=unmatched, size=1))


def test_the_passive_refuses_a_large_initiator_before_sending_anything():
    active = ActivePsi(ids(range(20_000)), ["p"], workers=1)      # every id of the id space
    passive = PassivePsi(ids(range(100, 669)), limits=PsiLimits(max_active_ratio=10), workers=1)
    with pytest.raises(PsiPolicyError, match="20000 ids are more than 10 × this party's 569"):
        passive.accept_setup(active.setup())
    with pytest.raises(PsiProtocolError, match="not arrived"):   # it never got as far as its masked ids
        list(passive.masked_stream())
    with pytest.raises(PsiPolicyError, match="exceed max_active_ids 1000"):
        PassivePsi(ids(range(5)), limits=PsiLimits(max_active_ids=1000)).accept_setup(active.setup())


@pytest.mark.parametrize("private", [False, True])
def test_the_passive_learns_the_share_first_and_can_refuse(private):
    active = ActivePsi(ids(range(0, 1000)), ["p"], private=private, chunk_size=128, workers=1)
    passive = PassivePsi(ids(range(500, 1300)), limits=PsiLimits(max_share=0.5), workers=1)
    passive.accept_setup(active.setup())
    sent = list(active.masked_stream())
    remasked = [m for msg in passive.masked_stream() for m in active.accept("p", msg)]
    for msg in sent + remasked:
        passive.accept(msg)
    with pytest.raises(PsiPolicyError, match=r"reveal 500 of this party's 800 ids \(62%\)"):
        passive.reveal()
    with pytest.raises(PsiProtocolError, match="before reveal"):
        list(passive.double_masked_stream())             # nothing the active could match with
    assert active.expecting("p") is PsiDoubleMasked


def test_in_private_mode_the_passive_counts_but_cannot_tell_which():
    reveals = {}
    a, b = ids(range(0, 300)), ids(range(100, 500))
    run([a, b], private=True, reveals=reveals)
    assert reveals["p1"].count == 200 and reveals["p1"].rows is None
    run([a, b], private=False, reveals=reveals)
    assert sorted(b[r] for r in reveals["p1"].rows) == sorted(set(a) & set(b))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sets(st.text(min_size=1, max_size=6), min_size=1, max_size=25), min_size=2, max_size=4),
       st.booleans(), st.integers(1, 9))
def test_any_sets_give_the_plain_intersection(sets, private, chunk_size):
    sets = [[s.encode() for s in sorted(group)] for group in sets]
    outcome, passives = run(sets, private=private, chunk_size=chunk_size)
    check_aligned(sets, outcome, passives)
