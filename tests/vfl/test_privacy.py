"""Label DP ([privacy]): the section is checked, the request carries it, training sees the
released labels only (drawn once, kept for a resume), the report states ε and its accounting."""
from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest
from jobs.test_flow import RAW, run_training
from sklearn.metrics import roc_auc_score

from vfl import datasets, registry
from vfl.errors import DataError
from vfl.holdout import evaluation_split
from vfl.jobs import active
from vfl.jobs.spec import JobSpecError, PassiveRequest, parse_job
from vfl.privacy import LabelPrivacy, account

SBT, LR = registry.family("secureboost"), registry.family("logistic_regression")


@pytest.mark.parametrize("table,family,message", [
    ({"label_epsilon": 1, "noise": 2}, LR, r"unknown keys \['noise'\]"),
    ({}, LR, r"label_epsilon must be a number in \(0, 50\]"),
    ({"label_epsilon": 0}, LR, "label_epsilon must be"),
    ({"label_epsilon": True}, LR, "label_epsilon must be"),
    ({"label_epsilon": 1, "mechanism": "laplace"}, LR, "mechanism must be one of"),
    ({"label_epsilon": 1, "prior_share": 0.3}, LR, "prior_share is for mechanism"),
    ({"label_epsilon": 1, "mechanism": "rr_with_prior", "prior_share": 1}, LR, r"prior_share must be .* \(0, 1\)"),
    ({"label_epsilon": 1}, registry.family("secureboost_regression"), "needs class labels"),
    ({"label_epsilon": 1}, registry.family("pearson"), "needs class labels; pearson has no labels"),
    ("eps=1", LR, "must be a table"),
])
def test_a_bad_privacy_section_is_named(table, family, message):
    with pytest.raises(ValueError, match=message):
        LabelPrivacy.from_section(table, family)


def test_the_job_and_its_request_carry_the_section():
    spec = parse_job({**RAW, "privacy": {"label_epsilon": 2, "mechanism": "rr_with_prior", "prior_share": 0.4}})
    assert spec.privacy == LabelPrivacy(2.0, "rr_with_prior", 0.4)
    request = PassiveRequest.parse(spec.passive_request(), "lab")
    assert request.privacy == spec.privacy
    assert parse_job(RAW).privacy is None and "privacy" not in parse_job(RAW).passive_request()
    assert spec.digest() != parse_job(RAW).digest()               # a resumed run must keep the same privacy
    with pytest.raises(JobSpecError, match=r"<job>: \[privacy\] label_epsilon must be"):
        parse_job({**RAW, "privacy": {"label_epsilon": -1}})
    bad = {**spec.passive_request(), "privacy": {"label_epsilon": "high"}}
    with pytest.raises(JobSpecError, match="the job request's .*label_epsilon"):
        PassiveRequest.parse(bad, "lab")


def test_the_accountant_states_epsilon_and_composes():
    assert account(1.5)["epsilon"] == pytest.approx(1.5, abs=1e-3)
    assert account(1.0, releases=4)["epsilon"] == pytest.approx(4.0, abs=1e-3)
    assert account(0.5, releases=40, delta=1e-5)["epsilon"] < 20.0      # tighter than adding up, with δ
    report = LabelPrivacy(2.0).report(3, 100)
    assert report["accounting"]["epsilon"] == pytest.approx(2.0, abs=1e-3) and report["delta"] == 0.0
    assert report["keep_probability"] == pytest.approx(np.exp(2) / (np.exp(2) + 2))


def test_a_prior_from_the_actives_columns_keeps_more_labels_right():
    guest, _ = datasets.load_hetero("breast")
    y, x = guest["y"].to_numpy().astype(int), guest.drop(columns=["id", "y"])
    wrong = {}
    for mechanism in ("randomized_response", "rr_with_prior"):
        draws = [LabelPrivacy(0.5, mechanism, 0.5).randomize(y, 2, x) for _ in range(12)]
        assert all(set(np.unique(d)) <= {0, 1} and d.shape == y.shape for d in draws)
        wrong[mechanism] = np.mean([(d != y).mean() for d in draws])
    assert abs(wrong["randomized_response"] - 1 / (1 + np.exp(0.5))) < 0.03       # ≈ 0.38 flipped
    assert wrong["rr_with_prior"] < wrong["randomized_response"] - 0.03          # ≈ 0.29 measured


def test_training_sees_only_the_released_labels(tmp_path, small_keypair):
    guest, host = datasets.load_hetero("breast")
    results = {}
    for eps in (0.05, 8.0):
        spec = parse_job({**RAW, "privacy": {"label_epsilon": eps}})
        spec = dataclasses.replace(spec, output_dir=str(tmp_path / str(eps)))
        _, out = run_training(spec, {"hospital": guest, "lab": host}, tmp_path / str(eps), small_keypair[1])
        results[eps] = out["hospital"]
    strong, weak = results[0.05], results[8.0]
    assert strong.privacy["label_epsilon"] == 0.05 and strong.privacy["mechanism"] == "randomized_response"
    assert strong.privacy["accounting"]["epsilon"] == pytest.approx(0.05, abs=1e-3)
    assert weak.evaluation.metrics["auc"] > 0.95                       # ε = 8 keeps nearly every label
    assert strong.evaluation.metrics["auc"] < weak.evaluation.metrics["auc"] - 0.05   # ε = 0.05 keeps ~51%
    # the held-out split is not stratified by label when labels are private
    ids = sorted(strong.train_ids + strong.test_ids)
    labels = guest.assign(id=guest["id"].astype(str)).set_index("id").loc[ids, "y"].to_numpy()
    _, test = evaluation_split(np.asarray(ids), labels, test_size=0.2, seed=3, stratify=False)
    assert sorted(strong.test_ids) == sorted(np.asarray(ids, dtype=object)[test].tolist())


def test_a_resumed_run_reuses_the_labels_it_released(tmp_path):
    spec = parse_job({**RAW, "privacy": {"label_epsilon": 0.3}})
    state = types.SimpleNamespace(directory=str(tmp_path / "state"), run="r1")
    y = np.tile([0, 1], 500)
    first = active._released_labels(spec, y, 2, None, state, resuming=False)
    again = active._released_labels(spec, y, 2, None, state, resuming=True)
    np.testing.assert_array_equal(first, again)
    assert (first != y).any()                                           # ε = 0.3 flips ≈ 43%
    fresh = active._released_labels(spec, y, 2, None, None, resuming=False)
    assert not np.array_equal(fresh, first)                             # a new run draws anew
    (tmp_path / "state" / active.LABELS_FILE).unlink()
    with pytest.raises(DataError, match="would spend ε twice"):
        active._released_labels(spec, y, 2, None, state, resuming=True)
    assert roc_auc_score(y, first) < 0.75


@pytest.mark.parametrize("protocol,solver,passives", [
    ("label_key", "sgd", 1), ("feature_key", "sgd", 1), ("label_key", "lbfgs", 2), ("feature_key", "lbfgs", 2),
    ("secureboost", None, 2)])
def test_every_protocol_and_solver_trains_on_the_released_labels(tmp_path, small_keypair, monkeypatch,
                                                                 protocol, solver, passives):
    """A release that flips every label: whichever LR protocol and solver (or SecureBoost), with
    one passive or two, the model learns the flipped labels (held-out AUC on the true ones far
    below 0.5)."""
    monkeypatch.setattr(active, "_released_labels", lambda spec, y, *a: 1 - np.asarray(y))
    guest, host = datasets.load_hetero("breast")
    columns = [c for c in host.columns if c != "id"]
    halves = {"lab": columns[: len(columns) // 2], "imaging": columns[len(columns) // 2:]}
    names = ["lab", "imaging"][:passives]
    frames = {"hospital": guest, **{n: host[["id", *halves[n]]] if passives > 1 else host for n in names}}
    if protocol == "secureboost":
        job, model = {**RAW["job"], "model": "secureboost"}, {"n_estimators": 2, "max_depth": 2, "random_state": 0}
    else:
        job = RAW["job"]
        model = {"protocol": protocol, "solver": solver, "random_state": 0,
                 **({"epochs": 2, "batch_size": 64, "learning_rate": 0.3} if solver == "sgd" else {"epochs": 8})}
    raw = {**RAW, "job": job, "model": model, "privacy": {"label_epsilon": 1.0},
           "parties": {"hospital": RAW["parties"]["hospital"],
                       **{n: {"role": "passive", "data": f"{n}.csv", "alias": n} for n in names}}}
    spec = dataclasses.replace(parse_job(raw), output_dir=str(tmp_path))
    _, out = run_training(spec, frames, tmp_path, small_keypair[1])
    assert out["hospital"].privacy["label_epsilon"] == 1.0
    assert out["hospital"].evaluation.metrics["auc"] < 0.1


SBT_RAW = {**RAW, "job": {**RAW["job"], "model": "secureboost"},
           "model": {"n_estimators": 3, "max_depth": 3, "random_state": 0}}


def _sbt_auc(tmp_path, key, privacy):
    guest, host = datasets.load_hetero("breast")
    spec = dataclasses.replace(parse_job({**SBT_RAW, **({"privacy": privacy} if privacy else {})}),
                               output_dir=str(tmp_path))
    net, out = run_training(spec, {"hospital": guest, "lab": host}, tmp_path, key)
    return out["hospital"], net


def test_gradient_noise_is_calibrated_reported_and_costs_accuracy_as_epsilon_falls(tmp_path, small_keypair):
    plain, _ = _sbt_auc(tmp_path / "plain", small_keypair[1], None)
    loose, _ = _sbt_auc(tmp_path / "loose", small_keypair[1], {"label_epsilon": 50, "mechanism": "gradient_noise"})
    tight, _ = _sbt_auc(tmp_path / "tight", small_keypair[1],
                        {"label_epsilon": 0.05, "mechanism": "gradient_noise", "delta": 1e-5})
    report = tight.privacy
    assert report["mechanism"] == "gradient_noise" and report["delta"] == 1e-5 and report["rounds"] == 3
    assert report["accounting"]["releases"] == 3 and report["accounting"]["epsilon"] <= 0.05
    assert report["noise_sigma"] > 20 * loose.privacy["noise_sigma"]
    auc = {name: r.evaluation.metrics["auc"] for name, r in (("plain", plain), ("loose", loose), ("tight", tight))}
    assert auc["loose"] > auc["plain"] - 0.03, auc                  # ε = 50: nearly the plain model
    assert auc["tight"] < auc["loose"] - 0.1, auc                   # ε = 0.05: σ of hundreds of labels


def test_gradient_noise_is_drawn_once_per_round_and_kept_for_a_resume(tmp_path):
    from vfl.privacy import GRID, GradientNoise
    noise = GradientNoise(3.0, rounds=2, releases=2, directory=tmp_path)
    first = noise.draw(0, (4000,))
    assert np.array_equal(first, GradientNoise(3.0, 2, 2, tmp_path).draw(0, (4000,)))   # the resumed run's
    assert not np.array_equal(first, noise.draw(1, (4000,)))                            # the next round's
    assert np.array_equal(first * GRID, np.round(first * GRID))                         # on the grid
    assert abs(first.std() - 3.0) < 0.15 and abs(first.mean()) < 0.15
    assert oct((tmp_path / "gradient_noise_0.npy").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(ValueError, match="holds noise of shape"):
        noise.draw(0, (10,))


@pytest.mark.parametrize("epsilon,releases", [(1.0, 3), (8.0, 3), (2.0, 40)])
def test_the_calibrated_sigma_is_the_smallest_that_keeps_epsilon(epsilon, releases):
    from vfl.privacy import calibrate_sigma, gaussian_epsilon
    sigma = calibrate_sigma(epsilon, 1e-6, releases)
    assert gaussian_epsilon(sigma, releases, 1e-6) <= epsilon < gaussian_epsilon(sigma / 1.02, releases, 1e-6)


def test_gradient_noise_is_offered_by_secureboost_only_and_takes_a_delta():
    with pytest.raises(ValueError, match="logistic_regression does not offer mechanism = \"gradient_noise\""):
        LabelPrivacy.from_section({"label_epsilon": 1, "mechanism": "gradient_noise"}, LR)
    with pytest.raises(ValueError, match="delta is for mechanism = \"gradient_noise\""):
        LabelPrivacy.from_section({"label_epsilon": 1, "delta": 1e-6}, SBT)
    with pytest.raises(ValueError, match=r"delta must be a number in \(0, 0.001\]"):
        LabelPrivacy.from_section({"label_epsilon": 1, "mechanism": "gradient_noise", "delta": 0}, SBT)
    section = LabelPrivacy.from_section({"label_epsilon": 1, "mechanism": "gradient_noise"}, SBT)
    assert section.delta == 1e-6 and section.to_section()["delta"] == 1e-6
