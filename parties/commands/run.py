"""``vfl run JOB.toml``: load → validate → PSI, training, evaluation (every party) → baseline → report.

``--local`` starts every passive party as its own process on loopback with fresh CURVE keys
(this process is the active party) and adds the centralized baseline to the report. Without it,
this process is the active party described by ``--config`` and its peers are deployed
``vfl serve`` parties.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys

from parties.jobs import execute
from parties.runtime import compute
from parties.runtime.config import load_config
from vfl import registry
from vfl.errors import VFLError
from vfl.jobs.baseline import centralized_baseline
from vfl.jobs.data import feature_columns, read_table
from vfl.jobs.spec import load_job
from vfl.report import JobReport, render_report, write_report


def add_party_options(parser) -> None:
    """Options ``vfl run`` and ``vfl predict`` share: where the parties come from, and plugins."""
    parser.add_argument("--local", action="store_true",
                        help="start every party on this machine (loopback, fresh keys)")
    parser.add_argument("--config", help="this (active) party's config, for runs against deployed peers")
    parser.add_argument("--insecure", action="store_true", help="no CURVE encryption (debugging only)")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE to register more model families (repeatable; local parties load it too)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def register(sub) -> None:
    parser = sub.add_parser("run", help="run a job file (PSI, training, evaluation, model files)")
    parser.add_argument("job", help="job file (TOML), see docs/jobs.md")
    parser.add_argument("--output-dir", help="override the job's output_dir")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue the run that died in RUN_DIR (its output directory) from every party's "
                             "checkpoints, with the same job file and tables")
    add_party_options(parser)
    parser.set_defaults(func=run)


def parties_for(*, local: bool, config: str | None, insecure: bool, plugins=()) -> execute.Parties:
    """Where the parties come from; loads this party's plugins (``plugins`` and its config's)."""
    plugins = tuple(plugins)
    if config and not local:
        plugins += load_config(config, insecure=insecure).plugins
    registry.load_plugins(plugins)
    return execute.Parties(local=local, config=config, insecure=insecure, plugins=plugins)


@contextlib.contextmanager
def active_compute(config: str | None, *, insecure: bool, local: bool):
    """The initiating (active) party's ``[compute]`` for one job, when it runs against deployed
    peers under its own config (a ``--local`` run keeps the process pool); removed after."""
    backend = compute.install(load_config(config, insecure=insecure).compute) if config and not local else None
    try:
        with compute.job_scope():
            yield
    finally:
        if config and not local:
            compute.uninstall(backend)


def run_job_file(job, *, local: bool = False, config: str | None = None, insecure: bool = False,
                 output_dir: str | None = None, verbose: bool = True, plugins=(), resume: str | None = None) -> dict:
    """What ``vfl run`` does, from Python: returns the report (also written to the output dir).

    ``resume``: the output directory of a run that died, to continue it from its checkpoints.
    Raises :class:`vfl.errors.VFLError` subclasses for bad jobs, configs and data.
    """
    where = parties_for(local=local, config=config, insecure=insecure, plugins=plugins)
    spec = load_job(job)                                                     # load
    spec = execute.local_spec(spec) if local else spec
    if output_dir and resume and os.path.abspath(output_dir) != os.path.abspath(resume):
        raise VFLError("--resume RUN_DIR continues the run in RUN_DIR: give no other --output-dir")
    if output_dir or resume:
        spec = dataclasses.replace(spec, output_dir=str(resume or output_dir))
    frames = {}
    for party in spec.parties if local else [spec.active]:                  # validate
        if not party.data:
            raise VFLError(f"{spec.source}: [parties.{party.name}] needs data = <path> for a local run")
        frames[party.name] = read_table(party.data, party.name, party.id_column)
        feature_columns(frames[party.name], party, spec.family)
    with active_compute(config, insecure=insecure, local=local):
        outcome = execute.train(spec, frames[spec.active.name], where, verbose=verbose,       # PSI, fit, evaluate
                                resume=resume is not None)
    report = JobReport(training=outcome.result, job_id=outcome.job_id, bytes_sent=outcome.bytes_sent,
                       passives=outcome.passives,
                       baseline=centralized_baseline(spec, frames, outcome.result) if local else None)
    write_report(report, spec.output_dir)                                    # report
    execute.finish(spec)
    return report.to_dict()


def run(args: argparse.Namespace) -> int:
    verbose = not (args.quiet or args.json)
    try:
        report = run_job_file(args.job, local=args.local, config=args.config, insecure=args.insecure,
                              output_dir=args.output_dir, verbose=verbose, plugins=args.plugin,
                              resume=args.resume)
    except VFLError as exc:
        print(f"vfl run: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report) if args.json else render_report(report))
    return 0
