"""``vfl bench NAME --compute FILE``: the [compute] table of FILE reaches the benchmark's own
process and every party it starts; ``scale`` (which compares the backends itself) refuses it."""
from __future__ import annotations

import argparse
import importlib.resources
import os

import pytest

from parties.commands import bench
from parties.jobs import execute
from parties.runtime import compute
from parties.runtime.errors import ConfigError
from protocols import _workers
from vfl.jobs.spec import load_job

PROBE = '''
import os
from protocols import _workers

def add_arguments(parser):
    pass

def run(args):
    return {"workers": os.environ.get(_workers.ENV_VAR), "parties": args.parties.compute,
            "local": args.parties.local}

def render(result):
    return str(result)
'''


def test_the_compute_table_reaches_the_benchmark_and_its_parties(tmp_path, monkeypatch, capsys):
    (tmp_path / "vfl_bench_probe.py").write_text(PROBE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(bench.BENCHMARKS, "probe", ("vfl_bench_probe", "a probe"))
    monkeypatch.setenv(_workers.ENV_VAR, "2")
    (tmp_path / "party.toml").write_text("[compute]\nworkers = 1\nstream_above_mb = 0\n")
    assert bench.run(argparse.Namespace(bench="probe", options=["--compute", str(tmp_path / "party.toml"),
                                                                 "--json"])) == 0
    out = capsys.readouterr().out
    assert '"workers": "1"' in out and '"stream_above_mb": 0.0' in out and '"local": true' in out
    assert '"compute": {' in out                 # the result says where it ran
    assert bench.run(argparse.Namespace(bench="probe", options=[])) == 0
    assert capsys.readouterr().out.strip() == "{'workers': '2', 'parties': None, 'local': True}"   # as before
    parser, _ = bench.benchmark_parser("scale")
    with pytest.raises(SystemExit):
        parser.parse_args(["--compute", str(tmp_path / "party.toml")])


def test_a_compute_table_reads_back_to_the_same_config(tmp_path):
    (tmp_path / "certs").mkdir()
    for name in ("ca.pem", "me.pem", "me.key"):
        (tmp_path / "certs" / name).write_text("x")
    (tmp_path / "a.toml").write_text('[compute]\nscheduler = "tls://127.0.0.1:8786"\nca_file = "certs/ca.pem"\n'
                                     'cert_file = "certs/me.pem"\nkey_file = "certs/me.key"\ntask_timeout = 60\n')
    config = compute.read_compute_file(tmp_path / "a.toml")
    assert config.ca_file == os.path.join(str(tmp_path), "certs", "ca.pem")
    assert compute.parse_compute(compute.compute_table(config), lambda p: p) == config
    (tmp_path / "b.toml").write_text("[peers]\n")               # no [compute]: the default pool
    assert compute.compute_table(compute.read_compute_file(tmp_path / "b.toml")) == {"stream_above_mb": 1024.0}
    (tmp_path / "c.toml").write_text("[compute]\nstream_above_mb = -1\n")
    with pytest.raises(ConfigError, match="stream_above_mb must be a number of megabytes"):
        compute.read_compute_file(tmp_path / "c.toml")
    with pytest.raises(ConfigError, match="cannot read"):
        compute.read_compute_file(tmp_path / "missing.toml")


def test_local_passives_get_the_compute_table(monkeypatch):
    """A local run (``vfl run --local``, the benchmarks) starts its passives with it."""
    seen = {}

    class Stop(Exception):
        pass

    def fake_cluster(names, **kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr("parties.jobs.launcher.LocalCluster", fake_cluster)
    job = importlib.resources.files("vfl.datasets") / "jobs" / "breast_sbt.toml"
    spec = execute.local_spec(load_job(str(job)))
    with pytest.raises(Stop):
        with execute._initiator(spec, execute.Parties(local=True, compute={"workers": 1}), None):
            pass
    assert seen["compute"] == {p.name: {"workers": 1} for p in spec.passives}
