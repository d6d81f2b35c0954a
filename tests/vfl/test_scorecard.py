"""The scorecard pipeline (binning → selection → LR on WOE → points) equals the same pipeline run
centrally: the same features kept, the LR optimum within 1e-3 of scikit-learn's, every score the
base points plus each party's points for the row's bins; 2 and 3 parties, text columns and
missing values, correlation selection, reason codes only as each passive allows."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.stats import ks_2samp

from parties.transport.inprocess import InProcessNetwork
from vfl import datasets, registry
from vfl.binning.bins import ColumnBins, column_values
from vfl.errors import ProtocolError
from vfl.family import PassiveCaps
from vfl.jobs import active, passive
from vfl.jobs.baseline import centralized_baseline
from vfl.jobs.spec import JobSpecError, PassiveRequest, parse_job
from vfl.scorecard import card
from vfl.scorecard.model import ActiveScorecard

FAMILY = registry.family("scorecard")


def _frames(n_passives: int) -> dict[str, pd.DataFrame]:
    guest, host = datasets.load_hetero("breast")
    host = host.sample(frac=1.0, random_state=4).reset_index(drop=True)
    host["grade"] = np.where(host["x3"] > 0.4, "high", np.where(host["x3"] > -0.6, "mid", "low"))
    host.loc[host.index[:30], "x5"] = np.nan
    guest = guest.copy()
    guest["id"] = "c" + guest["id"].astype(str)          # string ids
    host["id"] = "c" + host["id"].astype(str)
    frames = {"bank": guest}
    cols = ["x0", "x1", "x2", "grade", "x5"] + [f"x{i}" for i in range(10, 20)]
    for i, part in enumerate(np.array_split(np.array(cols, dtype=object), n_passives)):
        frames[f"p{i}"] = host[["id", *part]]
    return frames


def _run(frames, tmp_path, key, sections=None, caps=None):
    names = list(frames)
    raw = {"job": {"name": "card", "model": "scorecard"}, "model": {"key_bits": 1024},
           "evaluation": {"test_size": 0.25, "seed": 1}, **(sections or {}),
           "parties": {n: {"role": "active" if i == 0 else "passive", "data": f"{n}.csv",
                           **({"label": "y"} if i == 0 else {})} for i, n in enumerate(names)}}
    spec = dataclasses.replace(parse_job(raw), output_dir=str(tmp_path))
    net = InProcessNetwork(names, timeout=120)
    roles = {names[0]: lambda t: active.train(t, spec, frames[names[0]], private_key=key, verbose=False)}
    for p in spec.passives:
        request = PassiveRequest.parse(spec.passive_request(), p.name)
        c = (caps or {}).get(p.name, PassiveCaps(max_rounds=200, allow_small_keys=True))
        roles[p.name] = lambda t, r=request, n=p.name, c=c: passive.train(
            t, r, frames[n], active=names[0], model_path=tmp_path / f"{n}.json", caps=c)
    out = net.run(roles)
    parts = {n: json.loads((tmp_path / f"{n}.json").read_text()) for n in names[1:]}
    return spec, out[names[0]], parts


def _points_of(frame: pd.DataFrame, part: dict) -> np.ndarray:
    """A party's points per row, from its model file's bins and points tables."""
    total = np.zeros(len(frame))
    for name, points in zip(part["names"], part["points"]):
        bins = ColumnBins.from_doc(part["bins"][name])
        total += np.asarray(points)[bins.assign(column_values(frame[name], bins))]
    return total


@pytest.mark.parametrize("n_passives", [1, 2])
def test_a_scorecard_equals_the_centralized_pipeline(tmp_path, small_keypair, n_passives):
    frames = _frames(n_passives)
    sections = {"binning": {"min_bin_size": 20}, "regression": {"alpha": 0.002}}
    if n_passives == 2:
        sections["selection"] = {"max_correlation": 0.8}
    spec, result, parts = _run(frames, tmp_path, small_keypair[1], sections)
    figures = result.summary.figures
    base = centralized_baseline(spec, frames, result)
    kept = len(figures["selection"]["kept"])
    assert f"same bins and selection, {kept} features" in base.model                 # the same selection
    if n_passives == 2:
        assert figures["selection"]["dropped_correlated"]
    assert abs(result.summary.curves.loss[-1] - base.training_loss) < 1e-3
    assert abs(result.evaluation.metrics["auc"] - base.evaluation.metrics["auc"]) <= 0.002
    # every held-out score is the base points plus each party's points for the row's bins
    model = ActiveScorecard.load(tmp_path / "model" / "bank.json")
    test = pd.Index(result.test_ids)
    scores = model.offset_ - model.factor_ * result.evaluation.test.scores
    expect = model.base_points_ + _points_of(frames["bank"].set_index("id").loc[test], model._card_doc("active"))
    for p, part in parts.items():
        expect += _points_of(frames[p].set_index("id").loc[test], part)
    assert np.allclose(scores, expect, atol=1e-6)
    assert "values" in figures["bins"]["bank:x0"] and "values" not in figures["bins"]["p0:feature 0"]   # edges stay
    top = result.evaluation.figures["top_reason_codes"]
    assert sum(r["rows"] for r in top) <= len(test) and top[0]["rows"] >= top[-1]["rows"]
    table = pd.DataFrame(model.table())
    assert set(table["feature"]) == set(model.names_) and len(table) == sum(len(p) for p in model.points_)


def test_points_follow_the_stated_scaling():
    factor, offset = card.scaling(pdo=20, base_score=600, base_odds=50)
    score = lambda z: offset - factor * z                     # noqa: E731 - z: log-odds of an event
    assert score(-math.log(50)) == pytest.approx(600)          # non-event:event odds 50 at 600 points
    assert score(-math.log(100)) == pytest.approx(620)         # doubled 20 points later
    pts = card.feature_points(np.array([0.5]), np.array([0.1]), np.array([2.0]), [np.array([-1.0, 0.0, 1.0])], factor)
    assert np.allclose(pts[0], -factor * 0.5 * (np.array([-1.0, 0.0, 1.0]) - 0.1) / 2.0)


def test_reason_codes_name_a_passives_features_only_where_it_allows(tmp_path, small_keypair):
    frames = _frames(2)
    caps = {"p0": PassiveCaps(max_rounds=200, allow_small_keys=True, share_reasons=True),
            "p1": PassiveCaps(max_rounds=200, allow_small_keys=True)}
    spec, result, parts = _run(frames, tmp_path, small_keypair[1], {"binning": {"min_bin_size": 20}}, caps)
    model = ActiveScorecard.load(tmp_path / "model" / "bank.json")
    assert model.cards_["p0"]["names"] == parts["p0"]["names"] and model.cards_["p1"]["names"] == []
    x = frames["bank"].set_index("id").loc[pd.Index(result.test_ids)].reset_index()
    net = InProcessNetwork(list(frames), timeout=60)
    test = pd.Index(result.test_ids)
    from vfl.scorecard.model import PassiveScorecard
    roles = {"bank": lambda t: model.decision_function(x, transport=t, passives=["p0", "p1"])}
    for p in ("p0", "p1"):
        served = PassiveScorecard.load(tmp_path / f"{p}.json")
        roles[p] = lambda t, m=served, p=p: m.serve_scores(frames[p].set_index("id").loc[test].reset_index(),
                                                           transport=t, active="bank")
    z = net.run(roles)["bank"]
    assert np.allclose(z, result.evaluation.test.scores)
    cols = FAMILY.prediction_columns(model, z)
    assert np.allclose(cols["probability"], expit(z)) and np.allclose(cols["score"], model.offset_ - model.factor_ * z)
    reasons = np.concatenate([cols[f"reason_{k}"] for k in (1, 2, 3)])
    assert any(r.startswith("p0:") for r in reasons) and not any(r.startswith("p1:") for r in reasons)
    assert set(reasons) <= {*model.names_, *(f"p0:{n}" for n in parts["p0"]["names"]), "p1 (its features)", ""}
    lost = np.column_stack([cols[f"reason_{k}_points"] for k in (1, 2, 3)])
    assert np.all(np.diff(lost, axis=1) <= 1e-9) and np.all(lost >= 0)


def test_a_passive_below_its_minimum_is_left_out_whole(tmp_path, small_keypair):
    frames = _frames(2)
    caps = {"p0": PassiveCaps(max_rounds=200, allow_small_keys=True, min_features=50),
            "p1": PassiveCaps(max_rounds=200, allow_small_keys=True)}
    _, result, parts = _run(frames, tmp_path, small_keypair[1], {"binning": {"min_bin_size": 20}}, caps)
    assert parts["p0"]["names"] == [] and parts["p1"]["names"]
    assert "p0:" in result.summary.figures["selection"]["left_out"][0]
    assert result.evaluation.metrics["auc"] > 0.95


def test_selection_by_iv_top_k_and_correlation():
    iv = {"a": 0.5, "b": 0.3, "c": 0.01, "d": 0.2, "e": 0.4}
    bins = {"a": 4, "b": 3, "c": 5, "d": 2, "e": 1}
    assert card.select_by_iv(iv, bins, 0.02, None) == ["a", "b", "d"]       # c: weak, e: one bin
    assert card.select_by_iv(iv, bins, 0.02, 2) == ["a", "b"]
    assert card.select_by_iv({**iv, "z": 0.0}, {**bins, "z": 3}, 0.0, None) == ["a", "b", "d", "c"]   # z: flat WOE
    corr = np.array([[1.0, 0.9, 0.1], [0.9, 1.0, 0.75], [0.1, 0.75, 1.0]])
    kept, dropped = card.drop_correlated(["a", "b", "d"], corr, iv, 0.7)
    assert kept == ["a", "d"] and dropped == [{"feature": "b", "correlated_with": "a", "correlation": 0.9}]


def test_ks_gains_and_population_stability():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    z = y + rng.normal(0, 1.2, 2000)
    ks, curve = card.ks(y, z)
    assert ks == pytest.approx(ks_2samp(z[y == 1], z[y == 0]).statistic, abs=1e-9)
    assert curve["population"][-1] == 1.0 and curve["events"][-1] == 1.0
    g = card.gains(y, z)
    assert sum(r["rows"] for r in g) == 2000 and g[-1]["cumulative_events_captured"] == 1.0
    assert g[0]["lift"] > 1 > g[-1]["lift"]
    edges = card.score_bands(z)
    same = card.population_stability_index(card.band_shares(z, edges), card.band_shares(z, edges))
    shifted = card.population_stability_index(card.band_shares(z, edges), card.band_shares(z + 1.0, edges))
    assert same == 0.0 and shifted > 0.25


def test_every_step_section_is_optional_and_checked():
    raw = {"job": {"name": "c", "model": "scorecard"},
           "parties": {"a": {"role": "active", "data": "a.csv", "label": "y"},
                       "b": {"role": "passive", "data": "b.csv"}}}
    assert parse_job(raw).sections == {}
    for section, table, word in (("selection", {"min_iv": -1}, "min_iv"), ("points", {"pdo": 0}, "pdo"),
                                 ("binning", {"bins": 5}, "bins"), ("regression", {"solver": "adam"}, "solver")):
        with pytest.raises(JobSpecError, match=word):
            parse_job({**raw, section: table})
    caps = PassiveCaps(max_rounds=10, reveal_to=("a",))
    FAMILY.check_passive({"selection": {"max_correlation": 0.7}}, ["a", "b"], "b", caps)   # the active may learn it
    with pytest.raises(ProtocolError, match="allows correlations"):
        FAMILY.check_passive({"selection": {"max_correlation": 0.7}}, ["a", "b"], "b",
                             PassiveCaps(max_rounds=10, reveal_to=()))
    FAMILY.check_passive({}, ["a", "b"], "b", PassiveCaps(max_rounds=10, reveal_to=()))   # no correlation: fine


@pytest.mark.parametrize("features,points", [(np.full((5, 2), 0.5), np.ones((5, 2))),          # float positions
                                             (np.zeros((5, 2), np.int64), np.full((5, 2), np.nan))])
def test_the_active_refuses_malformed_reason_codes_by_name(features, points):
    from vfl.binning.bins import numeric_bins
    from vfl.scorecard import messages as msg

    class Canned:                                     # the passive's reply, whatever is asked
        def __init__(self, reply):
            self.reply = reply

        def broadcast(self, message, peers):
            pass

        def recv(self, peer, kind):
            return self.reply

    model = ActiveScorecard()
    model.names_, model.bins_ = ["a"], {"a": numeric_bins(np.arange(100.0), 2, "quantile", 10)}
    model.points_, model.base_points_, model.reason_codes_ = [np.array([5.0, -5.0])], 600.0, 2
    model.cards_ = {"insurer": {"max_points": 10.0, "names": ["f1", "f2"], "features": 2}}
    reply = msg.PartialPoints(np.zeros(5), features, points)
    with pytest.raises(ProtocolError, match="insurer named reason codes"):
        model._score(pd.DataFrame({"a": np.arange(5.0)}), Canned(reply), ["insurer"])
