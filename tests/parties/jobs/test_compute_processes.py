"""A passive whose ``[compute]`` points at its own Dask cluster behind mutual TLS: a SecureBoost
job (with its PSI) over real party processes gives the same model as without the cluster, and
the passive's PSI and histogram pieces ran on that cluster."""
from __future__ import annotations

import pytest
from party_scenarios import model_parts

pytest.importorskip("distributed")

from parties.commands.run import run_job_file  # noqa: E402
from parties.jobs.launcher import LocalCluster  # noqa: E402
from vfl import datasets  # noqa: E402

pytestmark = pytest.mark.integration


def _job(out) -> str:
    return "\n".join([
        "[job]", 'name = "credit-sbt-cluster"', 'model = "secureboost"', f'output_dir = "{out}"', "",
        "[evaluation]", "test_size = 0.2", "seed = 42", "",
        "[model]", "n_estimators = 1", "max_depth = 2", "random_state = 0", "",
        "[parties.bank]", 'role = "active"', f'data = "{datasets.path("default_credit_hetero_guest")}"',
        'id_column = "id"', 'label = "y"', "",
        "[parties.insurer]", 'role = "passive"', 'alias = "customers"', 'id_column = "id"']) + "\n"


@pytest.mark.timeout(400)
def test_a_passive_on_its_tls_cluster_trains_the_same_model(tmp_path):
    from parties.runtime.dask_backend import loopback_cluster
    data = {"insurer": {"customers": str(datasets.path("default_credit_hetero_host"))}}
    outs = {}
    dask, files = loopback_cluster(2, str(tmp_path))
    with dask:
        for label, compute in (("pool", None), ("cluster", {"insurer": {"scheduler": dask.scheduler_address,
                                                                        **files}})):
            with LocalCluster(["bank", "insurer"], data=data, compute=compute) as cluster:
                job = tmp_path / f"{label}.toml"
                job.write_text(_job(tmp_path / label))
                run_job_file(job, config=cluster.config_path("bank"), verbose=False)
                outs[label] = tmp_path / label
            # pieces the cluster has run so far (a prefix stays once one of its tasks was seen)
            ran = dask.scheduler.task_prefixes.get("run_piece")
            assert (ran is None) == (label == "pool"), label
        # the passive's work ran there, and the job's secrets were dropped when the job ended
        assert ran.duration_average > 0
        assert not [name for name in dask.scheduler.worker_plugins if name.startswith("vfl-secret-")]
    assert model_parts(outs["cluster"]) == model_parts(outs["pool"])
