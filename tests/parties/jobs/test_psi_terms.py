"""What a PSI may reveal of a passive's ids is the passive's call, checked before it sends what
would reveal them: the initiator's set size, the share of its ids per job, and per peer across
jobs (the ledger). Real processes; the passive's audit log shows what it sent."""
from __future__ import annotations

import os

import pandas as pd
import pytest

from parties.jobs import run_job
from parties.jobs.launcher import LocalCluster
from parties.runtime.audit import read_entries
from parties.runtime.errors import JobRejectedError
from vfl.errors import PeerFailedError
from vfl.psi import align_active

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
N = 600                                  # the insurer's customers: ids 0..599


def _psi(bank, ids):
    frame = pd.DataFrame({"id": list(ids)})
    return run_job(bank, "psi.passive",
                   {"data": "customers", "id_column": "id"}, ["insurer"],
                   role=lambda t: align_active(t, frame, "id"), timeout=60)


def _sent_kinds(cluster, job: str) -> set[str]:
    entries = read_entries(os.path.join(cluster.dir, "insurer.audit.jsonl"))
    return {e["kind"] for e in entries if e["job"] == job and "kind" in e}


@pytest.fixture
def customers(tmp_path):
    path = tmp_path / "insurer.csv"
    pd.DataFrame({"id": range(N), "x": 1.0}).to_csv(path, index=False)
    return str(path)


def _cluster(customers, **psi):
    return LocalCluster(["bank", "insurer"], data={"insurer": {"customers": customers}}, psi=psi,
                        share_error_details=False)


def test_an_initiator_holding_every_id_is_refused_before_the_passive_sends_anything(customers):
    with _cluster(customers) as cluster:                      # the default terms: at most 10 × its ids
        bank = cluster.node("bank")
        with pytest.raises((PeerFailedError, JobRejectedError)) as refused:
            _psi(bank, range(20_000))
        assert "insurer: refused error, id" in str(refused.value)
        kinds = set().union(*(_sent_kinds(cluster, e["job"]) for e in
                             read_entries(os.path.join(cluster.dir, "insurer.audit.jsonl")) if "kind" in e))
        assert not {k for k in kinds if k.startswith("psi.")} - {"psi.abort"}, kinds   # no masked id left it
        assert "more than 10 × this party's 600" in open(cluster.log_path("insurer")).read()
        assert _psi(bank, range(300, 900)).result.report.size == 300        # a fair request goes through


def test_a_share_past_the_per_job_cap_is_refused_after_the_passive_has_counted(customers):
    with _cluster(customers, max_share=0.5) as cluster:
        bank = cluster.node("bank")
        with pytest.raises(PeerFailedError, match="insurer: refused error"):
            _psi(bank, range(0, 400))                      # would reveal 400 of 600
        entries = read_entries(os.path.join(cluster.dir, "insurer.audit.jsonl"))
        kinds = {e["kind"] for e in entries if "kind" in e}
        assert "psi.passive_masked" in kinds and "psi.double_masked" not in kinds
        assert _psi(bank, range(0, 250)).result.report.size == 250


def test_the_share_per_peer_counts_every_job(customers):
    with _cluster(customers, max_share_per_peer=0.6) as cluster:
        bank = cluster.node("bank")
        assert _psi(bank, range(0, 300)).result.report.size == 300          # 50% learned
        assert _psi(bank, range(0, 300)).result.report.size == 300          # the same again: still 50%
        with pytest.raises(PeerFailedError, match="insurer: refused error"):
            _psi(bank, range(300, 600))                    # the other half: 100% in all
        assert "would then have learned 600 of this party's 600 ids" in open(cluster.log_path("insurer")).read()
        assert _psi(bank, range(250, 350)).result.report.size == 100        # 350 of 600 in all: fine
        ledger = os.path.join(cluster.dir, "insurer.psi-ledger")
        assert sorted(os.listdir(ledger)) == ["bank.ids.npy", "bank.json", "ledger.key"]
        assert b"299" not in open(os.path.join(ledger, "bank.ids.npy"), "rb").read()   # hashes, not ids


def test_a_training_job_past_the_passive_s_rounds_is_refused_before_the_psi(tmp_path):
    from parties.commands.run import run_job_file
    from vfl import datasets
    job = tmp_path / "job.toml"
    job.write_text(f"""
[job]
name = "too-long"
model = "logistic_regression"
output_dir = "{tmp_path / 'out'}"
[model]
epochs = 30
[parties.bank]
role = "active"
data = "{datasets.path('breast_hetero_guest')}"
label = "y"
[parties.insurer]
role = "passive"
alias = "customers"
""")
    host = str(datasets.path("breast_hetero_host"))
    with LocalCluster(["bank", "insurer"], data={"insurer": {"customers": host}}, limits={"max_epochs": 20},
                      share_error_details=False) as cluster:
        with pytest.raises(PeerFailedError, match="insurer: refused error, id"):
            run_job_file(job, config=cluster.config_path("bank"), verbose=False)
        kinds = {e["kind"] for e in read_entries(os.path.join(cluster.dir, "insurer.audit.jsonl")) if "kind" in e}
        assert not any(k.startswith("psi.") for k in kinds), kinds
        log = open(cluster.log_path("insurer")).read()
        assert "serves at most 20 rounds (epochs, trees); the job declares 30" in log
