"""`vfl ping` against a served party, then `vfl audit` on what the pinging party sent."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from parties.jobs.launcher import LocalCluster


def _vfl(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "parties.commands.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_ping_a_served_party_then_audit_the_log():
    with LocalCluster(["bank", "insurer"], core_only=True) as cluster:      # insurer is served
        proc = _vfl("ping", "--config", cluster.config_path("bank"), "--peer", "insurer", "--ciphertexts", "64",
                    "--rounds", "2")
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "bank -> insurer: 2 round trips of 64 ciphertexts" in proc.stdout and "CURVE" in proc.stdout
        log = os.path.join(cluster.dir, "bank.audit.jsonl")
        proc = _vfl("audit", "--log", log, "--json")
        assert proc.returncode == 0, proc.stderr[-2000:]
        report = json.loads(proc.stdout)
        assert report["messages"] >= 3 and report["per_peer"]["insurer"]["bytes"] > 64 * 256
        assert "party.echo" in report["per_kind"] and "party.job_start" in report["per_kind"]
        text = _vfl("audit", "--log", log).stdout
        assert "peer insurer" in text
