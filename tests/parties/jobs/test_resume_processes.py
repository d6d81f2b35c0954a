"""Resuming runs whose parties were killed with SIGKILL, over real processes.

- A deployed run (served passives, this process the active party): a passive is killed in the
  middle of a tree, started again, and ``--resume`` finishes the run with the trees of an
  uninterrupted one.
- The soak test (``-m soak``): ``vfl run --local`` runs are killed at random points (a random
  party, after a random number of rounds, after a random delay) and resumed, N times for
  logistic regression and SecureBoost (``VFL_SOAK_RUNS``, 1 by default: one kill of the active
  in LR and one of a passive in SecureBoost). Every resumed run must end with the reference
  model, and no process of a killed run may be left behind.
"""
from __future__ import annotations

import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
from party_scenarios import model_parts

from parties.commands.run import run_job_file
from parties.jobs.launcher import LocalCluster
from vfl import datasets
from vfl.errors import VFLError

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]

HOST_FEATURES = [f"x{i}" for i in range(20)]


def job_text(model: str, params: dict, out, *, passives: int, local: bool) -> str:
    lines = ["[job]", 'name = "resumable"', f'model = "{model}"', f'output_dir = "{out}"', "",
             "[evaluation]", "test_size = 0.25", "seed = 5", "", "[model]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in params.items()]
    lines += ["", "[parties.bank]", 'role = "active"', f'data = "{datasets.path("breast_hetero_guest")}"',
              'label = "y"']
    for i in range(passives):
        lines += ["", f"[parties.lab{i}]", 'role = "passive"',
                  f'data = "{datasets.path("breast_hetero_host")}"' if local else f'alias = "host{i}"',
                  f"features = {json.dumps(HOST_FEATURES[i::passives])}"]
    return "\n".join(lines) + "\n"


def rounds_saved(directory) -> int:
    """The last round a party has checkpointed (-1: none yet; 0: past the PSI and split)."""
    d = pathlib.Path(directory)
    found = [int(p.stem.split("-")[1]) for p in d.glob("round-*.json")]
    return max(found, default=0 if (d / "job.json").exists() else -1)


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def _procs() -> dict[int, tuple[int, str]]:
    """pid -> (process group, command line) of every live (non-zombie) process."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[0] != "Z":
            out[int(entry)] = (int(fields[2]), cmd)
    return out


def groups_of(marker: str) -> set[int]:
    """The process groups of every process whose command line holds ``marker``."""
    return {pgid for pgid, cmd in _procs().values() if marker in cmd}


def alive_in(groups: set[int]) -> list[int]:
    return [pid for pid, (pgid, _) in _procs().items() if pgid in groups]


def vfl_run(job, *args) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "parties.commands.cli", "run", str(job), "--local", "--quiet", "--json", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            env=dict(os.environ, VFL_NO_PROGRESS="1"))


def finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode(), err.decode()


def kill_somewhere(tmp_path, job, out, *, rounds: int, victim: str, after_round: int, delay: float) -> None:
    """Start the run, wait until the active has checkpointed ``after_round`` rounds (and
    ``delay`` seconds more), SIGKILL ``victim`` and wait until every process of the run is gone."""
    proc = vfl_run(job)
    groups: set[int] = {proc.pid}
    try:
        wait_until(lambda: rounds_saved(out / "checkpoints" / "bank") >= after_round or proc.poll() is not None,
                   120, f"round {after_round}")
        groups |= groups_of(str(out / "parties"))
        time.sleep(delay)
        assert proc.poll() is None, f"the run ended before it could be killed: {finish(proc)[2][-2000:]}"
        if victim == "bank":
            os.kill(proc.pid, signal.SIGKILL)
        else:
            pgid = groups_of(str(out / "parties" / f"{victim}.toml"))
            assert pgid, f"no process of {victim}"
            os.kill(pgid.pop(), signal.SIGKILL)
        rc, _, err = finish(proc, timeout=60)     # the active, when a passive died, fails by itself
        assert rc != 0, err[-2000:]
        wait_until(lambda: not alive_in(groups), 30, "every process of the killed run to exit")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


SOAK = {
    "lr": ("logistic_regression", {"solver": "sgd", "epochs": 6, "batch_size": 64, "learning_rate": 0.3,
                                   "random_state": 0}, 1),
    "lr-lbfgs": ("logistic_regression", {"epochs": 12, "random_state": 0}, 1),
    "sbt": ("secureboost", {"n_estimators": 6, "max_depth": 3, "subsample": 0.8, "colsample_bytree": 0.8,
                            "random_state": 0}, 2),
}


@pytest.mark.soak
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("name", sorted(SOAK))
def test_soak_runs_killed_at_random_points_resume_to_the_reference(tmp_path, name):
    model, params, passives = SOAK[name]
    rounds = params.get("epochs", params.get("n_estimators"))
    ref_job = tmp_path / "reference.toml"
    ref_job.write_text(job_text(model, params, tmp_path / "reference", passives=passives, local=True))
    rc, report, err = finish(vfl_run(ref_job))
    assert rc == 0, err[-3000:]
    reference = model_parts(tmp_path / "reference")
    runs = int(os.environ.get("VFL_SOAK_RUNS", "1"))
    rng = random.Random(os.environ.get("VFL_SOAK_SEED"))
    parties = ["bank", *[f"lab{i}" for i in range(passives)]]
    for i in range(runs):
        if runs == 1:       # CI: the active of LR, a passive of SecureBoost, mid-run
            # (a SecureBoost tree on these rows takes well under 0.3 s: kill at once)
            victim, after = ("bank" if name == "lr" else parties[-1]), rounds // 2
            delay = 0.0 if name == "sbt" else 0.3
        else:
            victim, after, delay = rng.choice(parties), rng.randrange(0, rounds - 1), rng.uniform(0, 1.0)
        out = tmp_path / f"run-{i}"
        job = tmp_path / f"run-{i}.toml"
        job.write_text(job_text(model, params, out, passives=passives, local=True))
        kill_somewhere(tmp_path, job, out, rounds=rounds, victim=victim, after_round=after, delay=delay)
        assert json.loads((out / "run.json").read_text())["status"] == "running"
        assert not (out / "report.json").exists() and not (out / "model" / "manifest.json").exists()
        proc = vfl_run(job, "--resume", str(out))
        groups = {proc.pid}
        rc, printed, err = finish(proc)
        assert rc == 0, f"{victim} killed after round {after} (+{delay:.2f} s): {err[-3000:]}"
        resumed = json.loads(printed)
        assert 0 <= resumed["resumed_from"] <= rounds
        assert model_parts(out) == reference, f"{victim} killed after round {after} (+{delay:.2f} s)"
        assert resumed["metrics"] == json.loads(report)["metrics"]
        assert json.loads((out / "run.json").read_text())["status"] == "complete"
        assert not (out / "checkpoints").exists() and not (out / "parties").exists()
        manifest = json.loads((out / "model" / "manifest.json").read_text())
        assert manifest["run"] == resumed["run"] == json.loads((out / "run.json").read_text())["run"]
        wait_until(lambda: not alive_in(groups), 30, "the resumed run's processes to exit")


@pytest.mark.timeout(400)
def test_a_served_passive_killed_mid_tree_is_restarted_and_the_run_resumed(tmp_path):
    """Three parties, deployed: the active in this process, the passives served. One passive is
    killed with SIGKILL in the middle of a tree, its operator starts it again, the active resumes
    the run; the trees (and each passive's lookup table) are those of an uninterrupted run."""
    model, params = "secureboost", {"n_estimators": 4, "max_depth": 3, "random_state": 0}
    host = str(datasets.path("breast_hetero_host"))
    data = {f"lab{i}": {f"host{i}": host} for i in range(2)}
    limits = {"heartbeat_interval": 0.5, "peer_dead_after": 4.0}
    with LocalCluster(["bank", "lab0", "lab1"], data=data, limits=limits) as cluster:
        config = cluster.config_path("bank")
        ref = tmp_path / "ref.toml"
        ref.write_text(job_text(model, params, tmp_path / "ref", passives=2, local=False))
        reference = run_job_file(ref, config=config, verbose=False)
        job = tmp_path / "job.toml"
        out = tmp_path / "out"
        job.write_text(job_text(model, params, out, passives=2, local=False))
        failure: list[BaseException] = []

        def first_attempt():
            try:
                run_job_file(job, config=config, verbose=False)
            except BaseException as exc:          # noqa: BLE001 - the test inspects it
                failure.append(exc)
        thread = threading.Thread(target=first_attempt)
        thread.start()
        states = pathlib.Path(cluster.dir, "models", "bank", "resumable")
        wait_until(lambda: any(rounds_saved(d) >= 2 for d in states.glob("*/lab1.state")), 120, "lab1's tree 2")
        time.sleep(0.4)                                   # into the next tree
        cluster.kill("lab1")                              # SIGKILL
        thread.join(60)
        assert not thread.is_alive() and failure and isinstance(failure[0], VFLError), failure
        cluster.restart("lab1")
        resumed = run_job_file(job, config=config, verbose=False, resume=str(out))
        assert resumed["resumed_from"] >= 2
        assert resumed["metrics"] == reference["metrics"]
        ours, theirs = model_parts(out), model_parts(tmp_path / "ref")
        assert ours["bank"] == theirs["bank"]             # the active's trees
        run, ref_run = resumed["run"], reference["run"]
        for p in ("lab0", "lab1"):                        # each passive's lookup table of its splits
            mine = json.loads((states / run / f"{p}.json").read_text())["model"]
            base = json.loads((states / ref_run / f"{p}.json").read_text())["model"]
            assert mine == base
            assert not (states / run / f"{p}.state").exists()    # removed once the run completed
        with pytest.raises(VFLError, match="completed: there is nothing to resume"):
            run_job_file(job, config=config, verbose=False, resume=str(out))
