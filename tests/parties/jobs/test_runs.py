"""Model parts belong to a run: a deployed passive keeps every run's part, a prediction uses the
one its training run recorded, and a changed or missing part is refused, never combined."""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from parties.commands.predict import run as predict_command
from parties.commands.run import run_job_file
from parties.jobs.launcher import LocalCluster
from vfl import datasets

JOB = """
[job]
name = "same-name"
model = "logistic_regression"
output_dir = "{out}"
[model]
epochs = {epochs}
batch_size = 64
learning_rate = 0.3
random_state = 0
[parties.hospital]
role = "active"
data = "{guest}"
label = "y"
[parties.lab]
role = "passive"
alias = "lab"
"""


def _predict(job, out, config, csv):
    import argparse
    args = argparse.Namespace(job=str(job), model=str(out), data=None, out=str(csv), local=False, config=config,
                              insecure=False, plugin=[], json=True, quiet=True)
    return predict_command(args)


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_a_prediction_uses_the_parts_of_its_own_run(tmp_path, capsys):
    guest = datasets.path("breast_hetero_guest")
    with LocalCluster(["hospital", "lab"], data={"lab": {"lab": str(datasets.path("breast_hetero_host"))}}) as cluster:
        config = cluster.config_path("hospital")
        reports, jobs = {}, {}
        for name, epochs in (("long", 5), ("short", 1)):         # the same job name, twice
            jobs[name] = tmp_path / f"{name}.toml"
            jobs[name].write_text(JOB.format(out=tmp_path / name, epochs=epochs, guest=guest))
            reports[name] = run_job_file(jobs[name], config=config, verbose=False)
        assert reports["long"]["job_id"] != reports["short"]["job_id"]
        labels = datasets.load("breast_hetero_guest").set_index("id")["y"]
        for name in ("long", "short"):                           # each model as it was trained, whatever came later
            assert _predict(jobs[name], tmp_path / name, config, tmp_path / f"{name}.csv") == 0
            pred = pd.read_csv(tmp_path / f"{name}.csv")
            auc = roc_auc_score(labels.loc[pred["id"]], pred["score"])
            assert auc == pytest.approx(reports[name]["training_metrics"]["auc"], abs=1e-12)
        run = reports["long"]["job_id"]
        part = os.path.join(cluster.dir, "models", "hospital", "same-name", run, "lab.json")
        manifest = json.loads((tmp_path / "long" / "model" / "manifest.json").read_text())
        assert manifest["run"] == run and set(manifest["parts"]) == {"hospital", "lab"}
        with open(part, "a") as f:                               # the lab's part changed since
            f.write(" ")
        capsys.readouterr()
        assert _predict(jobs["long"], tmp_path / "long", config, tmp_path / "x.csv") == 2
        assert "not the one that run recorded" in capsys.readouterr().err
        (tmp_path / "short" / "model" / "hospital.json").write_text(
            (tmp_path / "long" / "model" / "hospital.json").read_text())     # the bank's part swapped
        assert _predict(jobs["short"], tmp_path / "short", config, tmp_path / "y.csv") == 2
        assert "hospital's model part" in capsys.readouterr().err
