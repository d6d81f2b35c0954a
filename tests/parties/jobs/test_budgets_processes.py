"""Budgets over real party processes: a passive's cap on the rows a peer may have it score
(refused before the PSI reveals which rows match, kept across a restart, in its audit log), and
the ε budget of the active's labels (a job past it refused before anything is sent)."""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from party_scenarios import run_cli

from parties.commands.predict import predict_job_file
from parties.commands.run import run_job_file
from parties.jobs.launcher import LocalCluster
from parties.runtime.audit import read_entries
from parties.runtime.budgets import BudgetError
from vfl import datasets
from vfl.errors import PeerFailedError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

JOB = """
[job]
name = "{name}"
model = "logistic_regression"
output_dir = "{out}"
[evaluation]
test_size = 0.2
[model]
epochs = 1
batch_size = 256
{privacy}
[parties.bank]
role = "active"
data = "{guest}"
label = "y"
[parties.insurer]
role = "passive"
alias = "customers"
"""


def _job(tmp_path, name, guest, privacy=""):
    path = tmp_path / f"{name}.toml"
    path.write_text(JOB.format(name=name, out=tmp_path / name, guest=guest, privacy=privacy))
    return path


def _sent(cluster, party: str) -> list[dict]:
    return read_entries(os.path.join(cluster.dir, f"{party}.audit.jsonl"))


def _kinds(cluster, job: str) -> set[str]:
    return {e["kind"] for e in _sent(cluster, "insurer") if e.get("job") == job and "kind" in e}


def test_a_passive_caps_the_rows_a_peer_may_have_it_score_across_restarts(tmp_path):
    guest = str(datasets.path("breast_hetero_guest"))
    rows = pd.read_csv(guest)
    caps = {"max_rows_per_request": 400, "max_rows_per_period": 500}
    with LocalCluster(["bank", "insurer"], data={"insurer": {"customers": str(datasets.path("breast_hetero_host"))}},
                      sections={"insurer": {"predictions": caps}}, share_error_details=False) as cluster:
        bank = cluster.config_path("bank")
        job = _job(tmp_path, "lr", guest)
        run_job_file(job, config=bank, verbose=False)                         # training is no prediction

        def predict(n):
            part = tmp_path / f"rows{n}.csv"
            rows.iloc[:n].to_csv(part, index=False)
            return predict_job_file(job, tmp_path / "lr", config=bank, data=str(part), verbose=False)[1]

        assert len(predict(300).result.predictions) == 300
        with pytest.raises(PeerFailedError, match="insurer: refused error, id"):
            predict(450)                                                    # past the cap per request
        log = open(cluster.log_path("insurer")).read()
        assert "bank asked to score 450 rows; max_rows_per_request is 400" in log
        refused = [e for e in _sent(cluster, "insurer") if e.get("event") == "prediction_refused"]
        assert [e["rows"] for e in refused] == [450]
        served = next(e["job"] for e in _sent(cluster, "insurer") if e.get("event") == "prediction_rows")
        telling = {"psi.double_masked", "lr.partial_scores"}                # the match, the scores
        assert telling <= _kinds(cluster, served)
        assert not telling & _kinds(cluster, refused[0]["job"])
        cluster.restart("insurer")
        with pytest.raises(PeerFailedError, match="insurer: refused error"):
            predict(250)                                                    # 300 + 250 > 500, after a restart
        assert "300 already in the last 24 h; max_rows_per_period is 500" in open(cluster.log_path("insurer")).read()
        assert len(predict(200).result.predictions) == 200
        scored = [e for e in _sent(cluster, "insurer") if e.get("event") == "prediction_rows"]
        assert [(e["rows"], e["rows_in_period"]) for e in scored] == [(300, 300), (200, 500)]
        shown = json.loads(run_cli("budgets", "--config", cluster.config_path("insurer"), "--json").stdout)
        assert shown["predictions"]["bank"]["rows_in_period"] == 500


def test_the_epsilon_budget_of_the_active_s_labels_refuses_the_job_past_it(tmp_path):
    guest = str(datasets.path("breast_hetero_guest"))
    privacy = '[privacy]\nlabel_epsilon = {}'
    with LocalCluster(["bank", "insurer"], data={"bank": {"labels": guest},
                                                 "insurer": {"customers": str(datasets.path("breast_hetero_host"))}},
                      sections={"bank": {"privacy": {"label_epsilon_budget": {"labels": 3.0}}}},
                      share_error_details=False) as cluster:
        bank = cluster.config_path("bank")
        with pytest.raises(BudgetError, match="a job without a \\[privacy\\] section would use them without bound"):
            run_job_file(_job(tmp_path, "plain", guest), config=bank, verbose=False)
        report = run_job_file(_job(tmp_path, "dp2", guest, privacy.format(2.0)), config=bank, verbose=False)
        assert report["privacy"]["ledger"] == {"dataset": "labels", "budget": 3.0, "delta": 0.0, "spent_before": 0.0,
                                               "spent_after": 2.0, "charged": True}
        assert any("have now spent ε = 2 in all (δ = 0) of a budget of 3" in n for n in report["notes"])
        before = len(_sent(cluster, "insurer"))
        with pytest.raises(BudgetError, match="would take the labels of labels to ε = 4"):
            run_job_file(_job(tmp_path, "dp2b", guest, privacy.format(2.0)), config=bank, verbose=False)
        assert len(_sent(cluster, "insurer")) == before                     # refused before the job began
        report = run_job_file(_job(tmp_path, "dp1", guest, privacy.format(1.0)), config=bank, verbose=False)
        assert report["privacy"]["ledger"]["spent_after"] == 3.0
        shown = run_cli("budgets", "--config", bank).stdout
        assert "labels" in shown and "ε        3 of budget 3 (2 runs)" in shown
