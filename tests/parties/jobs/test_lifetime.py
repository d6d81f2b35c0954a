"""A party's worker processes hold its secrets while they work: killed with SIGKILL (as an OOM
killer does), the party takes its fork server, workers and resource tracker with it."""
from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np
import pandas as pd
import pytest

from parties.jobs import run_job
from parties.jobs.launcher import LocalCluster
from vfl.psi import align_active

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]


def _group(pgid: int) -> list[int]:
    """Live processes (not zombies) of a process group."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(entry))
    return pids


def test_a_killed_party_leaves_no_worker_behind(tmp_path):
    ids = np.arange(20_000)
    path = tmp_path / "insurer.csv"
    pd.DataFrame({"id": ids[5000:], "x": 1.0}).to_csv(path, index=False)
    with LocalCluster(["bank", "insurer"], data={"insurer": {"customers": str(path)}}) as cluster:
        job = run_job(cluster.node("bank"), "psi.passive", {"data": "customers", "id_column": "id"}, ["insurer"],
                      role=lambda t: align_active(t, pd.DataFrame({"id": ids[:15_000]}), "id"), timeout=60)
        assert job.result.report.size == 10_000
        pgid = cluster.pid("insurer")            # the served party leads its own process group
        assert len(_group(pgid)) >= 3            # the party, its fork server and workers (and a tracker)
        os.kill(pgid, signal.SIGKILL)            # the party alone, as an OOM killer would
        deadline = time.monotonic() + 20
        while _group(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _group(pgid) == [], "processes outlived their party"
