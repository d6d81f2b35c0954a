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

from parties.jobs.execute import bytes_sent, execute, local_spec
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


def _train(spec, frames, *, local: bool, config, insecure: bool, verbose: bool) -> dict:
    def collect(models_dir: str) -> None:
        """Local runs: every passive's model part and every party's audit log into the output."""
        cluster_dir = os.path.dirname(models_dir)
        os.makedirs(os.path.join(spec.output_dir, "audit"), exist_ok=True)
        for p in spec.parties:
            src = os.path.join(models_dir, spec.active.name, spec.name, f"{p.name}.json")
            if p.role == "passive" and os.path.exists(src):
                shutil.copy(src, os.path.join(spec.output_dir, "model", f"{p.name}.json"))
            log = os.path.join(cluster_dir, f"{p.name}.audit.jsonl")
            if os.path.exists(log):
                shutil.copy(log, os.path.join(spec.output_dir, "audit", f"{p.name}.audit.jsonl"))

    result = execute(spec, HANDLER, passive_params(spec),
                     lambda t: active_train(t, spec, frames[spec.active.name], verbose=verbose),
                     local=local, config=config, insecure=insecure, collect=collect)
    report = result.result
    report["job_id"] = result.job
    report["bytes_sent"] = bytes_sent(spec, result.stats)
    report["passives"] = result.peer_results
    if local:
        from vfl.jobs.baseline import centralized_baseline
        with open(os.path.join(spec.output_dir, "split.json")) as f:
            report["baseline"] = centralized_baseline(spec, frames, json.load(f))
    return report


def run_job_file(job, *, local: bool = False, config: str | None = None, insecure: bool = False,
                 output_dir: str | None = None, verbose: bool = True) -> dict:
    """What ``vfl run`` does, from Python: returns the report (also written to the output dir).

    Raises :class:`vfl.errors.VFLError` subclasses for bad jobs, configs and data.
    """
    spec = load_job(job)
    spec = local_spec(spec) if local else spec
    if output_dir:
        spec = dataclasses.replace(spec, output_dir=str(output_dir))
    frames = _validate(spec, local)
    report = _train(spec, frames, local=local, config=config, insecure=insecure, verbose=verbose)
    write_report(report, spec.output_dir)
    return public_report(report)


def run(args: argparse.Namespace) -> int:
    verbose = not (args.quiet or args.json)
    try:
        report = run_job_file(args.job, local=args.local, config=args.config, insecure=args.insecure,
                              output_dir=args.output_dir, verbose=verbose)
    except VFLError as exc:
        print(f"vfl run: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report) if args.json else render_report(report))
    return 0
