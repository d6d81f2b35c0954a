"""A Pearson job over real party processes: `vfl run --local` with three parties."""
from __future__ import annotations

import numpy as np
import pytest
from party_scenarios import THREE_PARTIES, run_cli, run_local_job, write_tables

from vfl import datasets

JOB = """
[job]
name = "corr3"
model = "pearson"
output_dir = "{out}"
[reveal]
full_matrix = ["bank"]
""" + THREE_PARTIES


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_three_party_correlation_over_processes(tmp_path):
    guest, host = datasets.load_hetero("breast")
    cols = [c for c in host.columns if c != "id"]
    files = {"bank": guest, "insurer": host[["id", *cols[:5]]], "telco": host[["id", *cols[5:]]].sample(frac=0.9,
                                                                                                       random_state=1)}
    paths = write_tables(tmp_path, files)
    report = run_local_job(tmp_path, JOB.format(out=tmp_path / "out", **paths))
    job = tmp_path / "job.toml"
    joined = guest.drop(columns="y").merge(files["insurer"], on="id").merge(files["telco"], on="id")
    assert report["n_intersection"] == len(joined) < 569
    got = np.array(report["correlation"]["matrix"], dtype=float)
    assert np.abs(got - np.corrcoef(joined.drop(columns="id").to_numpy().T)).max() < 1e-4
    assert (tmp_path / "out" / "correlation.png").stat().st_size > 10_000
    assert "metrics" not in report and report["mpc"]["cross_products"] == 3
    refused = run_cli("predict", str(job), "--model", str(tmp_path / "out"), "--local", "--out",
                      str(tmp_path / "p.csv"))
    assert refused.returncode != 0 and "nothing to predict" in refused.stderr
