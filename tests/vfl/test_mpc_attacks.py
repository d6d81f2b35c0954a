"""What a hostile peer tried against the secret-sharing session and Pearson, now refused by name."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from parties.transport.inprocess import InProcessNetwork
from protocols.mpc.crossprod import CrossKeyHolder, CrossMultiplier
from protocols.mpc.errors import MpcProtocolError
from protocols.mpc.ring import random_ring
from protocols.mpc.triples import TripleShape
from vfl.errors import ProtocolError
from vfl.mpc import MpcSession, derive_pair_key
from vfl.pearson.messages import PROTOCOL_VERSION, PearsonNames, PearsonSetup
from vfl.pearson.model import PassivePearson, check_names


def _setup(parties, receivers=None, full=()):
    return PearsonSetup(PROTOCOL_VERSION, list(parties), 100, 20, list(receivers or parties), list(full))


def test_a_setup_with_an_invented_party_is_not_the_job_the_passive_accepted():
    """The job was bank + insurer, revealed to the insurer only; the setup adds a 'telco' the
    active runs itself, with the whole matrix for it. The insurer's consent would allow telco."""
    passive = PassivePearson(reveal_to=["telco"], job_parties=["bank", "insurer"],
                             job_reveal={"receivers": ["insurer"]})
    with pytest.raises(ProtocolError, match="not the job's that this party accepted"):
        passive._check_setup(_setup(["bank", "insurer", "telco"], ["insurer"], ["telco"]), "insurer", "bank", 100)
    with pytest.raises(ProtocolError, match="reveal plan is not the one of the job"):
        passive._check_setup(_setup(["bank", "insurer"], ["insurer"], ["bank"]), "insurer", "bank", 100)
    passive._check_setup(_setup(["bank", "insurer"], ["insurer"]), "insurer", "bank", 100)


def test_a_huge_party_list_is_refused_before_any_quadratic_work():
    parties = ["bank", "insurer", *(f"p{i}" for i in range(5000))]
    with pytest.raises(ProtocolError, match="at most 64"):
        PassivePearson(reveal_to="initiator")._check_setup(_setup(parties), "insurer", "bank", 100)


def test_names_without_every_party_s_column_count_are_refused():
    setup = _setup(["bank", "insurer", "telco"], full=["insurer"])
    good = PearsonNames({"insurer": ["a", "b"]}, {"bank": 3, "insurer": 2, "telco": 4}, ["bank", "insurer"],
                        [["insurer", "telco"], ["telco"]])
    check_names(good, setup, "insurer", ["a", "b"], "bank")
    for bad in (PearsonNames({"insurer": ["a", "b"]}, {"bank": 3, "insurer": 2}, good.holders, good.multipliers),
                PearsonNames({"insurer": ["a", "b"]}, {"bank": 3, "insurer": 5, "telco": 4}, good.holders,
                             good.multipliers),
                PearsonNames({"insurer": ["a", "b"]}, good.counts, ["bank"], [["insurer"]])):
        with pytest.raises(ProtocolError):
            check_names(bad, setup, "insurer", ["a", "b"], "bank")


def test_cross_products_of_another_shape_than_declared_are_refused(small_keypair):
    _, sk = small_keypair
    holder = CrossKeyHolder(sk, random_ring((5, 2)), tag="t", workers=1)
    offer = holder.offer()
    with pytest.raises(MpcProtocolError, match="the offer has 2 columns; the key holder's operand has 3"):
        CrossMultiplier(random_ring((2, 5)), tag="t", min_key_bits=1024, expect_cols=3, workers=1).reply(offer)
    four_rows = CrossMultiplier(random_ring((4, 5)), tag="t", min_key_bits=1024, workers=1).reply(offer)
    with pytest.raises(MpcProtocolError, match="layout"):
        holder.finish(four_rows, 2)                         # the multiplier declared 2 rows


def test_a_low_order_pair_key_is_a_named_error():
    with pytest.raises(ProtocolError, match="not a usable X25519 public key"):
        derive_pair_key(bytes(range(32)), bytes(32), ("a", "b"), "b")


def test_sessions_never_pickle():
    net = InProcessNetwork(["a", "b"], timeout=5)
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(MpcSession(net["a"], ["a", "b"], workers=1))


def test_parties_with_keys_of_different_sizes_agree_on_a_triple_s_layout():
    """The orientation of a matrix triple comes from its public shape, not from a party's key."""
    names, shape = ["a", "b"], TripleShape("matrix", 3, 1, 6)

    def role(name):
        def run(t):
            s = MpcSession(t, names, key_bits=1024 if name == "a" else 2048, min_key_bits=1024, workers=1)
            s.generate_triples(shape, 1)
            tr = s.triples.take(shape)
            return tr.a, tr.b, tr.c
        return run
    out = InProcessNetwork(names, timeout=60).run({n: role(n) for n in names})
    a, b, c = (out["a"][j] + out["b"][j] for j in range(3))
    assert np.array_equal(c, a @ b)
