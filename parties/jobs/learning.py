"""Passive-side handlers of the learning jobs, run by ``vfl serve`` when a listed peer asks.

A job names this party's data by alias only (``[data]`` in the party config); model parts are
written under this party's own models directory, never to a path the job chooses.
"""
from __future__ import annotations

import os
import re

from parties.jobs.registry import JobContext, register_job
from parties.runtime.errors import JobRejectedError
from vfl.jobs.data import read_table
from vfl.jobs.models import MODEL_KINDS
from vfl.jobs.roles import passive_predict, passive_train

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _params(ctx: JobContext) -> tuple[dict, dict]:
    params = ctx.params
    parties = params.get("parties") if isinstance(params, dict) else None
    me = ctx.transport.party
    if not isinstance(parties, dict) or not isinstance(parties.get(me), dict):
        raise JobRejectedError(f"the job does not describe {me}'s part")
    job = params.get("job")
    if not isinstance(job, str) or not SAFE_NAME.match(job):
        raise JobRejectedError(f"job name {job!r} is not a safe file name")
    return params, parties[me]


def check_columns(ctx: JobContext, mine: dict, frame) -> None:
    """This party's config, not the job, decides which of its columns a job may use."""
    policy = ctx.data_policy(mine.get("alias"))
    id_column, features = mine.get("id_column"), mine.get("features")
    if policy["id_column"] is not None and id_column != policy["id_column"]:
        raise JobRejectedError(f"{ctx.transport.party} matches customers on {policy['id_column']!r} only, "
                               f"not {id_column!r}")
    used = list(features) if features else [c for c in frame.columns if c != id_column]
    if id_column in used:
        raise JobRejectedError(f"{ctx.transport.party}: the id column cannot be a feature")
    allowed = policy["features"]
    if allowed is not None and set(used) - set(allowed):
        raise JobRejectedError(f"{ctx.transport.party} does not offer columns {sorted(set(used) - set(allowed))}")
    if len(used) < policy["min_features"]:
        raise JobRejectedError(f"{ctx.transport.party} needs a job to use at least {policy['min_features']} "
                               f"features (one alone could be read off its partial scores)")


def model_path(ctx: JobContext, job: str) -> str:
    """``<models_dir>/<initiator>/<job>/<party>.json``: a peer can only use (or overwrite) the
    model parts of jobs it started itself."""
    return os.path.join(ctx.models_dir, ctx.initiator, job, f"{ctx.transport.party}.json")


@register_job("vfl.train")
def train(ctx: JobContext) -> dict:
    params, mine = _params(ctx)
    if params.get("model") not in MODEL_KINDS:
        raise JobRejectedError(f"unknown model {params.get('model')!r}")
    frame = read_table(ctx.data_path(mine.get("alias")), ctx.transport.party)
    check_columns(ctx, mine, frame)
    return passive_train(ctx.transport, params, frame, active=ctx.initiator,
                         model_path=model_path(ctx, params["job"]), max_epochs=ctx.max_epochs)


@register_job("vfl.predict")
def predict(ctx: JobContext) -> dict:
    params, mine = _params(ctx)
    path = model_path(ctx, params["job"])
    if not os.path.exists(path):
        raise JobRejectedError(f"{ctx.transport.party} has no model part for job {params['job']!r}")
    frame = read_table(ctx.data_path(mine.get("alias")), ctx.transport.party)
    check_columns(ctx, mine, frame)
    return passive_predict(ctx.transport, params, frame, active=ctx.initiator, model_path=path)
