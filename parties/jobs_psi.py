"""PSI as a job: the passive role that ``vfl serve`` runs when an active party asks.

Registered as ``psi.passive``; load it with ``vfl serve --jobs-module parties.jobs_psi`` (or
list it in :data:`parties.jobs.HANDLER_MODULES`). The initiator runs
:func:`vfl.psi.align_active` over the job's transport::

    run_job(node, "psi.passive", {"data": "customers", "id_column": "id"}, ["insurer"],
            role=lambda t: align_active(t, df, "id"))

params: ``data`` (an alias from this party's ``[data]``: a CSV file), ``id_column``, and
optionally ``output`` (another alias: the aligned rows are written there, as CSV, on this
party's own disk). The id column is read as text, so ``"007"`` stays ``"007"``. Options such as ``private`` are the
active party's and reach this side in ``PsiSetup``. The result sent back is the report
(sizes and seconds), never ids or rows.
"""
from __future__ import annotations

import pandas as pd

from parties.errors import JobRejectedError
from parties.jobs import JobContext, register_job
from vfl.psi import align_passive


def load_table(path: str, id_column: str) -> pd.DataFrame:
    return pd.read_csv(path, dtype={id_column: str})


@register_job("psi.passive")
def psi_passive(ctx: JobContext) -> dict:
    id_column = ctx.params.get("id_column")
    if not isinstance(id_column, str) or not id_column:
        raise JobRejectedError(f"psi.passive needs a string id_column, got {id_column!r}")
    df = load_table(ctx.data_path(ctx.params.get("data")), id_column)
    output = ctx.params.get("output")
    target = ctx.data_path(output) if output is not None else None     # refuse before any work
    result = align_passive(ctx.transport, df, id_column, active=ctx.initiator, progress=False)
    if target is not None:
        result.frame.to_csv(target, index=False)
    return result.report.as_dict()


# -- end-to-end measurement (``vfl bench psi --e2e-n N`` runs this in a fresh process) -------
def run_e2e(n: int, *, private: bool = False) -> dict:
    """N x N ids (50% shared) between two party processes over loopback ZeroMQ with CURVE.

    The passive ``insurer`` is a ``vfl serve`` process reading a CSV; the active ``bank``
    runs in this process from a DataFrame. Timed: the job, from JobStart until both
    parties hold aligned rows (CSV read, normalization, hashing, masking, transfer,
    intersection, alignment). Not timed: writing the CSV and starting the cluster.
    """
    import os
    import tempfile
    import time

    import numpy as np

    from parties.jobs import run_job
    from parties.launcher import LocalCluster
    from vfl.psi import align_active

    rng = np.random.default_rng(11)                      # statistical test data, not secrets
    ids = rng.permutation(np.arange(10**12, 10**12 + 2 * n - n // 2, dtype=np.int64))
    bank = pd.DataFrame({"id": ids[:n], "label": rng.integers(0, 2, n)})
    with tempfile.TemporaryDirectory(prefix="vfl-psi-e2e-") as tmp:
        path = os.path.join(tmp, "insurer.csv")
        pd.DataFrame({"id": ids[n - n // 2:], "x": rng.random(n)}).to_csv(path, index=False)
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        with LocalCluster(["bank", "insurer"], data={"insurer": {"customers": path}},
                          jobs_modules=("parties.jobs_psi",), limits={"recv_timeout": 900.0}) as cluster:
            with cluster.node("bank") as node:
                ready = time.perf_counter()
                job = run_job(node, "psi.passive", {"data": "customers", "id_column": "id"}, ["insurer"],
                              role=lambda t: align_active(t, bank, "id", private=private), timeout=900.0)
                done = time.perf_counter()
    aligned = job.result
    return {"n": n, "seconds": done - ready, "startup_seconds": ready - started,
            "size": aligned.report.size, "expected": n // 2, "cores": os.cpu_count(),
            "workers": os.environ.get("VFL_WORKERS", "all cores"),
            "bytes": {p: s["bytes_sent"] + s["bytes_received"] for p, s in job.stats.items()},
            "passive": job.peer_results["insurer"],
            "load_average": [load_before, os.getloadavg()[0]]}     # other work on the machine


if __name__ == "__main__":      # pragma: no cover - used by vfl.bench.psi in a child process
    import argparse
    import json

    parser = argparse.ArgumentParser(description="PSI end to end over ZeroMQ party processes")
    parser.add_argument("--e2e-n", type=int, required=True)
    parser.add_argument("--private", action="store_true")
    cli = parser.parse_args()
    print("E2E " + json.dumps(run_e2e(cli.e2e_n, private=cli.private)), flush=True)
