"""The job flow over the in-process transport: PSI → split → fit → evaluate → save, both sides,
for every built-in family; the same functions run over processes in tests/parties/commands."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from parties.transport.inprocess import InProcessNetwork
from vfl import datasets
from vfl.family import PassiveCaps
from vfl.jobs import active, passive
from vfl.jobs.baseline import centralized_baseline
from vfl.jobs.spec import JobSpecError, PassiveRequest, parse_job
from vfl.linear.messages import PartialScores
from vfl.report import JobReport, write_report

RAW = {
    "job": {"name": "roles", "model": "logistic_regression"},
    "evaluation": {"test_size": 0.2, "seed": 3},
    "model": {"epochs": 3, "batch_size": 64, "learning_rate": 0.3, "random_state": 0},
    "parties": {"hospital": {"role": "active", "data": "g.csv", "label": "y"},
                "lab": {"role": "passive", "data": "h.csv", "alias": "lab"}},
}
CAPS = PassiveCaps(max_rounds=50, allow_small_keys=True)


def run_training(spec, frames: dict, tmp_path, key):
    """Every party of ``spec`` in this process; returns the active's result and the passives'."""
    net = InProcessNetwork([p.name for p in spec.parties], timeout=60, record=True)
    roles = {spec.active.name: lambda t: active.train(t, spec, frames[spec.active.name], private_key=key,
                                                      verbose=False)}
    for p in spec.passives:
        request = PassiveRequest.parse(spec.passive_request(), p.name)
        roles[p.name] = lambda t, r=request, n=p.name: passive.train(
            t, r, frames[n], active=spec.active.name, model_path=tmp_path / "model" / f"{n}.json", caps=CAPS)
    return net, net.run(roles)


def test_training_with_partial_overlap(tmp_path, small_keypair):
    guest, host = datasets.load_hetero("breast")
    guest, host = guest.sample(frac=0.85, random_state=1), host.sample(frac=0.8, random_state=2)
    shared = len(set(guest["id"]) & set(host["id"]))
    spec = dataclasses.replace(parse_job(RAW), output_dir=str(tmp_path))
    net, out = run_training(spec, {"hospital": guest, "lab": host}, tmp_path, small_keypair[1])
    result, lab = out["hospital"], out["lab"]
    assert result.n_intersection == shared == lab.rows and result.n_train + result.n_test == shared
    assert result.evaluation.metrics["auc"] > 0.95 and result.evaluation.training_metrics is None
    scored = [m.scores for _, m in net["hospital"].received if isinstance(m, PartialScores)][-1]
    assert scored.shape == (result.n_test,)          # evaluation scored the held-out rows only
    assert result.features == {"hospital": [c for c in guest.columns if c not in ("id", "y")]}
    split = json.loads((tmp_path / "split.json").read_text())
    assert split == {"train_ids": result.train_ids, "test_ids": result.test_ids}


def test_private_psi_is_refused_for_training():
    with pytest.raises(JobSpecError, match="reveal which rows are real"):
        parse_job({**RAW, "psi": {"private": True}})


def test_no_held_out_rows_still_reports_training_metrics(tmp_path, small_keypair):
    guest, host = datasets.load_hetero("breast")
    raw = {**RAW, "evaluation": {}}
    spec = dataclasses.replace(parse_job(raw), output_dir=str(tmp_path))
    frames = {"hospital": guest, "lab": host}
    _, out = run_training(spec, frames, tmp_path, small_keypair[1])
    result = out["hospital"]
    assert result.n_test == 0 and result.evaluation.metrics is None and result.evaluation.test is None
    assert result.evaluation.training_metrics["auc"] > 0.95
    baseline = centralized_baseline(spec, frames, result)
    assert baseline.evaluation.metrics is None and baseline.evaluation.training_metrics["auc"] > 0.95
    report = JobReport(result, "job-1", {"hospital": 1, "lab": 1}, {"lab": out["lab"]}, baseline)
    files = write_report(report, tmp_path)
    written = json.loads((tmp_path / "report.json").read_text())
    assert "metrics" not in written and written["training_metrics"] == result.evaluation.training_metrics
    assert "test_size = 0" in written["notes"][0] and "metrics" not in written["baseline"]
    assert set(files) == {"report", "loss_plot"}


def test_multiclass_secureboost_job_with_sampling_and_early_stopping(tmp_path, small_keypair):
    guest, host = datasets.load_hetero("wine")
    raw = {"job": {"name": "wine", "model": "secureboost"}, "evaluation": {"test_size": 0.25, "seed": 1},
           "model": {"n_estimators": 15, "max_depth": 2, "learning_rate": 0.5, "subsample": 0.8,
                     "colsample_bytree": 0.8, "early_stopping": True, "validation_fraction": 0.25,
                     "n_iter_no_change": 2, "random_state": 0},
           "parties": {"winery": {"role": "active", "data": "g.csv", "label": "y"},
                       "lab": {"role": "passive", "data": "h.csv", "alias": "lab"}}}
    spec = dataclasses.replace(parse_job(raw), output_dir=str(tmp_path))
    frames = {"winery": guest, "lab": host}
    net, out = run_training(spec, frames, tmp_path, small_keypair[1])
    result = out["winery"]
    metrics = result.evaluation.metrics
    assert metrics["auc"] > 0.95 and metrics["accuracy"] > 0.85 and set(metrics) == {"auc", "accuracy", "log_loss"}
    summary = result.summary.to_report()
    assert summary["trees"] <= len(summary["validation_loss_curve"]) == len(summary["loss_curve"])
    baseline = centralized_baseline(spec, frames, result)
    assert baseline.evaluation.metrics["auc"] > 0.95
    files = write_report(JobReport(result, "j", {}, {"lab": out["lab"]}, baseline), tmp_path)
    assert {"roc_plot", "loss_plot"} <= set(files) and all((tmp_path / f).exists() for f in ("roc.png", "loss.png"))
    new_rows = guest.sample(40, random_state=3)
    request = PassiveRequest.parse(spec.passive_request(), "lab")
    scored = net.run({
        "winery": lambda t: active.predict(t, spec, new_rows, tmp_path / "model", verbose=False),
        "lab": lambda t: passive.predict(t, request, host, active="winery",
                                         model_path=tmp_path / "model" / "lab.json")})
    pred = scored["winery"].predictions
    proba = pred[["probability_0", "probability_1", "probability_2"]].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    truth = new_rows.set_index("id").loc[pred["id"], "y"].to_numpy()
    assert np.mean(pred["predicted_class"].to_numpy() == truth) > 0.85 and scored["lab"] == 40


def test_secureboost_takes_tables_with_empty_cells(tmp_path, small_keypair):
    guest, host = datasets.load_hetero("breast")
    rng = np.random.default_rng(0)
    guest, host = guest.copy(), host.copy()
    for frame in (guest, host):                 # a fifth of the cells of two columns are empty
        for column in frame.columns[2:4]:
            frame.loc[rng.random(len(frame)) < 0.2, column] = np.nan
    raw = {**RAW, "job": {"name": "nan", "model": "secureboost"}, "model": {"n_estimators": 3, "max_depth": 3}}
    spec = dataclasses.replace(parse_job(raw), output_dir=str(tmp_path))
    frames = {"hospital": guest, "lab": host}
    net, out = run_training(spec, frames, tmp_path, small_keypair[1])
    assert out["hospital"].evaluation.metrics["auc"] > 0.9
    assert centralized_baseline(spec, frames, out["hospital"]).evaluation.metrics["auc"] > 0.9
    request = PassiveRequest.parse(spec.passive_request(), "lab")
    scored = net.run({
        "hospital": lambda t: active.predict(t, spec, guest, tmp_path / "model", verbose=False),
        "lab": lambda t: passive.predict(t, request, host, active="hospital",
                                         model_path=tmp_path / "model" / "lab.json")})
    assert len(scored["hospital"].predictions) == len(guest) and scored["hospital"].predictions["score"].notna().all()


def test_a_passive_refuses_to_train_on_a_privately_aligned_table():
    spec = parse_job(RAW)
    request = dataclasses.replace(PassiveRequest.parse(spec.passive_request(), "lab"), psi_private=True)
    from vfl.errors import ProtocolError
    with pytest.raises(ProtocolError, match="privately aligned table"):
        passive.train(None, request, None, active="hospital", model_path="unused", caps=CAPS)


def test_a_family_section_cannot_overwrite_the_report_s_own_keys():
    from vfl.errors import VFLError
    from vfl.family import TrainingSummary
    with pytest.raises(VFLError, match=r"report figures use keys \['metrics', 'n_train'\]"):
        TrainingSummary(None, {"n_train": 1, "metrics": 2, "trees": 3})     # raised as soon as a family makes it
