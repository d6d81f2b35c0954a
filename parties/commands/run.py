"""``vfl run JOB.toml``: PSI → training → evaluation → each party saves its part.

``--local`` starts every passive party as its own process on loopback with fresh CURVE keys
(this process is the active party) and adds the centralized baseline to the report. Without it,
this process is the active party described by ``--config`` and its peers are deployed
``vfl serve`` parties.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys

from parties.jobs import run_job
from vfl.errors import VFLError
from vfl.jobs.data import feature_columns, read_table
from vfl.jobs.roles import active_train, make_active_model, passive_params
from vfl.jobs.spec import load_job
from vfl.report import public_report, render_report, write_report

HANDLER = "vfl.train"


def register(sub) -> None:
    parser = sub.add_parser("run", help="run a job file (PSI, training, evaluation, model files)")
    parser.add_argument("job", help="job file (TOML), see docs/jobs.md")
    parser.add_argument("--local", action="store_true",
                        help="start every party on this machine (loopback, fresh keys) and add the baseline")
    parser.add_argument("--config", help="this (active) party's config, for runs against deployed peers")
    parser.add_argument("--insecure", action="store_true", help="no CURVE encryption (debugging only)")
    parser.add_argument("--output-dir", help="override the job's output_dir")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def _local_spec(spec):
    """Local runs use each passive's path; its alias defaults to its name."""
    parties = tuple(dataclasses.replace(p, alias=p.alias or p.name) if p.role == "passive" else p
                    for p in spec.parties)
    return dataclasses.replace(spec, parties=parties)


def _validate(spec, local: bool) -> dict:
    """Everything checkable before any cryptography starts; returns the tables read."""
    make_active_model(spec)
    frames = {}
    for party in spec.parties if local else [spec.active]:
        if not party.data:
            raise VFLError(f"{spec.source}: [parties.{party.name}] needs data = <path> for a local run")
        frames[party.name] = read_table(party.data, party.name)
        feature_columns(frames[party.name], party)
    return frames


def _bytes_sent(spec, stats: dict) -> dict:
    sent = {spec.active.name: sum(s["bytes_sent"] for s in stats.values())}
    sent.update({peer: s["bytes_received"] for peer, s in stats.items()})
    return sent


def _run_local(spec, frames, verbose: bool) -> dict:
    from parties.launcher import LocalCluster
    from vfl.jobs.baseline import centralized_baseline
    active, passives = spec.active.name, [p.name for p in spec.passives]
    data = {p.name: {p.alias: os.path.abspath(p.data)} for p in spec.passives}
    with LocalCluster([active, *passives], serve=passives, data=data, jobs_modules=("parties.vfl_jobs",)) as cluster:
        result = run_job(cluster.node(active), HANDLER, passive_params(spec), passives,
                         role=lambda t: active_train(t, spec, frames[active], verbose=verbose))
        for name in passives:      # collect each passive's model part into the output directory
            src = os.path.join(cluster.dir, "models", spec.name, f"{name}.json")
            if os.path.exists(src):
                shutil.copy(src, os.path.join(spec.output_dir, "model", f"{name}.json"))
    report = result.result
    report["bytes_sent"] = _bytes_sent(spec, result.stats)
    report["passives"] = result.peer_results
    with open(os.path.join(spec.output_dir, "split.json")) as f:
        report["baseline"] = centralized_baseline(spec, frames, json.load(f))
    return report


def _run_deployed(spec, frames, args, verbose: bool) -> dict:
    from parties.config import load_config
    from parties.node import Node
    if not args.config:
        raise VFLError("without --local, give this party's config with --config party.toml")
    config = load_config(args.config, insecure=args.insecure)
    if config.name != spec.active.name:
        raise VFLError(f"{args.config} is party {config.name!r} but the job's active party is {spec.active.name!r}")
    known = {p.name for p in config.peers}
    unknown = [p.name for p in spec.passives if p.name not in known]
    if unknown:
        raise VFLError(f"job parties {unknown} are not peers in {args.config} (peers: {sorted(known)})")
    with Node(config, insecure=args.insecure).start() as node:
        result = run_job(node, HANDLER, passive_params(spec), [p.name for p in spec.passives],
                         role=lambda t: active_train(t, spec, frames[spec.active.name], verbose=verbose))
    report = result.result
    report["bytes_sent"] = _bytes_sent(spec, result.stats)
    report["passives"] = result.peer_results
    return report


def run(args: argparse.Namespace) -> int:
    verbose = not (args.quiet or args.json)
    try:
        spec = load_job(args.job)
        spec = _local_spec(spec) if args.local else spec
        if args.output_dir:
            spec = dataclasses.replace(spec, output_dir=args.output_dir)
        frames = _validate(spec, args.local)
        report = _run_local(spec, frames, verbose) if args.local else _run_deployed(spec, frames, args, verbose)
    except VFLError as exc:
        print(f"vfl run: {exc}", file=sys.stderr)
        return 2
    write_report(report, spec.output_dir)
    if args.json:
        print(json.dumps(public_report(report)))
    else:
        print(render_report(report))
    return 0
