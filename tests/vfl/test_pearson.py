"""Hetero Pearson on secret shares, in process: the matrix matches numpy's on the joined
table, each block reaches exactly the parties the plan names, and bad tables and plans are
refused by name."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from parties.transport.inprocess import InProcessNetwork
from vfl import datasets
from vfl.errors import DataError, ProtocolError
from vfl.family import PassiveCaps
from vfl.jobs import active, passive
from vfl.jobs.spec import JobSpecError, PassiveRequest, parse_job
from vfl.pearson.model import check_consent, cross_plan
from vfl.pearson.plan import RevealPlan
from vfl.registry import family

CAPS = PassiveCaps(max_rounds=1, allow_small_keys=True)


def _raw(parties: dict, **extra) -> dict:
    return {"job": {"name": "corr", "model": "pearson"}, "model": {"key_bits": 1024},
            "parties": {name: {"role": "active" if i == 0 else "passive", "data": f"{name}.csv",
                               **({"label": "y"} if i == 0 else {})} for i, name in enumerate(parties)},
            **extra}


def _run(raw, frames, tmp_path, small_keypair, caps=CAPS):
    spec = dataclasses.replace(parse_job(raw), output_dir=str(tmp_path))
    net = InProcessNetwork([p.name for p in spec.parties], timeout=60)
    roles = {spec.active.name: lambda t: active.train(t, spec, frames[spec.active.name],
                                                      private_key=small_keypair[1], verbose=False)}
    for p in spec.passives:
        request = PassiveRequest.parse(spec.passive_request(), p.name)
        roles[p.name] = lambda t, r=request, n=p.name: passive.train(
            t, r, frames[n], active=spec.active.name, model_path=tmp_path / f"{n}.json", caps=caps)
    out = net.run(roles)
    parts = {p.name: json.loads((tmp_path / f"{p.name}.json").read_text()) for p in spec.passives}
    return out[spec.active.name], parts


def _matrix(report_section) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in report_section["matrix"]], dtype=float)


@pytest.fixture(scope="module")
def tables():
    guest, host = datasets.load_hetero("breast")
    cols = [c for c in host.columns if c != "id"]
    return {"bank": guest, "insurer": host[["id", *cols[:4]]], "telco": host[["id", *cols[4:9]]]}


@pytest.mark.parametrize("names", [["bank", "insurer"], ["bank", "insurer", "telco"]])
def test_full_matrix_matches_numpy_on_the_joined_table(tmp_path, small_keypair, tables, names):
    frames = {n: tables[n] for n in names}
    result, _ = _run(_raw(names, reveal={"full_matrix": ["bank"]}), frames, tmp_path, small_keypair)
    corr = result.summary.figures["correlation"]
    joined = frames["bank"].drop(columns="y")
    for n in names[1:]:
        joined = joined.merge(frames[n], on="id")
    expected = np.corrcoef(joined.drop(columns="id").to_numpy().T)
    got = _matrix(corr)
    assert not np.isnan(got).any()
    assert np.abs(got - expected).max() < 1e-4
    assert corr["features"][0] == "bank:x0" and corr["features"][-1].startswith(names[-1] + ":")
    assert corr["rows"] == 569


def test_default_plan_gives_each_party_its_own_blocks(tmp_path, small_keypair, tables):
    result, parts = _run(_raw(["bank", "insurer", "telco"]), tables, tmp_path, small_keypair)
    names, got = result.summary.figures["correlation"]["features"], _matrix(result.summary.figures["correlation"])
    ins = [i for i, n in enumerate(names) if n.startswith("insurer:")]
    tel = [i for i, n in enumerate(names) if n.startswith("telco:")]
    assert np.isnan(got[np.ix_(ins, tel)]).all() and np.isnan(got[np.ix_(ins, ins)]).all()   # not the active's
    assert not np.isnan(got[np.ix_(range(10), ins + tel)]).any()
    blocks = {(b["rows"], b["columns"]): np.array(b["values"]) for b in parts["insurer"]["blocks"]}
    assert set(blocks) == {("insurer", "insurer"), ("insurer", "bank"), ("bank", "insurer"),
                           ("insurer", "telco"), ("telco", "insurer")}
    joined = tables["insurer"].merge(tables["telco"], on="id").drop(columns="id").to_numpy()
    assert np.abs(blocks[("insurer", "telco")] - np.corrcoef(joined.T)[:4, 4:]).max() < 1e-4


def test_a_party_left_out_of_receivers_learns_nothing(tmp_path, small_keypair, tables):
    result, parts = _run(_raw(["bank", "insurer"], reveal={"receivers": ["bank"]}),
                         {n: tables[n] for n in ("bank", "insurer")}, tmp_path, small_keypair)
    assert {(b["rows"], b["columns"]) for b in parts["insurer"]["blocks"]} == {("insurer", "insurer")}
    assert not np.isnan(_matrix(result.summary.figures["correlation"])[:10, 10:]).any()


def test_training_rows_only_when_rows_are_held_out(tmp_path, small_keypair, tables):
    raw = _raw(["bank", "insurer"], evaluation={"test_size": 0.25, "seed": 1})
    result, _ = _run(raw, {n: tables[n] for n in ("bank", "insurer")}, tmp_path, small_keypair)
    assert result.summary.figures["correlation"]["rows"] == result.n_train < 569


def test_constant_and_missing_columns_are_refused_by_name(tmp_path, small_keypair, tables):
    flat = tables["insurer"].assign(**{tables["insurer"].columns[2]: 3.0})
    with pytest.raises(DataError, match=f"insurer: column.*{flat.columns[2]}.*constant"):
        _run(_raw(["bank", "insurer"]), {"bank": tables["bank"], "insurer": flat}, tmp_path, small_keypair)
    holes = tables["bank"].copy()
    holes.loc[3, "x4"] = np.nan
    with pytest.raises(DataError, match="bank.*x4"):
        _run(_raw(["bank", "insurer"]), {"bank": holes, "insurer": tables["insurer"]}, tmp_path, small_keypair)


def test_reveal_section_is_checked_when_the_job_loads():
    with pytest.raises(JobSpecError, match=r"\[reveal\] names \['broker'\]"):
        parse_job(_raw(["bank", "insurer"], reveal={"full_matrix": ["broker"]}))
    with pytest.raises(JobSpecError, match="unknown keys"):
        parse_job(_raw(["bank", "insurer"], reveal={"everyone": True}))
    with pytest.raises(JobSpecError, match="list of distinct party names"):
        parse_job(_raw(["bank", "insurer"], reveal={"receivers": "bank"}))


def test_a_passive_refuses_a_plan_its_config_does_not_allow_before_the_psi():
    pearson = family("pearson")
    parties = ["bank", "insurer", "telco"]
    sections = {"reveal": {"full_matrix": ["telco"]}}
    pearson.check_passive(sections, parties, "insurer", PassiveCaps(1))                     # default: participants
    with pytest.raises(ProtocolError, match=r"revealed to \[.bank.\] only; the job reveals them to \['telco'\]"):
        pearson.check_passive(sections, parties, "insurer", PassiveCaps(1, reveal_to="initiator"))
    pearson.check_passive({"reveal": {"receivers": ["insurer"]}}, parties, "insurer", PassiveCaps(1, reveal_to=()))
    with pytest.raises(ProtocolError, match="no other party"):
        check_consent(RevealPlan.from_section({}, parties), "insurer", (), "bank")


def test_the_refusal_happens_at_the_passive_during_fit_too(tmp_path, small_keypair, tables):
    """A plan sent in the setup is checked against the passive's consent again (not only in the request)."""
    caps = PassiveCaps(max_rounds=1, allow_small_keys=True, reveal_to="initiator")
    with pytest.raises(ProtocolError, match="reveals them to"):
        _run(_raw(["bank", "insurer", "telco"]), tables, tmp_path, small_keypair, caps=caps)


def test_cross_plan_pairs_every_two_parties_once_and_prefers_the_cheaper_holder():
    plan = cross_plan(["a", "b", "c"], {"a": 13, "b": 10, "c": 40})
    pairs = [frozenset((h, m)) for h, ms in plan for m in ms]
    assert sorted(map(sorted, pairs)) == [["a", "b"], ["a", "c"], ["b", "c"]]
    holders = {frozenset((h, m)): h for h, ms in plan for m in ms}
    assert holders[frozenset("ac")] == "a" and holders[frozenset("bc")] == "b"   # c's 40 columns need 3+
    assert holders[frozenset("ab")] == "a"       # one ciphertext per row either way; b multiplies fewer columns


def test_string_ids_and_a_passive_with_one_column(tmp_path, small_keypair):
    rng = np.random.default_rng(3)
    ids = [f"cust-{i:05d}" for i in range(300)]
    a = pd.DataFrame({"id": ids, "y": rng.integers(0, 2, 300), "u": rng.normal(size=300), "v": rng.normal(size=300)})
    b = pd.DataFrame({"id": ids[::-1], "w": a["u"].to_numpy()[::-1] * 2 + 1})
    result, parts = _run(_raw(["bank", "insurer"]), {"bank": a, "insurer": b}, tmp_path, small_keypair)
    got = _matrix(result.summary.figures["correlation"])
    assert abs(got[0, 2] - 1.0) < 1e-4 and abs(got[1, 2] - np.corrcoef(a["v"], a["u"])[0, 1]) < 1e-4
