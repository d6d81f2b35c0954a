"""SS logistic regression over real party processes: `vfl run --local` with three parties, then
`vfl predict` with the parts it saved — each party's weights, or (shared_model) its shares of all
of them, scored on shares."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from party_scenarios import THREE_PARTIES, run_cli, run_local_job, write_tables

from protocols.mpc.ring import decode
from vfl import datasets
from vfl.registry import family

JOB = """
[job]
name = "sslr3"
model = "ss_logistic_regression"
output_dir = "{out}"
[evaluation]
test_size = 0.25
seed = 3
[model]
iterations = 6
alpha = 0.001
shared_model = {shared}
""" + THREE_PARTIES


@pytest.mark.integration
@pytest.mark.timeout(400)
@pytest.mark.parametrize("shared", [False, True], ids=["weights-revealed", "model-shared"])
def test_three_party_ss_logistic_regression_over_processes(tmp_path, shared):
    guest, host = datasets.load_hetero("breast")
    cols = [c for c in host.columns if c != "id"]
    # narrow tables: the curvature's matrix triples cost 64·(all columns)³ words per ordered pair
    files = {"bank": guest[["id", "y", "x0", "x1", "x2", "x3"]], "insurer": host[["id", *cols[:3]]],
             "telco": host[["id", *cols[3:7]]].sample(frac=1.0, random_state=2)}
    paths = write_tables(tmp_path, files)
    out = tmp_path / "out"
    report = run_local_job(tmp_path, JOB.format(out=out, shared=str(shared).lower(), **paths))
    mpc = report["mpc"]
    assert report["n_intersection"] == 569 and mpc["iterations"] == 6
    assert mpc["online_ot_multiplications"] == 0 and mpc["triples"]["left"] == 0       # all of it made offline
    assert mpc["offline_seconds"] > mpc["online_seconds"] > 0
    assert abs(report["metrics"]["auc"] - report["baseline"]["metrics"]["auc"]) < 0.002
    proc = run_cli("predict", str(tmp_path / "job.toml"), "--model", str(out), "--local", "--out",
                   str(tmp_path / "pred.csv"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    pred = pd.read_csv(tmp_path / "pred.csv")
    # what the three saved parts give on the joined table, computed here in the clear (a shared
    # model's weights are the sum of the three parties' shares)
    fam = family("ss_logistic_regression")
    parts = {"bank": fam.load_active(out / "model" / "bank.json"),
             **{p: fam.load_passive(out / "model" / f"{p}.json") for p in ("insurer", "telco")}}
    if shared:
        w = decode(sum((part.weight_shares_[:, 0] for part in parts.values()), np.zeros(1, np.uint64)), 12)
        blocks = np.cumsum([0, 5, 3])
        parts["bank"].coef_, parts["bank"].intercept_ = w[:4], w[4]
        parts["insurer"].coef_, parts["telco"].coef_ = w[blocks[1]:blocks[2]], w[blocks[2]:]
    ids = guest["id"]
    z = parts["bank"].intercept_
    for name, part in parts.items():
        x = files[name].set_index("id").loc[ids].drop(columns="y", errors="ignore").to_numpy(float)
        z = z + ((x - part.mean_) / part.scale_) @ part.coef_
    expected = pd.Series(1 / (1 + np.exp(-z)), index=ids.astype(str))
    got = pred.assign(id=pred["id"].astype(str)).set_index("id")["probability"]
    assert len(got) == 569
    np.testing.assert_allclose(got.loc[expected.index].to_numpy(), expected.to_numpy(), atol=1e-3 if shared else 1e-6)
