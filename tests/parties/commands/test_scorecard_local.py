"""A scorecard job over real party processes: `vfl run --local` with three parties (a text
column, missing values, string ids), then `vfl predict` with the model it wrote."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from party_scenarios import THREE_PARTIES, run_cli, run_local_job, write_tables
from sklearn.metrics import roc_auc_score

from vfl import datasets

JOB = """
[job]
name = "card3"
model = "scorecard"
output_dir = "{out}"
[evaluation]
test_size = 0.25
[binning]
min_bin_size = 20
[selection]
max_correlation = 0.8
[regression]
alpha = 0.002
""" + THREE_PARTIES


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_three_party_scorecard_over_processes_then_predict(tmp_path):
    guest, host = datasets.load_hetero("breast")
    host = host.copy()
    host["segment"] = np.where(host["x12"] > 0, "north", "south")
    host.loc[host.index[:25], "x2"] = np.nan
    files = {"bank": guest, "insurer": host[["id", "x0", "x1", "x2", "x3", "segment"]],
             "telco": host[["id"] + [f"x{i}" for i in range(10, 16)]].sample(frac=0.9, random_state=1)}
    paths = write_tables(tmp_path, {name: frame.assign(id="cust-" + frame["id"].astype(str))
                                    for name, frame in files.items()})
    report = run_local_job(tmp_path, JOB.format(out=tmp_path / "out", **paths))
    job = tmp_path / "job.toml"
    assert report["n_intersection"] == len(files["telco"])
    assert abs(report["metrics"]["auc"] - report["baseline"]["metrics"]["auc"]) <= 0.002
    assert abs(report["loss_curve"][-1] - report["baseline"]["training_loss"]) < 1e-3
    assert any(r["feature"] == "insurer:feature 4" for r in report["iv"])            # the text column was binned
    for name in ("score_distribution", "ks", "iv", "scorecard_table", "selection"):
        assert (tmp_path / "out" / report["files"][name].split("/out/")[1]).stat().st_size > 100
    out = tmp_path / "predictions.csv"
    proc = run_cli("predict", str(job), "--model", str(tmp_path / "out" / "model"), "--local", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    pred = pd.read_csv(out)
    assert len(pred) == len(files["telco"])
    assert {"score", "probability", "reason_1", "reason_1_points"} <= set(pred.columns)
    truth = guest.assign(id="cust-" + guest["id"].astype(str)).set_index("id").loc[pred["id"], "y"].to_numpy()
    assert roc_auc_score(truth, pred["probability"]) > 0.95
    assert roc_auc_score(truth, -pred["score"]) > 0.95                # higher score: fewer events
    assert not pred["reason_1"].astype(str).str.startswith(("insurer:", "telco:")).any()   # neither shares names
