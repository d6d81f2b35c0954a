"""``[privacy]`` over real party processes: a SecureBoost job trains on labels released by RR
with a prior; the report states ε and its accounting."""
from __future__ import annotations

import json

import pytest
from party_scenarios import run_local_job

from vfl import datasets

JOB = """
[job]
name = "breast-sbt-dp"
model = "secureboost"
output_dir = "{out}"
[evaluation]
test_size = 0.25
seed = 5
[model]
n_estimators = 3
max_depth = 3
random_state = 0
[privacy]
label_epsilon = 2.0
mechanism = "rr_with_prior"
[parties.hospital]
role = "active"
data = "{guest}"
label = "y"
[parties.lab]
role = "passive"
data = "{host}"
"""


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_a_secureboost_job_with_label_dp_over_processes(tmp_path):
    report = run_local_job(tmp_path, JOB.format(out=tmp_path / "out", guest=datasets.path("breast_hetero_guest"),
                                                host=datasets.path("breast_hetero_host")))
    privacy = report["privacy"]
    assert privacy["mechanism"] == "rr_with_prior" and privacy["label_epsilon"] == 2.0 and privacy["delta"] == 0
    assert privacy["accounting"]["epsilon"] == pytest.approx(2.0, abs=1e-3)
    assert privacy["rows_randomized"] == report["n_train"]
    assert any("label DP" in note for note in report["notes"])
    assert report["metrics"]["auc"] > 0.85                         # ε = 2 with a prior: a usable model
    assert json.loads((tmp_path / "out" / "report.json").read_text())["privacy"] == privacy
