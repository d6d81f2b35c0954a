"""The hetero LR attacks: the passive's label inference from its gradients (either protocol) and
the active's reconstruction of the passive's columns from its partial scores each find a leak
where one is known (the passive's columns are noise, uncorrelated with the active's), and label
DP shrinks the first."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from jobs.test_flow import run_training

from vfl.attacks import linear as attacks
from vfl.jobs.spec import parse_job
from vfl.linear import messages as msg
from vfl.linear.feature_key import FeatureKeyPassiveTrainer
from vfl.linear.training import PassiveTrainer

LR = {
    "job": {"name": "attack", "model": "logistic_regression"},
    "evaluation": {"test_size": 0.2, "seed": 1},
    "model": {"solver": "sgd", "epochs": 8, "batch_size": 16, "learning_rate": 0.1, "random_state": 0},
    "parties": {"bank": {"role": "active", "data": "g.csv", "label": "y"},
                "lab": {"role": "passive", "data": "h.csv", "alias": "lab"}},
}


def _tables(n=500, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] - x[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(int)
    ids = [f"c{i}" for i in range(n)]
    guest = pd.DataFrame({"id": ids, "a0": x[:, 0], "a1": x[:, 1], "a2": x[:, 2], "y": y})
    host = pd.DataFrame({"id": ids, **{f"p{j}": (j + 1) * rng.normal(size=n) + j for j in range(3)}})   # noise
    return guest, host


@pytest.fixture(scope="module")
def runs(tmp_path_factory, small_keypair):
    """One training run per (protocol, privacy), made when a test first asks for it."""
    cache = {}

    def run(protocol="label_key", privacy=None, features=None):
        if (protocol, privacy, features) not in cache:
            guest, host = _tables()
            section = {**({"label_epsilon": privacy} if privacy else {}),
                       **({"feature_epsilon": features} if features else {})}
            raw = {**LR, "model": {**LR["model"], "protocol": protocol}, **({"privacy": section} if section else {})}
            tmp = tmp_path_factory.mktemp(protocol)
            spec = dataclasses.replace(parse_job(raw), output_dir=str(tmp))
            with attacks.recording_passive_gradients() as views:
                net, out = run_training(spec, {"bank": guest, "lab": host}, tmp, small_keypair[1])
            ids = out["bank"].train_ids
            setup = next(m for _, m in net["lab"].received if isinstance(m, msg.Setup))
            cache[protocol, privacy, features] = dict(
                net=net, result=out["bank"], view=views["lab"], setup=setup,
                own=host.set_index("id").loc[ids, ["p0", "p1", "p2"]],
                active_x=guest.set_index("id").loc[ids, ["a0", "a1", "a2"]],
                y=guest.set_index("id").loc[ids, "y"].to_numpy())
        return cache[protocol, privacy, features]
    return run


@pytest.mark.parametrize("protocol", ["label_key", "feature_key"])
def test_the_passive_infers_labels_from_its_gradients(runs, protocol):
    run = runs(protocol)
    assert len(run["view"].steps) == 8 * (len(run["setup"].train_index) // 16)       # every batch recorded
    out = attacks.label_inference(run["view"], run["y"], known_share=0.02)
    assert abs(out["baseline_auc"] - 0.5) < 0.1                    # its own columns say nothing
    assert out["attack_auc"] > 0.85 and out["gain"] > 0.3         # its gradients say a lot
    assert out["residual_auc"] > 0.85                             # even without a known label


def test_both_protocols_hand_the_passive_the_same_gradients(runs):
    label_key, feature_key = runs("label_key")["view"], runs("feature_key")["view"]
    for (rows_a, g_a), (rows_b, g_b) in zip(label_key.steps, feature_key.steps):
        np.testing.assert_array_equal(rows_a, rows_b)
        np.testing.assert_allclose(g_a, g_b, atol=1e-4)


def test_label_dp_lowers_the_label_inference(runs):
    plain = attacks.label_inference(runs()["view"], runs()["y"], known_share=0.02)
    noisy_run = runs(privacy=0.1)
    assert noisy_run["result"].privacy["label_epsilon"] == 0.1
    noisy = attacks.label_inference(noisy_run["view"], noisy_run["y"], known_share=0.02)
    assert noisy["attack_auc"] < plain["attack_auc"] - 0.2 and noisy["residual_auc"] < 0.65


def test_the_active_reconstructs_the_passive_columns_from_partial_scores(runs):
    run = runs()
    out = attacks.feature_reconstruction(run["net"]["bank"].received, run["setup"], run["own"], passive="lab",
                                         active_x=run["active_x"], known_share=0.05)
    assert out["known_rows"] == round(0.05 * len(run["setup"].train_index)) and out["epochs"] == 8
    assert out["baseline_r2"] < 0.05                               # the active's columns say nothing of them
    assert out["attack_r2"] > 0.5 and min(out["attack_r2_per_feature"]) > 0.15


@pytest.mark.parametrize("protocol", ["label_key", "feature_key"])
def test_feature_dp_stops_the_reconstruction_and_keeps_the_model(runs, protocol):
    plain, noisy = runs(), runs(protocol, features=1.0)
    options = dict(passive="lab", active_x=noisy["active_x"], known_share=0.05)
    before = attacks.feature_reconstruction(plain["net"]["bank"].received, plain["setup"], plain["own"], **options)
    after = attacks.feature_reconstruction(noisy["net"]["bank"].received, noisy["setup"], noisy["own"], **options)
    assert before["attack_r2"] > 0.5 and after["attack_r2"] < 0.1            # what the scores told is gone
    features = noisy["result"].privacy["features"]
    assert features["feature_epsilon"] == 1.0 and features["noise_multiplier"] > 10
    assert noisy["result"].evaluation.metrics["auc"] > 0.9                   # the label lives in the active's columns
    spread = {name: np.std(np.concatenate([m.scores for _, m in r["net"]["bank"].received
                                           if isinstance(m, msg.PartialScores)]))
              for name, r in (("plain", plain), ("noisy", noisy))}
    assert spread["noisy"] > 10 * spread["plain"]                           # the noise the active sees


def test_recording_changes_nothing_and_is_undone():
    before = (PassiveTrainer.__dict__["_gradient"], FeatureKeyPassiveTrainer.__dict__["_gradient"])
    with attacks.recording_passive_gradients() as views:
        assert PassiveTrainer.__dict__["_gradient"] is not before[0]
    assert (PassiveTrainer.__dict__["_gradient"], FeatureKeyPassiveTrainer.__dict__["_gradient"]) == before
    assert views == {}


def test_residuals_are_exact_when_the_batches_determine_them():
    rng = np.random.default_rng(3)
    x, d = rng.normal(size=(12, 4)), rng.uniform(-1, 1, size=12)
    steps = [(rows, x[rows].T @ d[rows]) for e in range(3) for rows in np.split(rng.permutation(12), 2)]
    np.testing.assert_allclose(attacks.residual_estimates(attacks.PassiveView(x, steps), damp=0), d, atol=1e-6)
    with pytest.raises(ValueError, match="no gradient"):
        attacks.residual_estimates(attacks.PassiveView(x))


def test_partial_scores_that_do_not_follow_the_batches_are_refused(runs):
    setup = runs()["setup"]
    with pytest.raises(ValueError, match="'lbfgs' solver"):
        attacks.score_observations([], dataclasses.replace(setup, solver="lbfgs"), "lab")
    with pytest.raises(ValueError, match="no partial scores of a whole epoch"):
        attacks.score_observations([], setup, "lab")
    wrong = [("lab", msg.PartialScores(np.zeros(3)))] * 10_000
    with pytest.raises(ValueError, match="do not follow"):
        attacks.score_observations(wrong, setup, "lab")
