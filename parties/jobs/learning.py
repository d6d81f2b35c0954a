"""The passive side of the learning jobs, run by ``vfl serve`` when a listed peer asks.

A job names this party's data by alias only (``[data]`` in the party config); the party's config,
not the job, decides which columns a job may use and how many rounds it serves; model parts are
written under this party's own models directory, never to a path the job chooses.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import stat
import threading

from parties.jobs.registry import JobContext, register_job
from parties.runtime.errors import JobRejectedError
from vfl import validation
from vfl.checkpoint import RunState, digest_of
from vfl.errors import VFLError
from vfl.family import PassiveCaps
from vfl.jobs import passive
from vfl.jobs.data import open_table, read_header, read_table
from vfl.jobs.manifest import digest
from vfl.jobs.spec import PartySpec, PassiveRequest
from vfl.names import RULE, is_safe_name

log = logging.getLogger("parties.jobs.learning")

_LIVE: set[str] = set()          # the state directories of the runs this process is serving now
_LIVE_LOCK = threading.Lock()


def _request(ctx: JobContext) -> PassiveRequest:
    try:
        return PassiveRequest.parse(ctx.params, ctx.transport.party)
    except VFLError as exc:
        raise JobRejectedError(str(exc)) from None


def check_columns(ctx: JobContext, party: PartySpec, frame) -> PartySpec:
    """This party's config, not the job, decides which of its columns a job may use; returns
    the party's part of the job with its feature list settled.

    The policy is checked first, against the names the job asked for, so that a refusal never
    says anything about columns the policy withholds (not even whether they exist). A job that
    names no features uses every column the policy offers (default: every column but the id).
    """
    policy = ctx.data_policy(party.alias)
    me, allowed = ctx.transport.party, policy["features"]
    if policy["id_column"] is not None and party.id_column != policy["id_column"]:
        raise JobRejectedError(f"{me} matches customers on {policy['id_column']!r} only, not {party.id_column!r}")
    if party.features is not None and allowed is not None and set(party.features) - set(allowed):
        raise JobRejectedError(f"{me} does not offer columns {sorted(set(party.features) - set(allowed))}")
    if party.features is None and allowed is not None:
        party = dataclasses.replace(party, features=tuple(allowed))
    used = validation.check_columns(frame, me, id_column=party.id_column, label=None, features=party.features)
    if len(used) < policy["min_features"]:
        raise JobRejectedError(f"{me} needs a job to use at least {policy['min_features']} "
                               f"features (one alone could be read off its partial scores)")
    return party


def _safe(ctx: JobContext, what: str, value: str) -> str:
    """A name that becomes a file or directory name here ('.' and '..' pass the wire's rules)."""
    if not is_safe_name(value):
        raise JobRejectedError(f"{ctx.transport.party} refuses {what} {value!r}: not a safe file name ({RULE})")
    return value


def model_path(ctx: JobContext, job: str, run: str | None) -> str:
    """``<models_dir>/<initiator>/<job>/<run>/<party>.json``: a peer can only use (or overwrite)
    the model parts of jobs it started itself, and every run keeps its own part (parts of runs
    recorded before runs were: ``<models_dir>/<initiator>/<job>/<party>.json``). Every name in
    it is a safe file name (JobRejectedError otherwise), the job id of the transport too."""
    _safe(ctx, "job id", ctx.transport.job)
    _safe(ctx, "job name", job)
    if run is not None:
        _safe(ctx, "run id", run)
    return os.path.join(ctx.models_dir, ctx.initiator, job, *([run] if run else []), f"{ctx.transport.party}.json")


def _table(ctx: JobContext, request: PassiveRequest):
    """This party's table and the request with its own column policy applied. A file larger
    than ``[compute] stream_above_mb`` is read a chunk at a time (:class:`~vfl.jobs.data.CsvTable`)
    when the job's family can train on it so; any other is read whole."""
    path, me = ctx.data_path(request.party.alias), ctx.transport.party
    if request.family.data.streams and ctx.reads_in_chunks(path):
        request = dataclasses.replace(request, party=check_columns(ctx, request.party, read_header(path, me)))
        table = open_table(path, request.party, request.family)
        log.info("%s: reads %s (%.0f MB) a chunk at a time: %d rows, %d feature columns", me, path,
                 os.path.getsize(path) / 1e6, len(table), len(table.features))
        return table, request
    frame = read_table(path, me, request.party.id_column)
    return frame, dataclasses.replace(request, party=check_columns(ctx, request.party, frame))


def run_state(ctx: JobContext, request: PassiveRequest, frame) -> RunState:
    """Where this party checkpoints a training run: beside its model part, in
    ``<models_dir>/<initiator>/<job>/<run>/<party>.state/`` (private; removed when the run
    completes). ``request`` has this party's column policy applied (:func:`_table`): the state
    is bound to the job, the table, the columns the policy chose and the initiator's key, and a
    resumed run must hold one bound to the same (JobRejectedError otherwise, before the run)."""
    _safe(ctx, "job id", ctx.transport.job)
    run = request.resume or ctx.transport.job
    part = model_path(ctx, request.job, run)
    job = {k: v for k, v in ctx.params.items() if k != "resume"}
    me, party = ctx.transport.party, request.party
    columns = validation.check_columns(frame, me, id_column=party.id_column, label=None, features=party.features)
    state = RunState(os.path.splitext(part)[0] + ".state", run=run, job=digest_of(job),
                     peers=digest_of({ctx.initiator: ctx.initiator_key}), resume=request.resume is not None,
                     columns=digest_of([str(c) for c in columns]))
    if state.resume:
        if not state.held():
            raise JobRejectedError(f"{me} holds no checkpoint of run {run} of job {request.job!r}")
        try:
            state.check(frame, me)
        except VFLError as exc:
            raise JobRejectedError(str(exc)) from None
    return state


def remove_abandoned_states(ctx: JobContext, job: str, run: str) -> list[str]:
    """A fresh run of ``job`` starts: remove this party's states of the initiator's other runs
    of it, runs that never completed (a completed run's state is gone already). Only
    ``<models_dir>/<initiator>/<job>/<run id>/<party>.state`` directories, never through a
    symbolic link, never a run this process is serving now. Returns the directories removed."""
    base = os.path.join(ctx.models_dir, ctx.initiator, job)
    name, removed = f"{ctx.transport.party}.state", []
    if os.path.islink(base):
        return removed
    try:
        runs = [e for e in os.scandir(base) if e.name != run and e.is_dir(follow_symlinks=False)]
    except OSError:
        return removed
    for entry in runs:
        path = os.path.join(entry.path, name)
        try:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                continue
        except OSError:
            continue
        with _LIVE_LOCK:
            if os.path.abspath(path) in _LIVE:
                continue
            shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir(entry.path)               # the run's directory, if nothing else is left in it
        log.info("%s: removed its state of run %s of %s's job %r (never completed; a new run of the job "
                 "started)", ctx.transport.party, entry.name, ctx.initiator, job)
        removed.append(path)
    return removed


@contextlib.contextmanager
def _serving(state: RunState):
    key = os.path.abspath(state.directory)
    with _LIVE_LOCK:
        _LIVE.add(key)
    try:
        yield
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(key)


@register_job("vfl.train")
def train(ctx: JobContext) -> dict:
    """Every check of the job runs here, before the PSI: nothing derived from this party's ids
    leaves it for a job it would refuse later."""
    request = _request(ctx)
    rounds = request.rounds if request.rounds is not None else ctx.max_epochs
    if rounds > ctx.max_epochs:
        raise JobRejectedError(f"{ctx.transport.party} serves at most {ctx.max_epochs} rounds (epochs, trees); "
                               f"the job declares {rounds}")
    refused = [s for s in request.schemes if s not in ctx.schemes]
    if refused:
        raise JobRejectedError(f"{ctx.transport.party} computes only under {', '.join(ctx.schemes)} keys, but "
                               f"the job may use {', '.join(refused)} (its [crypto] schemes; "
                               f"for SecureBoost, set scheme = \"{ctx.schemes[0]}\" in [model])")
    caps = PassiveCaps(max_rounds=rounds, reveal_to=ctx.reveal_to, share_reasons=ctx.share_reason_codes,
                       min_features=ctx.data_policy(request.party.alias)["min_features"], schemes=ctx.schemes)
    try:
        request.family.check_passive(request.sections, [ctx.initiator, *request.passives], ctx.transport.party, caps)
    except (ValueError, VFLError) as exc:
        raise JobRejectedError(str(exc)) from None
    cap, features = ctx.max_feature_epsilon, request.feature_privacy
    if cap and (features is None or features.feature_epsilon > cap):
        asked = "no feature privacy" if features is None else f"feature_epsilon = {features.feature_epsilon:g}"
        raise JobRejectedError(f"{ctx.transport.party} trains only under [privacy] feature_epsilon <= {cap:g} "
                               f"(its config); the job asks {asked}")
    if request.privacy is not None:
        log.info("%s: %s's job %r trains on labels released by %s at ε = %g", ctx.transport.party, ctx.initiator,
                 request.job, request.privacy.mechanism, request.privacy.label_epsilon)
    frame, request = _table(ctx, request)
    state = run_state(ctx, request, frame)
    _feature_budget(ctx, request, state.run)
    with _serving(state):
        if not state.resume:
            remove_abandoned_states(ctx, request.job, state.run)
        result = passive.train(ctx.transport, request, frame, active=ctx.initiator,
                               model_path=model_path(ctx, request.job, state.run),
                               caps=caps, psi=ctx.psi_policy(), state=state)
        state.clear()
    return result.to_wire()


def _feature_budget(ctx: JobContext, request, run: str) -> None:
    """The ε of this party's columns the job spends (``[privacy] feature_epsilon_budget`` of its
    config): refused past the dataset's budget, or without feature DP on a budgeted dataset;
    else charged to the ledger now, before the PSI (a resumed run is not charged again)."""
    terms = ctx.privacy
    if terms is None or not terms.feature_ledger:
        return
    from parties.runtime.budgets import BudgetError, LabelLedger
    ledger = LabelLedger(terms, ctx.data, ctx.transport.party, kind="features")
    alias = request.party.alias
    try:
        if request.feature_privacy is None:
            ledger.check(alias, None, run=run)
            return
        status = ledger.charge(alias, request.feature_privacy, run=run, job=request.job)
    except BudgetError as exc:
        raise JobRejectedError(str(exc)) from None
    log.info("%s: %s's job %r spends feature ε = %g of %s (now %g in all%s)", ctx.transport.party, ctx.initiator,
             request.job, request.feature_privacy.feature_epsilon, alias, status["spent_after"],
             "" if status["budget"] is None else f" of a budget of {status['budget']:g}")


@register_job("vfl.predict")
def predict(ctx: JobContext) -> dict:
    request = _request(ctx)
    path = model_path(ctx, request.job, request.run)
    if not os.path.exists(path):
        raise JobRejectedError(f"{ctx.transport.party} has no model part for job {request.job!r} run {request.run}")
    if request.run is not None and request.part_digest != digest(path):
        raise JobRejectedError(f"{ctx.transport.party}'s part of job {request.job!r} run {request.run} is not the "
                               "one that run recorded (changed since)")
    frame, request = _table(ctx, request)
    rows = passive.predict(ctx.transport, request, frame, active=ctx.initiator, model_path=path,
                           psi=ctx.prediction_policy(f"{request.job}/{request.run or '-'}"))
    return {"rows": rows}
