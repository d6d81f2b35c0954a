"""A passive's config, not the job, decides which of its columns and files a job may use."""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd
import pytest

from parties.jobs import JobContext, learning
from parties.jobs.learning import check_columns, model_path, remove_abandoned_states, run_state
from parties.runtime.config import parse_config
from parties.runtime.errors import ConfigError, JobRejectedError
from vfl.checkpoint import Alignment, digest_of
from vfl.errors import DataError
from vfl.jobs.spec import PartySpec, PassiveRequest

FRAME = pd.DataFrame({"cid": [1, 2], "age": [30, 40], "premium": [1.0, 2.0], "claims": [0, 1]})


class _T:
    party = "insurer"
    job = "0123456789abcdef"


def _ctx(policies=None, *, job="0123456789abcdef", models="/models", params=None):
    transport = _T()
    transport.job = job
    return JobContext(transport, "bank", params or {}, {"customers": "/x.csv"}, 10, 5.0, models, policies or {})


def _mine(**kw):
    return PartySpec.from_params("insurer", {"alias": "customers", "id_column": "cid", "features": None, **kw})


def test_defaults_allow_two_or_more_features_but_never_the_id():
    check_columns(_ctx(), _mine(), FRAME)
    with pytest.raises(DataError, match="'cid' is the id or label column, not a feature"):
        check_columns(_ctx(), _mine(features=["cid", "age"]), FRAME)
    with pytest.raises(JobRejectedError, match="at least 2"):
        check_columns(_ctx(), _mine(features=["age"]), FRAME)
    with pytest.raises(DataError, match="listed more than once"):      # not two features
        check_columns(_ctx(), _mine(features=["age", "age"]), FRAME)


def test_policy_pins_the_id_column_and_the_offered_features():
    policy = {"customers": {"id_column": "cid", "features": ["age", "premium"], "min_features": 2}}
    check_columns(_ctx(policy), _mine(features=["age", "premium"]), FRAME)
    with pytest.raises(JobRejectedError, match="does not offer columns \\['claims'\\]"):
        check_columns(_ctx(policy), _mine(features=["age", "claims"]), FRAME)
    with pytest.raises(JobRejectedError, match="matches customers on 'cid' only"):
        check_columns(_ctx(policy), _mine(id_column="age", features=["premium", "claims"]), FRAME)


def test_a_job_that_may_use_a_scheme_the_config_refuses_is_refused_before_the_psi():
    params = {"job": "sbt", "model": "secureboost", "rounds": 3, "schemes": ["ou", "paillier"],
              "parties": {"insurer": {"alias": "customers", "id_column": "cid", "features": None}}}
    ctx = dataclasses.replace(_ctx(params=params), schemes=("paillier",))
    with pytest.raises(JobRejectedError, match='only under paillier keys, but the job may use ou .*= "paillier"'):
        learning.train(ctx)
    with pytest.raises(JobRejectedError, match="schemes"):
        learning.train(_ctx(params={**params, "schemes": ["rsa"]}))


@pytest.mark.parametrize("privacy,asked", [(None, "no feature privacy"),
                                            ({"feature_epsilon": 8.0}, "feature_epsilon = 8"),
                                            ({"label_epsilon": 1.0}, "no feature privacy")])
def test_a_passive_that_requires_feature_dp_refuses_a_job_without_enough_before_the_psi(privacy, asked, monkeypatch):
    params = {"job": "lr", "model": "logistic_regression", "rounds": 3,
              "parties": {"insurer": {"alias": "customers", "id_column": "cid", "features": None}},
              **({"privacy": privacy} if privacy else {})}
    ctx = dataclasses.replace(_ctx(params=params), max_feature_epsilon=4.0)
    with pytest.raises(JobRejectedError, match=f"feature_epsilon <= 4 .*the job asks {asked}"):
        learning.train(ctx)
    reached = []                          # within the cap: the checks pass and the job goes on to its table
    monkeypatch.setattr(learning, "_table", lambda *a: reached.append(True) or (_ for _ in ()).throw(KeyError()))
    with pytest.raises(KeyError):
        learning.train(dataclasses.replace(ctx, params={**params, "privacy": {"feature_epsilon": 2.0}}))
    assert reached


def test_model_parts_are_kept_per_initiator():
    assert model_path(_ctx(), "job1", "run1") == "/models/bank/job1/run1/insurer.json"
    assert model_path(_ctx(), "job1", None) == "/models/bank/job1/insurer.json"      # before runs were recorded


def test_config_policies_parse_and_are_checked(tmp_path):
    raw = {"name": "insurer", "listen": "tcp://127.0.0.1:7000",
           "data": {"customers": "c.csv", "policies": {"customers": {"id_column": "cid", "features": ["age"]}}}}
    config = parse_config(raw, base_dir=str(tmp_path), insecure=True)
    assert config.data_policies["customers"]["min_features"] == 2 and set(config.data) == {"customers"}
    bad = {**raw, "data": {"customers": "c.csv", "policies": {"other": {}}}}
    with pytest.raises(ConfigError, match="unknown aliases"):
        parse_config(bad, base_dir=str(tmp_path), insecure=True)
    bad = {**raw, "data": {"customers": "c.csv", "policies": {"customers": {"colour": "red"}}}}
    with pytest.raises(ConfigError, match="keys among"):
        parse_config(bad, base_dir=str(tmp_path), insecure=True)


def test_the_policy_is_checked_before_the_table_so_withheld_columns_stay_unknown():
    policy = {"customers": {"id_column": "cid", "features": ["age", "premium"], "min_features": 2}}
    for asked in (["age", "salary"], ["age", "claims"]):      # absent, and present but withheld: same answer
        with pytest.raises(JobRejectedError, match=r"does not offer columns \['(salary|claims)'\]$"):
            check_columns(_ctx(policy), _mine(features=asked), FRAME)
    settled = check_columns(_ctx(policy), _mine(), FRAME)      # no feature list: what the policy offers
    assert settled.features == ("age", "premium")
    assert check_columns(_ctx(), _mine(), FRAME).features is None    # no policy: every column but the id


def _train_request(policies, *, job="run-a", models="/models", resume=None):
    """A training request naming no features (the policy picks them), with the policy applied."""
    params = {"job": "credit", "model": "logistic_regression", "rounds": 3,
              "parties": {"insurer": {"alias": "customers", "id_column": "cid", "features": None}},
              **({"resume": resume} if resume else {})}
    ctx = _ctx(policies, job=job, models=models, params=params)
    request = PassiveRequest.parse(params, "insurer")
    return ctx, dataclasses.replace(request, party=check_columns(ctx, request.party, FRAME))


def _begin(state):
    rows = np.arange(len(FRAME))
    return state.begin(FRAME, Alignment(rows, rows[:1], rows[1:], "digest"))


def test_a_resume_whose_policy_picks_other_columns_is_refused(tmp_path):
    """The job names no features: the passive's policy picks them, so the checkpoint must be
    bound to what it picked (the same number of other columns must not get the saved weights)."""
    before = {"customers": {"id_column": "cid", "features": ["age", "premium"], "min_features": 2}}
    after = {"customers": {"id_column": "cid", "features": ["age", "claims"], "min_features": 2}}
    ctx, request = _train_request(before, models=str(tmp_path))
    state = run_state(ctx, request, FRAME)
    _begin(state)
    ctx, request = _train_request(after, job="run-b", models=str(tmp_path), resume="run-a")
    with pytest.raises(JobRejectedError, match="at party 'insurer': the columns it uses differ from those its "
                                               "checkpoint was written for"):
        run_state(ctx, request, FRAME)
    other = dataclasses.replace(state, columns=digest_of(["age", "claims"]), resume=True)
    with pytest.raises(DataError, match="columns it uses differ"):      # and in the run itself
        other.restore(FRAME, "insurer")
    ctx, request = _train_request(before, job="run-b", models=str(tmp_path), resume="run-a")
    resumed = run_state(ctx, request, FRAME)                            # the same columns: resumes
    assert resumed.run == "run-a" and resumed.restore(FRAME, "insurer")[0].digest == "digest"


@pytest.mark.parametrize("job_id", [".", "..", "a:b"])
def test_job_ids_that_are_not_file_names_are_refused(tmp_path, job_id):
    with pytest.raises(JobRejectedError, match="refuses job id"):
        model_path(_ctx(job=job_id), "credit", "run1")
    ctx, request = _train_request({}, job=job_id, models=str(tmp_path))
    with pytest.raises(JobRejectedError, match="refuses job id"):
        run_state(ctx, request, FRAME)
    with pytest.raises(JobRejectedError, match="refuses run id"):
        model_path(_ctx(), "credit", "..")
    assert os.listdir(tmp_path) == []


def test_a_fresh_run_removes_the_states_of_runs_that_never_completed(tmp_path, caplog):
    job = tmp_path / "bank" / "credit"
    for run in ("old-1", "old-2", "live", "current"):
        (job / run / "insurer.state").mkdir(parents=True)
        (job / run / "insurer.state" / "job.json").write_text("{}")
    (job / "old-1" / "insurer.json").write_text("{}")                   # a model part: kept
    (job / "old-2" / "lab.state").mkdir()                               # another party's state: kept
    outside = tmp_path / "outside"
    (outside / "insurer.state").mkdir(parents=True)
    os.symlink(outside, job / "linked")                                 # a link to elsewhere: not followed
    (job / "file-run").mkdir()
    os.symlink(outside / "insurer.state", job / "file-run" / "insurer.state")
    (tmp_path / "bank" / "other-job" / "old" / "insurer.state").mkdir(parents=True)   # another job: kept
    ctx = _ctx(job="current", models=str(tmp_path))
    live = learning.RunState(job / "live" / "insurer.state", run="live", job="j")
    with learning._serving(live), caplog.at_level("INFO", "parties.jobs.learning"):
        removed = remove_abandoned_states(ctx, "credit", "current")
    assert sorted(removed) == sorted(str(job / r / "insurer.state") for r in ("old-1", "old-2"))
    assert not (job / "old-1" / "insurer.state").exists() and (job / "old-1" / "insurer.json").exists()
    assert (job / "old-2" / "lab.state").is_dir()
    assert (job / "live" / "insurer.state").is_dir() and (job / "current" / "insurer.state").is_dir()
    assert (outside / "insurer.state").is_dir() and (tmp_path / "bank" / "other-job" / "old").is_dir()
    assert "removed its state of run old-1 of bank's job 'credit'" in caplog.text
    (job / "old-3" / "insurer.state").mkdir(parents=True)
    remove_abandoned_states(ctx, "credit", "current")
    assert not (job / "old-3").exists()                                 # an empty run directory goes too


class _Killed(Exception):
    pass


def test_the_handler_removes_abandoned_states_on_a_fresh_run_only(tmp_path, monkeypatch):
    """Through the handler: runs that die leave their states; resuming one keeps the others (it
    might be resumed too), refuses other columns before the run; a fresh run removes them all."""
    csv, models = tmp_path / "customers.csv", tmp_path / "models"
    FRAME.to_csv(csv, index=False)
    before = {"customers": {"id_column": "cid", "features": ["age", "premium"], "min_features": 2}}
    after = {"customers": {"id_column": "cid", "features": ["age", "claims"], "min_features": 2}}
    seen = []

    def fake_train(transport, request, frame, *, state, **kw):          # the run: records round 0, dies
        seen.append(state)
        if not state.resume:
            rows = np.arange(len(frame))
            state.begin(frame, Alignment(rows, rows[:1], rows[1:], "digest"))
        if transport.job != "new":
            raise _Killed()
        return _Result()
    monkeypatch.setattr(learning.passive, "train", fake_train)

    def handler(job, policy, resume=None):
        ctx, _ = _train_request(policy, job=job, models=str(models), resume=resume)
        ctx.data = {"customers": str(csv)}
        return learning.train(ctx)
    states = models / "bank" / "credit"
    with pytest.raises(_Killed):
        handler("old-1", before)
    with pytest.raises(_Killed):                                        # resumed (and dies again): kept
        handler("r2", before, resume="old-1")
    assert seen[-1].resume and (states / "old-1" / "insurer.state" / "job.json").is_file()
    with pytest.raises(JobRejectedError, match="columns it uses differ"):
        handler("r3", after, resume="old-1")
    assert len(seen) == 2                                               # refused before the run
    with pytest.raises(_Killed):                                        # a fresh run: old-1's state goes
        handler("old-2", before)
    assert not (states / "old-1").exists() and (states / "old-2" / "insurer.state" / "job.json").is_file()
    assert handler("new", before) == {}
    assert not (states / "old-2").exists()
    assert not (states / "new" / "insurer.state").exists()              # completed: its own state cleared too


class _Result:
    def to_wire(self):
        return {}


def test_a_passive_charges_the_epsilon_of_its_columns_before_the_psi(tmp_path, monkeypatch):
    from parties.runtime.budgets import parse_privacy_terms
    terms = parse_privacy_terms({"feature_epsilon_budget": {"customers": 3.0}, "delta": 1e-4},
                                lambda p: str(tmp_path / p), "insurer", {"customers"})
    started = []
    monkeypatch.setattr(learning, "_table", lambda ctx, request: (FRAME, request))
    monkeypatch.setattr(learning, "run_state", lambda ctx, request, frame: type("S", (), {"run": ctx.params["job"]})())
    monkeypatch.setattr(learning, "_serving", lambda state: (_ for _ in ()).throw(KeyError("psi would start")))

    def attempt(job, privacy):
        params = {"job": job, "model": "logistic_regression", "rounds": 3,
                  "parties": {"insurer": {"alias": "customers", "id_column": "cid", "features": None}},
                  **({"privacy": privacy} if privacy else {})}
        ctx = dataclasses.replace(_ctx(params=params), privacy=terms)
        try:
            learning.train(ctx)
        except KeyError:
            started.append(job)
    attempt("a", {"feature_epsilon": 2.0})
    attempt("a", {"feature_epsilon": 2.0})                       # the same run again (a resume): no new charge
    with pytest.raises(JobRejectedError, match="feature_epsilon = 2 would take the columns of customers to ε = 4"):
        attempt("b", {"feature_epsilon": 2.0})
    with pytest.raises(JobRejectedError, match="without \\[privacy\\] feature_epsilon"):
        attempt("c", None)
    attempt("d", {"feature_epsilon": 1.0})
    assert started == ["a", "a", "d"]
