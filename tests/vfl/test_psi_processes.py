"""The PSI scenarios of test_psi_align.py again, each passive a ``vfl serve`` process over
ZeroMQ with CURVE; passives read CSV and write their aligned rows to an output alias."""
from __future__ import annotations

import os
import pathlib
import sys
import time
import types

import pandas as pd
import pytest

from parties.jobs import run_job
from parties.jobs.launcher import LocalCluster
from vfl.errors import PeerFailedError
from vfl.jobs.data import read_table
from vfl.psi import align_active

sys.path.insert(0, str(pathlib.Path(__file__).parent))       # import-mode=importlib: reuse the bodies
from test_psi_align import check_private, check_three_parties, private_tables, three_party_tables  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
FAST = {"heartbeat_interval": 0.25, "peer_dead_after": 15.0, "recv_timeout": 30.0}   # a loaded machine starts slowly


def run_processes(tmp_path, frames: dict, id_columns: dict, *, active: str, stream: bool = False, **options) -> dict:
    passives = [n for n in frames if n != active]
    data = {}
    for name in passives:
        frames[name].to_csv(tmp_path / f"{name}.csv", index=False)
        data[name] = {"table": str(tmp_path / f"{name}.csv"), "aligned": str(tmp_path / f"{name}.out.csv")}
    compute = {p: {"stream_above_mb": 0} for p in passives} if stream else None   # read in chunks
    with LocalCluster([active, *passives], data=data, limits=FAST, compute=compute) as cluster:
        with cluster.node(active) as node:
            job = run_job(node, "psi.passive", {"data": "table", "id_column": "id", "output": "aligned"}, passives,
                          role=lambda t: align_active(t, frames[active], id_columns[active], **options),
                          timeout=60)
    results = {active: job.result}
    for name in passives:
        frame = read_table(data[name]["aligned"], name, id_columns[name])
        results[name] = types.SimpleNamespace(frame=frame, report=types.SimpleNamespace(**job.peer_results[name]))
    return results


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "chunks"])
def test_three_parties_over_processes(tmp_path, stream):
    frames, cols = three_party_tables()
    check_three_parties(run_processes(tmp_path, frames, cols, active="a", stream=stream), frames, cols)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "chunks"])
def test_private_option_over_processes(tmp_path, stream):
    frames, cols = private_tables()
    check_private(run_processes(tmp_path, frames, cols, active="a", private=True, stream=stream), frames, cols)


def test_bad_passive_table_over_processes_fails_fast(tmp_path):
    frames = {"a": pd.DataFrame({"id": range(50)}), "b": pd.DataFrame({"id": [3, 3, 4]})}
    start = time.perf_counter()
    with pytest.raises(PeerFailedError, match=r"party 'b', id column 'id': 2 rows share an id") as info:
        run_processes(tmp_path, frames, {"a": "id", "b": "id"}, active="a")
    assert info.value.peer == "b" and time.perf_counter() - start < 30
    assert not os.path.exists(tmp_path / "b.out.csv")
