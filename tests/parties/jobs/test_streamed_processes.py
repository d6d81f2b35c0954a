"""A passive whose table is read a chunk at a time (``[compute] stream_above_mb``), over real
party processes: the same SecureBoost model parts and the same predictions as when it reads
the table whole."""
from __future__ import annotations

import argparse
import json
import pathlib

import pandas as pd
import pytest
from party_scenarios import model_parts

from parties.commands.predict import run as predict_command
from parties.commands.run import run_job_file
from parties.jobs.launcher import LocalCluster
from vfl import datasets

pytestmark = pytest.mark.integration

JOB = """
[job]
name = "streamed-sbt"
model = "secureboost"
output_dir = "{out}"
[evaluation]
test_size = 0.25
seed = 7
[model]
n_estimators = 2
max_depth = 3
random_state = 0
[parties.hospital]
role = "active"
data = "{guest}"
label = "y"
[parties.lab]
role = "passive"
alias = "lab"
"""


def _passive_part(cluster) -> dict:
    (part,) = pathlib.Path(cluster.dir, "models", "hospital", "streamed-sbt").glob("*/lab.json")
    return json.loads(part.read_text())["model"]


@pytest.mark.timeout(300)
def test_a_passive_reading_its_table_in_chunks_trains_and_predicts_the_same(tmp_path):
    guest, host = datasets.path("breast_hetero_guest"), datasets.path("breast_hetero_host")
    results = {}
    for label, compute in (("whole", {}), ("chunks", {"lab": {"stream_above_mb": 0}})):
        with LocalCluster(["hospital", "lab"], data={"lab": {"lab": str(host)}}, compute=compute) as cluster:
            job, out = tmp_path / f"{label}.toml", tmp_path / label
            job.write_text(JOB.format(out=out, guest=guest))
            report = run_job_file(job, config=cluster.config_path("hospital"), verbose=False)
            args = argparse.Namespace(job=str(job), model=str(out / "model"), local=False, data=None,
                                      config=cluster.config_path("hospital"), out=str(tmp_path / f"{label}.csv"),
                                      insecure=False, plugin=[], json=True, quiet=True)
            assert predict_command(args) == 0
            streamed = "a chunk at a time" in cluster.log_text("lab")
            assert streamed == (label == "chunks"), cluster.log_text("lab")[-2000:]
            results[label] = (model_parts(out), _passive_part(cluster), report["metrics"],
                              pd.read_csv(tmp_path / f"{label}.csv").sort_values("id", ignore_index=True))
    whole, chunks = results["whole"], results["chunks"]
    assert chunks[0] == whole[0] and chunks[1] == whole[1] and chunks[2] == whole[2]
    assert chunks[1]["lookup"]                   # the passive owns splits: its part was used
    pd.testing.assert_frame_equal(chunks[3], whole[3])
