"""A model family from outside the engine (tests/plugins/toy_family.py) runs through the same
job path as the built-in ones: job-file validation, `vfl run --local`, the report, `vfl predict`."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from vfl import datasets, registry
from vfl.jobs.spec import JobSpecError, parse_job

HERE = pathlib.Path(__file__).resolve().parent
JOB = """
[job]
name = "toy"
model = "mean_predictor"
output_dir = "{out}"
[evaluation]
test_size = 0.25
seed = 1
[model]
shrinkage = 0.5
[parties.bank]
role = "active"
data = "{guest}"
label = "x0"
[parties.lab]
role = "passive"
data = "{host}"
"""


def _vfl(*args, timeout=240):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "parties.commands.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_the_plugin_registers_and_its_hyperparameters_are_checked():
    sys.path.insert(0, str(HERE))
    try:
        assert "mean_predictor" in registry.load_plugins(["toy_family"])
    finally:
        sys.path.remove(str(HERE))
    raw = {"job": {"model": "mean_predictor"}, "model": {"shrinkage": 2.0},
           "parties": {"a": {"role": "active", "data": "a.csv", "label": "y"}, "b": {"role": "passive", "data": "b"}}}
    with pytest.raises(JobSpecError, match=r"\[model\] ActiveMean: shrinkage must be a number in \[0, 1\], got 2.0"):
        parse_job(raw)
    with pytest.raises(registry.PluginError, match="plugin 'no_such_module' could not be imported"):
        registry.load_plugins(["no_such_module"])


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_plugin_family_runs_through_vfl_run_and_predict(tmp_path):
    guest = datasets.load("breast_hetero_guest")
    guest.loc[guest.index[:60], "x1"] = float("nan")     # this family takes empty cells
    guest.to_csv(tmp_path / "guest.csv", index=False)
    job = tmp_path / "job.toml"
    job.write_text(JOB.format(out=tmp_path / "out", guest=tmp_path / "guest.csv",
                              host=datasets.path("breast_hetero_host")))
    proc = _vfl("run", str(job), "--local", "--json", "--plugin", "toy_family")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    train = guest.set_index("id").loc[report_ids(tmp_path, "train_ids"), "x0"]
    assert report["model"] == "mean_predictor" and report["mean"] == pytest.approx(0.5 * train.mean())
    assert report["passive_features"] == {"lab": 20} and set(report["metrics"]) == {"rmse", "r2"}
    assert report["baseline"]["metrics"]["rmse"] == pytest.approx(report["metrics"]["rmse"])
    assert (tmp_path / "out" / "model" / "lab.json").exists() and (tmp_path / "out" / "report.json").exists()
    proc = _vfl("predict", str(job), "--model", str(tmp_path / "out"), "--local", "--json", "--plugin", "toy_family",
                "--out", str(tmp_path / "pred.csv"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert len(pred) == 569 and pred["score"].to_numpy() == pytest.approx(np.full(569, report["mean"]))


def report_ids(tmp_path, key: str) -> list:
    return [int(i) for i in json.loads((tmp_path / "out" / "split.json").read_text())[key]]


def test_without_the_plugin_the_job_is_refused_by_name(tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(JOB.format(out=tmp_path / "out", guest="g.csv", host="h.csv"))
    proc = _vfl("run", str(job), "--local", timeout=60)
    assert proc.returncode == 2 and "model must be one of" in proc.stderr and "'mean_predictor'" in proc.stderr


def test_a_family_s_own_job_sections_reach_both_roles(tmp_path, small_keypair):
    """A family that declares a job-file section gets it, checked, at the active and at each passive."""
    import dataclasses as dc

    from parties.transport.inprocess import InProcessNetwork
    from vfl.family import PassiveCaps
    from vfl.jobs import active, passive
    from vfl.jobs.spec import PassiveRequest
    sys.path.insert(0, str(HERE))
    try:
        import toy_family
    finally:
        sys.path.remove(str(HERE))
    seen = {}

    class WithClipping(toy_family.MeanPredictorFamily):
        name = "mean_with_clipping"
        sections = frozenset({"clipping"})

        def check_section(self, name, table):
            if not 0 < table.get("bound", 0) <= 10:
                raise ValueError(f"bound must be in (0, 10], got {table.get('bound')!r}")

        def active(self, params, *, verbose=True, sections=None):
            seen["active"] = sections
            return super().active(params, verbose=verbose)

        def passive(self, caps, sections=None):
            seen["passive"] = sections
            return super().passive(caps)

    registry.register(WithClipping())
    raw = {"job": {"model": "mean_with_clipping"}, "clipping": {"bound": 2.0},
           "parties": {"bank": {"role": "active", "data": "a.csv", "label": "x0"},
                       "lab": {"role": "passive", "data": "b.csv"}}}
    spec = dc.replace(parse_job(raw), output_dir=str(tmp_path))
    with pytest.raises(JobSpecError, match=r"\[clipping\] bound must be in \(0, 10\], got 0"):
        parse_job({**raw, "clipping": {"bound": 0}})
    request = PassiveRequest.parse(spec.passive_request(), "lab")
    with pytest.raises(JobSpecError, match="bound"):        # a passive checks what the active sent
        PassiveRequest.parse({**spec.passive_request(), "sections": {"clipping": {"bound": 99}}}, "lab")
    guest, host = datasets.load_hetero("breast")
    net = InProcessNetwork(["bank", "lab"], timeout=30)
    net.run({"bank": lambda t: active.train(t, spec, guest, verbose=False),
             "lab": lambda t: passive.train(t, request, host, active="bank", model_path=tmp_path / "lab.json",
                                            caps=PassiveCaps(max_rounds=5))})
    assert seen == {"active": {"clipping": {"bound": 2.0}}, "passive": {"clipping": {"bound": 2.0}}}


def test_a_plugin_cannot_claim_a_built_in_message_kind(tmp_path, monkeypatch):
    (tmp_path / "greedy_plugin.py").write_text(
        "import dataclasses\nfrom protocols.messages import Message\n\n\n"
        "@dataclasses.dataclass(frozen=True)\nclass PsiSetup(Message):\n    KIND = 'psi.setup'\n    salt: bytes\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(registry.PluginError, match="'psi.setup' used by both protocols.psi.messages.PsiSetup"):
        registry.load_plugins(["greedy_plugin"])
