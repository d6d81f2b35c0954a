"""Checkpoint and resume over the in-process transport: a party dies at some message of a run
(its role raises there, as a killed process would stop), the run is resumed from every party's
checkpoints, and the model is the one an uninterrupted run makes. The same over real processes,
with SIGKILL, is in tests/parties/jobs/test_resume_processes.py."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from parties.transport.inprocess import InProcessNetwork
from vfl import datasets
from vfl.checkpoint import Checkpoints, RunState, agree_round
from vfl.errors import DataError, PeerFailedError, ProtocolError
from vfl.family import PassiveCaps
from vfl.jobs import active, passive
from vfl.jobs.spec import PassiveRequest, parse_job

CAPS = PassiveCaps(max_rounds=50, allow_small_keys=True)


class Killed(Exception):
    """What a party 'dies' of in these tests."""


def job(model: str, params: dict, n_passives: int = 1, test_size: float = 0.2) -> dict:
    parties = {"bank": {"role": "active", "data": "a.csv", "label": "y"}}
    parties.update({f"p{i}": {"role": "passive", "data": f"p{i}.csv", "alias": f"p{i}"} for i in range(n_passives)})
    return {"job": {"name": "resume", "model": model}, "evaluation": {"test_size": test_size, "seed": 1},
            "model": params, "parties": parties}


def frames_for(n_passives: int) -> dict:
    guest, host = datasets.load_hetero("breast")
    guest = guest.sample(frac=0.9, random_state=1)
    out = {"bank": guest}
    columns = [c for c in host.columns if c != "id"]
    for i, part in enumerate(np.array_split(columns, n_passives)):
        out[f"p{i}"] = host[["id", *part]].sample(frac=0.95, random_state=i)
    return out


def run(spec, frames, tmp_path, key, *, resume=False, die: tuple[str, int] | None = None, run_id="run-1"):
    """One attempt at the run; ``die=(party, n)``: that party dies at its n-th message sent."""
    names = [p.name for p in spec.parties]
    net = InProcessNetwork(names, timeout=20)
    states = {n: RunState(tmp_path / "state" / n, run=run_id, job="job-digest", peers="peers", resume=resume)
              for n in names}
    if die is not None:
        victim, limit = die
        t, sent = net[victim], [0]
        original = t._transmit

        def transmit(peer, header, raws, *, urgent=False):
            if not urgent:
                sent[0] += 1
                if sent[0] >= limit:
                    raise Killed(f"{victim} killed at message {limit}")
            original(peer, header, raws, urgent=urgent)
        t._transmit = transmit
    roles = {spec.active.name: lambda t: active.train(t, spec, frames[spec.active.name], private_key=key,
                                                      verbose=False, state=states[spec.active.name])}
    for p in spec.passives:
        request = PassiveRequest.parse(spec.passive_request(), p.name)
        roles[p.name] = lambda t, r=request, n=p.name: passive.train(
            t, r, frames[n], active=spec.active.name, model_path=tmp_path / "model" / f"{n}.json", caps=CAPS,
            state=states[n])
    return net, net.run(roles)


def parts(tmp_path, spec) -> dict:
    """Every party's saved model, as loaded data (the model bodies, not file bytes)."""
    out = {}
    for p in spec.parties:
        doc = json.loads((tmp_path / "model" / f"{p.name}.json").read_text())
        out[p.name] = doc.get("model") or doc.get("arrays")
    return out


CASES = [
    ("logistic_regression", {"solver": "sgd", "epochs": 4, "batch_size": 64, "learning_rate": 0.3,
                             "key_bits": 1024, "random_state": 0}, 1),
    ("logistic_regression", {"epochs": 12, "key_bits": 1024, "random_state": 0}, 1),
    ("logistic_regression", {"epochs": 4, "batch_size": 64, "learning_rate": 0.3, "protocol": "feature_key",
                             "key_bits": 1024, "random_state": 0}, 2),
    ("secureboost", {"n_estimators": 4, "max_depth": 2, "subsample": 0.8, "colsample_bytree": 0.7,
                     "first_k_trees_active_only": 1, "key_bits": 1024, "random_state": 0}, 2),
    ("secureboost", {"n_estimators": 3, "max_depth": 2, "key_bits": 1024, "random_state": 0}, 1),
]


@pytest.mark.parametrize("model,params,n_passives", CASES, ids=["lr-sgd-2p", "lr-lbfgs-2p", "lr-lbfgs-feature-key-3p",
                                                                    "sbt-3p", "sbt-2p"])
def test_a_run_killed_anywhere_resumes_to_the_same_model(tmp_path, small_keypair, model, params, n_passives):
    spec = parse_job(job(model, params, n_passives))
    frames, key = frames_for(n_passives), small_keypair[1]
    ref_dir = tmp_path / "reference"
    net, ref = run(dataclasses.replace(spec, output_dir=str(ref_dir)), frames, ref_dir, key)
    reference = parts(ref_dir, spec)
    totals = {p.name: sum(s.messages_sent for s in net[p.name].stats().values()) for p in spec.parties}
    psi_done = {p.name: 6 if p.role == "active" else 4 for p in spec.parties}   # past the PSI and split
    victims = [("bank", 0.6), (spec.passives[-1].name, 0.85)]
    for i, (victim, where) in enumerate(victims):
        limit = max(psi_done[victim], int(totals[victim] * where))
        out_dir = tmp_path / f"attempt-{i}"
        s = dataclasses.replace(spec, output_dir=str(out_dir))
        with pytest.raises((Killed, PeerFailedError)):
            run(s, frames, out_dir, key, die=(victim, limit), run_id=f"run-{i}")
        _, out = run(s, frames, out_dir, key, resume=True, run_id=f"run-{i}")
        result = out["bank"]
        assert result.resumed_from > 0                  # from a checkpoint, not from the start
        assert parts(out_dir, spec) == reference, f"{victim} killed at message {limit} of {totals[victim]}"
        assert result.evaluation.metrics == ref["bank"].evaluation.metrics
        assert result.summary.to_report().get("loss_curve") == ref["bank"].summary.to_report().get("loss_curve")
        assert result.train_ids == ref["bank"].train_ids


def test_resume_refuses_a_changed_table_and_a_missing_state(tmp_path, small_keypair):
    spec = parse_job(job("logistic_regression", {"epochs": 3, "batch_size": 64, "key_bits": 1024, "random_state": 0}))
    spec = dataclasses.replace(spec, output_dir=str(tmp_path))
    frames, key = frames_for(1), small_keypair[1]
    with pytest.raises((Killed, PeerFailedError)):
        run(spec, frames, tmp_path, key, die=("bank", 20))
    changed = dict(frames, p0=frames["p0"].assign(**{frames["p0"].columns[1]: 0.0}))
    with pytest.raises(DataError, match="p0'.s table changed"):
        run(spec, changed, tmp_path, key, resume=True)
    with pytest.raises(DataError, match="holds no state of run other"):
        run(spec, frames, tmp_path, key, resume=True, run_id="other")


def test_agreement_takes_the_last_round_every_party_holds(tmp_path):
    assert agree_round([0, 3, 4], {"a": [[0, 0], [3, 3], [4, 4]], "b": [[0, 0], [2, 2], [3, 3]]}) == 3
    assert agree_round([0, 5, 6], {"a": [[0, 0], [1, 2], [3, -1]]}) == 6       # open-ended: later rounds too
    assert agree_round([0, 5, 6], {"a": [[0, 0], [1, 4]]}) == 0
    with pytest.raises(ProtocolError, match="malformed"):
        agree_round([0], {"a": [[0, "x"]]})
    store = Checkpoints(tmp_path, {"run": "r"})
    for r in range(1, 5):
        store.save(r, {"w": np.arange(3.0) * r})
    assert store.rounds() == [3, 4] and store.holdings() == [(0, 0), (3, 3), (4, 4)]
    assert np.array_equal(store.load(4)["w"], np.arange(3.0) * 4) and store.load(0) is None
    other = Checkpoints(tmp_path, {"run": "another"})
    assert other.rounds() == []                        # files bound to another run are never used
    assert oct((tmp_path / "round-000004.json").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("victim", ["bank"])
def test_a_resumed_run_with_gradient_noise_draws_no_tree_s_noise_twice(tmp_path, small_keypair, monkeypatch, victim):
    """Each tree's noise is drawn once, kept with the run, and reused by the resumed run: over
    the killed attempt and its resume, exactly one draw per tree."""
    import vfl.privacy as privacy
    drawn = []
    real = privacy.discrete_gaussians
    monkeypatch.setattr(privacy, "discrete_gaussians", lambda sigma, size: drawn.append(size) or real(sigma, size))
    params = {"n_estimators": 4, "max_depth": 2, "key_bits": 1024, "random_state": 0}
    spec = parse_job({**job("secureboost", params), "privacy": {"label_epsilon": 4.0, "mechanism": "gradient_noise"}})
    frames, key = frames_for(1), small_keypair[1]
    ref_dir = tmp_path / "reference"
    net, _ = run(dataclasses.replace(spec, output_dir=str(ref_dir)), frames, ref_dir, key)
    assert len(drawn) == 4
    total = sum(s.messages_sent for s in net[victim].stats().values())
    drawn.clear()
    out_dir = tmp_path / "attempt"
    s = dataclasses.replace(spec, output_dir=str(out_dir))
    with pytest.raises((Killed, PeerFailedError)):
        run(s, frames, out_dir, key, die=(victim, int(total * 0.7)))
    before = len(drawn)
    assert 1 <= before < 4
    _, out = run(s, frames, out_dir, key, resume=True)
    assert out["bank"].resumed_from > 0 and len(drawn) == 4          # the resume drew only the trees not begun
    assert out["bank"].privacy["mechanism"] == "gradient_noise"


@pytest.mark.parametrize("protocol", ["label_key", "feature_key"])
def test_a_resumed_run_with_feature_noise_draws_no_epoch_s_noise_twice(tmp_path, small_keypair, monkeypatch,
                                                                       protocol):
    """A passive under feature DP draws each epoch's noise once and keeps it with the run: the
    epoch a killed passive was in is sent again with the same noise, not with new noise."""
    import vfl.privacy as privacy
    drawn = []
    real = privacy.discrete_gaussians
    monkeypatch.setattr(privacy, "discrete_gaussians", lambda sigma, size: drawn.append(size) or real(sigma, size))
    params = {"solver": "sgd", "epochs": 4, "batch_size": 64, "key_bits": 1024, "random_state": 0,
              "protocol": protocol}
    spec = parse_job({**job("logistic_regression", params), "privacy": {"feature_epsilon": 4.0}})
    frames, key = frames_for(1), small_keypair[1]
    ref_dir = tmp_path / "reference"
    net, _ = run(dataclasses.replace(spec, output_dir=str(ref_dir)), frames, ref_dir, key)
    assert len(drawn) == 4
    total = sum(s.messages_sent for s in net["p0"].stats().values())
    drawn.clear()
    out_dir = tmp_path / "attempt"
    s = dataclasses.replace(spec, output_dir=str(out_dir))
    with pytest.raises((Killed, PeerFailedError)):
        run(s, frames, out_dir, key, die=("p0", int(total * 0.6)))
    assert 1 <= len(drawn) < 4
    _, out = run(s, frames, out_dir, key, resume=True)
    assert out["bank"].resumed_from > 0 and len(drawn) == 4            # the resume drew only the epochs not begun
    assert out["bank"].privacy["features"]["feature_epsilon"] == 4.0


def test_an_active_that_sends_other_residuals_in_a_resumed_epoch_is_refused(tmp_path, small_keypair, monkeypatch):
    """Kept noise protects a replay only if the replay is the same: an active that changes the
    residuals after the interruption would learn the difference of two releases without noise.
    The passive compares the gradient it arrives at with the one it used, and stops."""
    from vfl.linear.training import ActiveTrainer
    params = {"solver": "sgd", "epochs": 3, "batch_size": 64, "key_bits": 1024, "random_state": 0}
    spec = parse_job({**job("logistic_regression", params), "privacy": {"feature_epsilon": 4.0}})
    frames, key = frames_for(1), small_keypair[1]
    probe = tmp_path / "probe"
    net, _ = run(dataclasses.replace(spec, output_dir=str(probe)), frames, probe, key)
    total = sum(s.messages_sent for s in net["p0"].stats().values())
    s = dataclasses.replace(spec, output_dir=str(tmp_path / "attempt"))
    with pytest.raises((Killed, PeerFailedError)):
        run(s, frames, tmp_path / "attempt", key, die=("p0", int(total * 0.5)))
    honest = ActiveTrainer._residual
    # Other residuals by far more than a grid step of the released gradient: a change below one
    # step can round to the same release (nothing new is learnt then) and would not be caught.
    monkeypatch.setattr(ActiveTrainer, "_residual", lambda self, z, rows: -honest(self, z, rows))
    with pytest.raises((ProtocolError, PeerFailedError), match="differs from the one this party used|p0"):
        run(s, frames, tmp_path / "attempt", key, resume=True)
