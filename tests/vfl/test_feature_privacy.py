"""Feature DP for hetero LR ([privacy] feature_epsilon): the section is checked against the family
and the solver, the request and the setup carry it and a passive refuses a setup that differs,
the noise multiplier keeps ε by dp-accounting, each epoch's noise is drawn once and kept, and what
a passive sends is clipped, rounded and noised. The attack it stops is in test_attacks_linear.py."""
from __future__ import annotations

import dataclasses
import types

import numpy as np
import pandas as pd
import pytest

from vfl import registry
from vfl.jobs.spec import JobSpecError, PassiveRequest, parse_job
from vfl.linear import messages as msg
from vfl.linear.setup import check_setup
from vfl.privacy import GRID, FeatureNoise, FeaturePrivacy, parse_privacy

LR, SBT = registry.family("logistic_regression"), registry.family("secureboost")
JOB = {"job": {"name": "fdp", "model": "logistic_regression"}, "evaluation": {"test_size": 0.2},
       "model": {"solver": "sgd", "epochs": 5, "batch_size": 32},
       "parties": {"bank": {"role": "active", "data": "a.csv", "label": "y"},
                   "lab": {"role": "passive", "data": "b.csv"}}}


@pytest.mark.parametrize("table,family,message", [
    ({}, LR, "sets neither label_epsilon nor feature_epsilon"),
    ({"feature_epsilon": 1, "noise": 2}, LR, r"unknown keys \['noise'\]"),
    ({"feature_epsilon": 0}, LR, r"feature_epsilon must be a number in \(0, 50\]"),
    ({"feature_epsilon": True}, LR, "feature_epsilon must be"),
    ({"feature_clip": 2.0}, LR, "need feature_epsilon"),
    ({"feature_epsilon": 1, "feature_delta": 0.01}, LR, r"feature_delta must be a number in \(0, 0.001\]"),
    ({"feature_epsilon": 1, "weight_clip": -1}, LR, "weight_clip must be"),
    ({"feature_epsilon": 1, "feature_clip": 0.001}, LR, r"feature_clip must be a number in \[0.01, 100\]"),
    ({"feature_epsilon": 1}, SBT, "secureboost does not offer feature privacy"),
    ({"feature_epsilon": 1}, registry.family("linear_regression"), "linear_regression does not offer"),
])
def test_a_bad_feature_privacy_section_is_named(table, family, message):
    with pytest.raises(ValueError, match=message):
        parse_privacy(table, family)


def test_either_part_stands_alone_or_both_together():
    labels, features = parse_privacy({"feature_epsilon": 2}, LR)
    assert labels is None and features == FeaturePrivacy(2.0, 1e-6, 1.0, 1.0)
    labels, features = parse_privacy({"label_epsilon": 1, "feature_epsilon": 2, "weight_clip": 3}, LR)
    assert labels.label_epsilon == 1 and features.weight_clip == 3


@pytest.mark.parametrize("model,message", [
    ({"epochs": 5}, "needs solver = \"sgd\""),                                # L-BFGS is the default
    ({"solver": "sgd", "approximation": "taylor"}, "needs approximation = \"none\""),
])
def test_the_job_file_names_a_training_the_dp_is_not_stated_for(model, message):
    with pytest.raises(JobSpecError, match=message):
        parse_job({**JOB, "model": model, "privacy": {"feature_epsilon": 1}})


def test_feature_dp_standardizes_with_held_out_rows_so_a_job_must_hold_some_out():
    no_test = {**JOB, "evaluation": {"test_size": 0.0}, "privacy": {"feature_epsilon": 1}}
    with pytest.raises(JobSpecError, match="needs \\[evaluation\\] test_size > 0"):
        parse_job(no_test)
    with pytest.raises(JobSpecError, match="test_size > 0"):                       # whatever the model's scaling
        parse_job({**no_test, "model": {**JOB["model"], "standardize": False}})


def test_a_passive_under_feature_dp_takes_its_scale_from_the_held_out_rows():
    from vfl.linear.model import PassiveLinearModel
    train, held_out = np.random.default_rng(0).normal(size=(50, 2)), np.array([[10.0, 0.0], [14.0, 2.0]])
    noise = FeatureNoise(FeaturePrivacy(1.0), reference=held_out)
    assert np.array_equal(PassiveLinearModel._reference(train, noise, None), held_out)
    assert PassiveLinearModel._reference(train, None, None) is train
    with pytest.raises(ValueError, match="give FeatureNoise a reference"):
        PassiveLinearModel._reference(train, FeatureNoise(FeaturePrivacy(1.0)), None)


def test_the_job_and_its_request_carry_both_parts():
    spec = parse_job({**JOB, "privacy": {"feature_epsilon": 3, "feature_clip": 0.5, "label_epsilon": 2}})
    request = PassiveRequest.parse(spec.passive_request(), "lab")
    assert request.feature_privacy == spec.feature_privacy == FeaturePrivacy(3.0, 1e-6, 0.5, 1.0)
    assert request.privacy == spec.privacy and spec.privacy.label_epsilon == 2
    without = parse_job(JOB)
    assert without.feature_privacy is None and "privacy" not in without.passive_request()


@pytest.mark.parametrize("epsilon,epochs", [(1.0, 5), (8.0, 10), (0.5, 30)])
def test_the_multiplier_is_the_smallest_that_keeps_epsilon(epsilon, epochs):
    from dp_accounting import dp_event
    from dp_accounting.rdp import rdp_privacy_accountant

    def spent(m):
        accountant = rdp_privacy_accountant.RdpAccountant()
        accountant.compose(dp_event.GaussianDpEvent(m), 2 * epochs)
        return accountant.get_epsilon(1e-6)
    m = FeaturePrivacy(epsilon).multiplier(epochs)
    assert spent(m) <= epsilon < spent(m / 1.005)
    assert FeaturePrivacy(epsilon).multiplier(2 * epochs) > m                 # more epochs, more noise


def test_noise_is_drawn_once_per_epoch_kept_and_on_the_grid(tmp_path):
    noise = FeatureNoise(FeaturePrivacy(4.0), tmp_path)
    noise.start(epochs=5, n_features=4)
    assert noise.clip == pytest.approx(2.0) and noise.score_step == pytest.approx(2 * 2.0 * 1.0 / GRID)
    assert noise.row_clip == pytest.approx(2.0 - 2 * 2.0 ** -17)       # room for the fixed point's rounding
    first = noise.draw(0, 3000)
    resumed = FeatureNoise(FeaturePrivacy(4.0), tmp_path)
    resumed.start(5, 4)
    assert np.array_equal(first, resumed.draw(0, 3000))                      # a resumed run's epoch 0
    assert not np.array_equal(first, noise.draw(1, 3000))
    assert abs(first.std() / noise.sigma_steps - 1) < 0.05
    assert noise.sigma_steps == pytest.approx(FeaturePrivacy(4.0).multiplier(5) * (GRID + 2))
    assert oct((tmp_path / "feature_noise_0.npy").stat().st_mode & 0o777) == "0o600"
    released = FeatureNoise.release(np.array([0.1234, -3.0]), np.array([5, -2]), noise.score_step)
    assert np.allclose(released / noise.score_step, np.round(released / noise.score_step))
    assert np.allclose(released, (np.rint(np.array([0.1234, -3.0]) / noise.score_step) + [5, -2]) * noise.score_step)


def test_rows_and_weights_are_clipped_to_their_bounds():
    noise = FeatureNoise(FeaturePrivacy(1.0, feature_clip=0.5, weight_clip=2.0))
    noise.start(3, 9)                                                        # rows clipped to 0.5·√9 = 1.5
    x = np.array([[3.0, 4.0] + [0.0] * 7, [0.3, 0.4] + [0.0] * 7])
    clipped = noise.clip_rows(x)
    assert np.allclose(np.linalg.norm(clipped, axis=1), [1.5, 0.5], atol=1e-4)
    fixed = np.rint(clipped * 2.0 ** 16) / 2.0 ** 16                         # as the gradient encodes them
    assert np.linalg.norm(fixed, axis=1).max() <= 1.5
    assert np.allclose(noise.project(np.array([3.0, 4.0])), [1.2, 1.6])
    assert np.array_equal(noise.project(np.array([0.3, 0.4])), [0.3, 0.4])


def _setup(feature_privacy):
    return msg.Setup(public_key=None, task="logistic", n_rows=100, train_index=np.arange(80),
                     val_index=np.arange(80, 100), epochs=3, batch_size=20, batch_seed=1, learning_rate=0.1,
                     lr_schedule="constant", lr_decay=0.0, penalty="l2", alpha=0.0, residual_frac_bits=24,
                     protocol="feature_key", solver="sgd", feature_privacy=feature_privacy)


@pytest.mark.parametrize("promised,sent", [
    (FeaturePrivacy(1.0), None),                                 # the active dropped the noise
    (FeaturePrivacy(1.0), FeaturePrivacy(8.0).to_section()),     # or weakened it
    (None, FeaturePrivacy(1.0).to_section()),                    # or asks for what the request did not say
])
def test_a_passive_refuses_a_setup_that_is_not_the_promised_feature_privacy(promised, sent):
    from vfl.errors import ProtocolError
    passive = types.SimpleNamespace(key_bits=2048, max_epochs=10, allow_insecure_key_size_for_tests=False,
                                    mask_bits=64)
    noise = None if promised is None else FeatureNoise(promised)
    with pytest.raises(ProtocolError, match="feature privacy"):
        check_setup(_setup(sent), passive, np.zeros((100, 3)), "bank", noise)
    check_setup(_setup(None if promised is None else promised.to_section()), passive, np.zeros((100, 3)), "bank",
                noise)                                                      # the same: accepted


def test_the_report_states_feature_dp():
    report = FeaturePrivacy(2.0).report(epochs=10)
    assert report["releases_per_row"] == 20 and report["accounting"]["library"] == "dp-accounting (RDP)"
    assert report["noise_multiplier"] == FeaturePrivacy(2.0).multiplier(10)
    assert dataclasses.asdict(FeaturePrivacy(2.0)).items() <= report.items()


def test_a_passive_part_keeps_its_row_clip_for_prediction(tmp_path):
    from vfl.linear.model import PassiveLinearModel
    model = PassiveLinearModel()
    model.coef_, model.mean_, model.scale_ = np.array([1.0, 1.0]), np.zeros(2), np.ones(2)
    model.n_epochs_, model.task_, model.n_features_in_, model.row_clip_ = 3, "logistic", 2, 1.5
    model.save(tmp_path / "part.json")
    loaded = PassiveLinearModel.load(tmp_path / "part.json")
    assert loaded.row_clip_ == 1.5

    class Transport:
        party, sent = "lab", []

        def in_phase(self, name):
            import contextlib
            return contextlib.nullcontext()

        def recv(self, peer, kind):
            return msg.ScoreRequest(n_rows=2)

        def send(self, peer, message):
            self.sent.append(message)
    t = Transport()
    loaded.serve_scores(np.array([[3.0, 4.0], [0.3, 0.4]]), transport=t, active="bank")
    np.testing.assert_allclose(t.sent[0].scores, [1.5 * 7 / 5, 0.7])      # the long row scaled to norm 1.5


def test_a_replayed_batch_must_arrive_at_the_gradient_used_before(tmp_path):
    noise = FeatureNoise(FeaturePrivacy(1.0), tmp_path)
    first, second = np.array([5, -3, 7]), np.array([1, 2, 3])
    noise.record(0, 0, first)
    noise.record(0, 1, second)
    noise.record(0, 0, first)                                  # a resumed run replays batch 0 alike: fine
    with pytest.raises(ValueError, match="batch 1 differs from the one this party used"):
        noise.record(0, 1, second + np.array([0, 0, 1]))
    with pytest.raises(ValueError, match="comes after 2 recorded"):
        noise.record(0, 5, first)
    noise.record(1, 0, first)                                  # another epoch, another record
    assert oct((tmp_path / "feature_released_0.bin").stat().st_mode & 0o777) == "0o600"
    (tmp_path / "feature_released_1.bin").write_bytes(b"\x00" * 5)
    with pytest.raises(ValueError, match="damaged"):
        noise.record(1, 0, first)


def test_a_passive_refuses_to_leave_most_rows_unprotected(tmp_path, small_keypair):
    from jobs.test_flow import run_training

    from vfl.errors import PeerFailedError, ProtocolError
    rng = np.random.default_rng(0)
    ids = [f"c{i}" for i in range(200)]
    guest = pd.DataFrame({"id": ids, "a0": rng.normal(size=200), "y": rng.integers(0, 2, 200)})
    host = pd.DataFrame({"id": ids, "p0": rng.normal(size=200), "p1": rng.normal(size=200)})
    raw = {**JOB, "parties": {"bank": {"role": "active", "data": "a.csv", "label": "y"},
                              "lab": {"role": "passive", "data": "b.csv", "alias": "lab"}},
           "evaluation": {"test_size": 0.6}, "privacy": {"feature_epsilon": 2.0}}
    spec = dataclasses.replace(parse_job(raw), output_dir=str(tmp_path))
    with pytest.raises((ProtocolError, PeerFailedError), match="at most half|lab"):
        run_training(spec, {"bank": guest, "lab": host}, tmp_path, small_keypair[1])
