"""The passive side of the learning jobs, run by ``vfl serve`` when a listed peer asks.

A job names this party's data by alias only (``[data]`` in the party config); the party's config,
not the job, decides which columns a job may use and how many rounds it serves; model parts are
written under this party's own models directory, never to a path the job chooses.
"""
from __future__ import annotations

import os

from parties.jobs.registry import JobContext, register_job
from parties.runtime.errors import JobRejectedError
from vfl import validation
from vfl.errors import VFLError
from vfl.family import PassiveCaps
from vfl.jobs import passive
from vfl.jobs.data import read_table
from vfl.jobs.spec import PartySpec, PassiveRequest


def _request(ctx: JobContext) -> PassiveRequest:
    try:
        return PassiveRequest.parse(ctx.params, ctx.transport.party)
    except VFLError as exc:
        raise JobRejectedError(str(exc)) from None


def check_columns(ctx: JobContext, party: PartySpec, frame) -> None:
    """This party's config, not the job, decides which of its columns a job may use."""
    policy = ctx.data_policy(party.alias)
    me = ctx.transport.party
    if policy["id_column"] is not None and party.id_column != policy["id_column"]:
        raise JobRejectedError(f"{me} matches customers on {policy['id_column']!r} only, not {party.id_column!r}")
    used = validation.check_columns(frame, me, id_column=party.id_column, label=None, features=party.features)
    allowed = policy["features"]
    if allowed is not None and set(used) - set(allowed):
        raise JobRejectedError(f"{me} does not offer columns {sorted(set(used) - set(allowed))}")
    if len(used) < policy["min_features"]:
        raise JobRejectedError(f"{me} needs a job to use at least {policy['min_features']} "
                               f"features (one alone could be read off its partial scores)")


def model_path(ctx: JobContext, job: str) -> str:
    """``<models_dir>/<initiator>/<job>/<party>.json``: a peer can only use (or overwrite) the
    model parts of jobs it started itself."""
    return os.path.join(ctx.models_dir, ctx.initiator, job, f"{ctx.transport.party}.json")


def _table(ctx: JobContext, request: PassiveRequest):
    frame = read_table(ctx.data_path(request.party.alias), ctx.transport.party)
    check_columns(ctx, request.party, frame)
    return frame


@register_job("vfl.train")
def train(ctx: JobContext) -> dict:
    request = _request(ctx)
    frame = _table(ctx, request)
    result = passive.train(ctx.transport, request, frame, active=ctx.initiator,
                           model_path=model_path(ctx, request.job), caps=PassiveCaps(max_rounds=ctx.max_epochs))
    return result.to_wire()


@register_job("vfl.predict")
def predict(ctx: JobContext) -> dict:
    request = _request(ctx)
    path = model_path(ctx, request.job)
    if not os.path.exists(path):
        raise JobRejectedError(f"{ctx.transport.party} has no model part for job {request.job!r}")
    rows = passive.predict(ctx.transport, request, _table(ctx, request), active=ctx.initiator, model_path=path)
    return {"rows": rows}
