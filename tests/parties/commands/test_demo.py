"""`vfl demo` is `vfl run <bundled job> --local`: its wiring, without the minute a real run takes
(the real thing runs in `make demo` and, for these jobs, in test_run_local.py)."""
from __future__ import annotations

import json

from parties.commands import run as run_command
from parties.commands.cli import main
from parties.commands.demo import DEMOS


def test_demo_runs_the_bundled_job_locally(monkeypatch, capsys, tmp_path):
    calls = []

    def fake_run_job_file(job, **kwargs):
        calls.append((job, kwargs))
        return {"job": "breast-lr", "model": "logistic_regression", "n_intersection": 569}

    monkeypatch.setattr(run_command, "run_job_file", fake_run_job_file)
    assert main(["demo", "--json", "--output-dir", str(tmp_path)]) == 0
    job, kwargs = calls[0]
    assert job.endswith(DEMOS["breast-lr"]) and kwargs["local"] and kwargs["output_dir"] == str(tmp_path)
    assert kwargs["plugins"] == [] and not kwargs["verbose"]
    assert json.loads(capsys.readouterr().out)["n_intersection"] == 569
    assert main(["demo", "wine-sbt", "--quiet"]) == 0
    assert calls[1][0].endswith("wine_sbt.toml") and calls[1][1]["output_dir"] == "runs/demo-wine-sbt"
    assert "job breast-lr: logistic_regression" in capsys.readouterr().out
