"""The passive side of the learning jobs, run by ``vfl serve`` when a listed peer asks.

A job names this party's data by alias only (``[data]`` in the party config); the party's config,
not the job, decides which columns a job may use and how many rounds it serves; model parts are
written under this party's own models directory, never to a path the job chooses.
"""
from __future__ import annotations

import dataclasses
import os

from parties.jobs.registry import JobContext, register_job
from parties.runtime.errors import JobRejectedError
from vfl import validation
from vfl.checkpoint import RunState, digest_of
from vfl.errors import VFLError
from vfl.family import PassiveCaps
from vfl.jobs import passive
from vfl.jobs.data import read_table
from vfl.jobs.manifest import digest
from vfl.jobs.spec import PartySpec, PassiveRequest


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


def model_path(ctx: JobContext, job: str, run: str | None) -> str:
    """``<models_dir>/<initiator>/<job>/<run>/<party>.json``: a peer can only use (or overwrite)
    the model parts of jobs it started itself, and every run keeps its own part (parts of runs
    recorded before runs were: ``<models_dir>/<initiator>/<job>/<party>.json``)."""
    return os.path.join(ctx.models_dir, ctx.initiator, job, *([run] if run else []), f"{ctx.transport.party}.json")


def _table(ctx: JobContext, request: PassiveRequest):
    """This party's table and the request with its own column policy applied."""
    frame = read_table(ctx.data_path(request.party.alias), ctx.transport.party, request.party.id_column)
    return frame, dataclasses.replace(request, party=check_columns(ctx, request.party, frame))


def run_state(ctx: JobContext, request: PassiveRequest) -> RunState:
    """Where this party checkpoints a training run: beside its model part, in
    ``<models_dir>/<initiator>/<job>/<run>/<party>.state/`` (private; removed when the run
    completes). A resumed run must hold one, bound to the same job, table and initiator key."""
    run = request.resume or ctx.transport.job
    part = model_path(ctx, request.job, run)
    job = {k: v for k, v in ctx.params.items() if k != "resume"}
    state = RunState(os.path.splitext(part)[0] + ".state", run=run, job=digest_of(job),
                     peers=digest_of({ctx.initiator: ctx.initiator_key}), resume=request.resume is not None)
    if state.resume and not state.held():
        raise JobRejectedError(f"{ctx.transport.party} holds no checkpoint of run {run} of job {request.job!r}")
    return state


@register_job("vfl.train")
def train(ctx: JobContext) -> dict:
    """Every check of the job runs here, before the PSI: nothing derived from this party's ids
    leaves it for a job it would refuse later."""
    request = _request(ctx)
    rounds = request.rounds if request.rounds is not None else ctx.max_epochs
    if rounds > ctx.max_epochs:
        raise JobRejectedError(f"{ctx.transport.party} serves at most {ctx.max_epochs} rounds (epochs, trees); "
                               f"the job declares {rounds}")
    caps = PassiveCaps(max_rounds=rounds, reveal_to=ctx.reveal_to)
    try:
        request.family.check_passive(request.sections, [ctx.initiator, *request.passives], ctx.transport.party, caps)
    except (ValueError, VFLError) as exc:
        raise JobRejectedError(str(exc)) from None
    frame, request = _table(ctx, request)
    state = run_state(ctx, request)
    result = passive.train(ctx.transport, request, frame, active=ctx.initiator,
                           model_path=model_path(ctx, request.job, state.run),
                           caps=caps, psi=ctx.psi_policy(), state=state)
    state.clear()
    return result.to_wire()


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
                           psi=ctx.psi_policy())
    return {"rows": rows}
