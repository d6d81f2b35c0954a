"""Shared by ``vfl run`` and ``vfl predict``: where the parties come from.

Local: every passive party as its own ``vfl serve`` process on loopback with fresh CURVE keys;
this process is the active party. Deployed: this process is the active party of ``--config``,
its peers are running ``vfl serve``.
"""
from __future__ import annotations

import dataclasses
import os

from parties.jobs.initiator import run_job
from vfl.errors import VFLError


def local_spec(spec):
    """Local runs use each passive's path; its alias defaults to its name."""
    parties = tuple(dataclasses.replace(p, alias=p.alias or p.name) if p.role == "passive" else p
                    for p in spec.parties)
    return dataclasses.replace(spec, parties=parties)


def bytes_sent(spec, stats: dict) -> dict:
    sent = {spec.active.name: sum(s["bytes_sent"] for s in stats.values())}
    sent.update({peer: s["bytes_received"] for peer, s in stats.items()})
    return sent


def execute(spec, handler: str, params: dict, role, *, local: bool, config: str | None = None,
            insecure: bool = False, prepare=None, collect=None):
    """Run ``role`` (the active side) with the passives of ``spec``; returns parties.jobs.JobResult.

    ``prepare(models_dir)`` runs before the job and ``collect(models_dir)`` after it, with the
    directory where local passives keep their model parts.
    """
    passives = [p.name for p in spec.passives]
    if local:
        from parties.jobs.launcher import LocalCluster
        data = {p.name: {p.alias: os.path.abspath(p.data)} for p in spec.passives}
        with LocalCluster([spec.active.name, *passives], serve=passives, data=data) as cluster:
            models_dir = os.path.join(cluster.dir, "models")
            if prepare:
                prepare(models_dir)
            result = run_job(cluster.node(spec.active.name), handler, params, passives, role=role)
            if collect:
                collect(models_dir)
            return result
    from parties.runtime.config import load_config
    from parties.transport.node import Node
    if not config:
        raise VFLError("without --local, give this party's config with --config party.toml")
    cfg = load_config(config, insecure=insecure)
    if cfg.name != spec.active.name:
        raise VFLError(f"{config} is party {cfg.name!r} but the job's active party is {spec.active.name!r}")
    known = {p.name for p in cfg.peers}
    unknown = [p for p in passives if p not in known]
    if unknown:
        raise VFLError(f"job parties {unknown} are not peers in {config} (peers: {sorted(known)})")
    with Node(cfg, insecure=insecure).start() as node:
        return run_job(node, handler, params, passives, role=role)
