"""The job roles over the in-process transport: PSI → split → fit → evaluate, normal and private PSI."""
from __future__ import annotations

import dataclasses

import pytest

from parties.transport.inprocess import InProcessNetwork
from vfl import datasets
from vfl.jobs.roles import active_train, passive_params, passive_train
from vfl.jobs.spec import parse_job

RAW = {
    "job": {"name": "roles", "model": "logistic_regression"},
    "evaluation": {"test_size": 0.2, "seed": 3},
    "model": {"epochs": 3, "batch_size": 64, "learning_rate": 0.3, "random_state": 0, "verbose": False},
    "parties": {"hospital": {"role": "active", "data": "g.csv", "label": "y"},
                "lab": {"role": "passive", "data": "h.csv", "alias": "lab"}},
}


@pytest.mark.parametrize("private", [False])
def test_roles_with_partial_overlap(tmp_path, small_keypair, private):
    guest, host = datasets.load_hetero("breast")
    guest, host = guest.sample(frac=0.85, random_state=1), host.sample(frac=0.8, random_state=2)
    shared = len(set(guest["id"]) & set(host["id"]))
    raw = {**RAW, "psi": {"private": private}, "model": {k: v for k, v in RAW["model"].items() if k != "verbose"}}
    spec = dataclasses.replace(parse_job(raw), output_dir=str(tmp_path))
    net = InProcessNetwork(["hospital", "lab"], timeout=60)
    out = net.run({
        "hospital": lambda t: active_train(t, spec, guest, private_key=small_keypair[1], verbose=False),
        "lab": lambda t: passive_train(t, passive_params(spec), host, active="hospital",
                                       model_path=tmp_path / "lab.json", max_epochs=10,
                                       allow_insecure_key_size_for_tests=True)})
    report, lab = out["hospital"], out["lab"]
    assert report["n_intersection"] == shared
    assert report["n_train"] + report["n_test"] == shared
    assert report["metrics"]["auc"] > 0.95
    if private:      # the lab trained on its padded table and cannot tell real rows from fillers
        assert lab["rows"] > shared
    else:
        assert lab["rows"] == shared


def test_private_psi_is_refused_for_training():
    from vfl.jobs.spec import JobSpecError
    with pytest.raises(JobSpecError, match="reveal which rows are real"):
        parse_job({**RAW, "psi": {"private": True},
                   "model": {k: v for k, v in RAW["model"].items() if k != "verbose"}})


def test_multiclass_secureboost_job_with_sampling_and_early_stopping(tmp_path, small_keypair):
    import json

    import numpy as np

    from vfl.jobs.baseline import centralized_baseline
    from vfl.jobs.roles import active_predict, passive_predict
    from vfl.report import write_report
    guest, host = datasets.load_hetero("wine")
    raw = {"job": {"name": "wine", "model": "secureboost"}, "evaluation": {"test_size": 0.25, "seed": 1},
           "model": {"n_estimators": 15, "max_depth": 2, "learning_rate": 0.5, "subsample": 0.8,
                     "colsample_bytree": 0.8, "early_stopping": True, "validation_fraction": 0.25,
                     "n_iter_no_change": 2, "random_state": 0},
           "parties": {"winery": {"role": "active", "data": "g.csv", "label": "y"},
                       "lab": {"role": "passive", "data": "h.csv", "alias": "lab"}}}
    spec = dataclasses.replace(parse_job(raw), output_dir=str(tmp_path))
    net = InProcessNetwork(["winery", "lab"], timeout=60)
    model_path = tmp_path / "model" / "lab.json"
    out = net.run({
        "winery": lambda t: active_train(t, spec, guest, private_key=small_keypair[1], verbose=False),
        "lab": lambda t: passive_train(t, passive_params(spec), host, active="winery", model_path=model_path,
                                       max_epochs=50, allow_insecure_key_size_for_tests=True)})
    report = out["winery"]
    assert report["metrics"]["auc"] > 0.95 and report["metrics"]["accuracy"] > 0.85
    assert set(report["metrics"]) == {"auc", "accuracy", "log_loss"}
    assert report["trees"] <= len(report["validation_loss_curve"]) == len(report["loss_curve"])
    split = json.loads((tmp_path / "split.json").read_text())
    report["baseline"] = centralized_baseline(spec, {"winery": guest, "lab": host}, split)
    assert report["baseline"]["metrics"]["auc"] > 0.95
    files = write_report(report, tmp_path)
    assert {"roc_plot", "loss_plot"} <= set(files) and all((tmp_path / f).exists() for f in ("roc.png", "loss.png"))
    new_rows = guest.sample(40, random_state=3)
    scored = net.run({
        "winery": lambda t: active_predict(t, spec, new_rows, tmp_path / "model", verbose=False),
        "lab": lambda t: passive_predict(t, passive_params(spec), host, active="winery", model_path=model_path)})
    pred = scored["winery"]["predictions"]
    proba = pred[["probability_0", "probability_1", "probability_2"]].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    truth = new_rows.set_index("id").loc[pred["id"], "y"].to_numpy()
    assert np.mean(pred["predicted_class"].to_numpy() == truth) > 0.85
