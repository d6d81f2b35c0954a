"""`vfl run --local --json` and `vfl predict --local` over real party processes."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from party_scenarios import run_cli, run_local_job

from vfl import datasets

JOB = """
[job]
name = "breast-smoke"
model = "logistic_regression"
output_dir = "{out}"
[evaluation]
test_size = 0.2
seed = 42
[model]
epochs = 3
batch_size = 64
learning_rate = 0.3
random_state = 0
[parties.hospital]
role = "active"
data = "{guest}"
label = "y"
[parties.lab]
role = "passive"
data = "{host}"
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    job = tmp / "job.toml"
    job.write_text(JOB.format(out=tmp / "out", guest=datasets.path("breast_hetero_guest"),
                              host=datasets.path("breast_hetero_host")))
    proc = run_cli("run", str(job), "--local", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, job, json.loads(proc.stdout)


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_run_local_json_report(trained):
    tmp, _, report = trained
    assert report["model"] == "logistic_regression" and report["n_intersection"] == 569
    assert 0.9 < report["metrics"]["auc"] <= 1 and 0 < report["metrics"]["ks"] <= 1
    assert abs(report["metrics"]["auc"] - report["baseline"]["metrics"]["auc"]) < 0.05
    assert set(report["bytes_sent"]) == {"hospital", "lab"} and min(report["bytes_sent"].values()) > 0
    assert report["seconds"]["total"] > 0 and report["epochs"] == 3
    out = tmp / "out"
    for name in ("report.json", "roc.png", "loss.png", "model/hospital.json", "model/lab.json"):
        assert (out / name).exists(), name
    assert "_test_scores" not in (out / "report.json").read_text()


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_predict_local_scores_every_shared_row(trained):
    tmp, job, _ = trained
    proc = run_cli("predict", str(job), "--model", str(tmp / "out"), "--local", "--json", "--out",
                str(tmp / "pred.csv"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["n_scored"] == 569
    pred = pd.read_csv(tmp / "pred.csv")
    labels = datasets.load("breast_hetero_guest").set_index("id")["y"]
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(labels.loc[pred["id"]], pred["probability"]) > 0.95


@pytest.mark.integration
def test_bad_job_fails_before_starting_parties(tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(JOB.format(out=tmp_path, guest=datasets.path("breast_hetero_guest"),
                              host=datasets.path("breast_hetero_host")).replace('label = "y"', 'label = "outcome"'))
    proc = run_cli("run", str(job), "--local", timeout=60)
    assert proc.returncode == 2
    assert "hospital: label column 'outcome' is not in its table" in proc.stderr
    guest = datasets.load("breast_hetero_guest")
    guest["y"] = guest["y"].map({0: "no", 1: "yes"})             # labels as text: named, nothing started
    guest.to_csv(tmp_path / "text_labels.csv", index=False)
    job.write_text(JOB.format(out=tmp_path, guest=tmp_path / "text_labels.csv",
                              host=datasets.path("breast_hetero_host")))
    proc = run_cli("run", str(job), "--local", timeout=60)
    assert proc.returncode == 2 and "hospital (label column 'y'): labels must be numbers" in proc.stderr
    assert "'no'" not in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_secureboost_job_with_empty_cells_and_no_evaluation_section(tmp_path):
    """Empty cells at both parties reach SecureBoost (PSI, training, baseline, vfl predict); a job
    without [evaluation] trains on every row and reports training metrics."""
    rng = np.random.default_rng(0)
    paths = {}
    for name in ("guest", "host"):
        frame = datasets.load(f"breast_hetero_{name}")
        for column in frame.columns[2:5]:
            frame[column] = frame[column].mask(rng.random(len(frame)) < 0.15)
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    text = JOB.format(out=tmp_path / "out", guest=paths["guest"], host=paths["host"])
    text = text.replace('model = "logistic_regression"', 'model = "secureboost"').replace(
        "[evaluation]\ntest_size = 0.2\nseed = 42\n", "").replace(
        "epochs = 3\nbatch_size = 64\nlearning_rate = 0.3\nrandom_state = 0", "n_estimators = 3\nmax_depth = 2")
    job = tmp_path / "job.toml"
    job.write_text(text)
    assert ",," in paths["host"].read_text()                                   # empty cells on disk
    proc = run_cli("run", str(job), "--local", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["model"] == "secureboost" and report["trees"] == 3 and report["n_test"] == 0
    assert "metrics" not in report and report["training_metrics"]["auc"] > 0.9 and "test_size = 0" in report["notes"][0]
    assert "HistGradientBoosting" in report["baseline"]["model"] and report["baseline"]["training_metrics"]["auc"] > 0.9
    assert report["feature_importance_gain"] and (tmp_path / "out" / "model" / "lab.json").exists()
    # seconds per phase from both sides: the active's own, the passive's as it reported them
    assert report["phases"]["seconds"]["decryption"] > 0 and report["phases"]["counts"]["encryption"] > 0
    lab = report["passives"]["lab"]["figures"]["phases"]
    assert lab["seconds"]["packing"] > 0 and lab["counts"]["ciphertexts sent"] > 0
    assert (tmp_path / "out" / "report.json").exists() and (tmp_path / "out" / "loss.png").exists()
    proc = run_cli("predict", str(job), "--model", str(tmp_path / "out"), "--local", "--json", "--out",
                str(tmp_path / "pred.csv"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert len(pred) == 569 and pred["probability"].notna().all()
    lr = text.replace('model = "secureboost"', 'model = "logistic_regression"').replace(
        "n_estimators = 3\nmax_depth = 2", "epochs = 1")
    job.write_text(lr)
    proc = run_cli("run", str(job), "--local", timeout=60)                     # refused before any party starts
    assert proc.returncode == 2 and "models that accept missing values:" in proc.stderr
    assert "secureboost" in proc.stderr.split("models that accept missing values:")[1]


WINE3 = """
[job]
name = "wine3"
model = "secureboost"
output_dir = "{out}"
[evaluation]
test_size = 0.25
seed = 1
[model]
n_estimators = 3
max_depth = 2
subsample = 0.8
random_state = 0
[parties.winery]
role = "active"
data = "{guest}"
label = "y"
[parties.lab_a]
role = "passive"
data = "{host}"
features = ["flavanoids", "nonflavanoid_phenols", "proanthocyanins"]
[parties.lab_b]
role = "passive"
data = "{host}"
features = ["color_intensity", "hue", "od280_od315_of_diluted_wines", "proline"]
"""


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_multiclass_secureboost_three_parties_over_processes(tmp_path):
    report = run_local_job(tmp_path, WINE3.format(out=tmp_path / "out", guest=datasets.path("wine_hetero_guest"),
                                                  host=datasets.path("wine_hetero_host")))
    job = tmp_path / "job.toml"
    assert report["trees"] == 3 and set(report["bytes_sent"]) == {"winery", "lab_a", "lab_b"}
    assert report["metrics"]["auc"] > 0.9 and report["metrics"]["accuracy"] > 0.8
    assert {"lab_a:feature 0", "lab_b:feature 3"} & set(report["feature_importance_gain"])
    proc = run_cli("predict", str(job), "--model", str(tmp_path / "out"), "--local", "--json", "--out",
                str(tmp_path / "pred.csv"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert len(pred) == 178 and {"probability_2", "predicted_class"} <= set(pred.columns)


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_feature_key_lr_over_processes_gives_the_label_key_model(trained, tmp_path):
    tmp, _, label_key = trained
    job = tmp_path / "job.toml"
    job.write_text(JOB.format(out=tmp_path / "out", guest=datasets.path("breast_hetero_guest"),
                              host=datasets.path("breast_hetero_host")).replace(
        "random_state = 0", 'random_state = 0\nprotocol = "feature_key"'))
    proc = run_cli("run", str(job), "--local", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["metrics"] == label_key["metrics"] and report["loss_curve"] == label_key["loss_curve"]
    lab = [json.loads((d / "out" / "model" / "lab.json").read_text())["arrays"]["coef"] for d in (tmp, tmp_path)]
    assert lab[0] == lab[1]
