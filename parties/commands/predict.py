"""``vfl predict JOB.toml --model DIR``: federated scoring of new rows.

Every party aligns its new rows by PSI and computes its partial score with its own model part;
only the active party sees the sum, which it writes to ``predictions.csv``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys

from parties.commands.run import active_compute, add_party_options, parties_for
from parties.jobs import execute
from vfl.errors import VFLError
from vfl.jobs.data import read_table
from vfl.jobs.manifest import FILE as MANIFEST
from vfl.jobs.manifest import Manifest
from vfl.jobs.spec import load_job


def register(sub) -> None:
    parser = sub.add_parser("predict", help="score new rows with a trained federated model")
    parser.add_argument("job", help="job file naming the parties and the rows to score")
    parser.add_argument("--model", required=True, help="model directory written by `vfl run` (its model/ folder)")
    parser.add_argument("--data", help="override the active party's data file")
    parser.add_argument("--out", help="predictions CSV (default: <output_dir>/predictions.csv)")
    add_party_options(parser)
    parser.set_defaults(func=run)


def _model_dir(path: str) -> pathlib.Path:
    base = pathlib.Path(path)
    for candidate in (base, base / "model"):
        if (candidate / MANIFEST).exists():
            return candidate
    raise VFLError(f"{path} holds no trained model (no {MANIFEST} in it or in its model/ folder)")


def _spec(job, manifest: Manifest, *, data: str | None, local: bool):
    """The job file's parties with the trained job's name and model (from its manifest)."""
    spec = load_job(job)
    spec = dataclasses.replace(spec, name=manifest.job, model=manifest.model)
    if data:
        active = dataclasses.replace(spec.active, data=data)
        spec = dataclasses.replace(spec, parties=tuple(active if p.role == "active" else p for p in spec.parties))
    return execute.local_spec(spec) if local else spec


def predict_job_file(job, model, *, local: bool = False, config: str | None = None, insecure: bool = False,
                     data: str | None = None, verbose: bool = True, plugins=()):
    """What ``vfl predict`` does, from Python: (spec, outcome); the predictions are
    ``outcome.result.predictions`` (a DataFrame, only at the active party)."""
    where = parties_for(local=local, config=config, insecure=insecure, plugins=plugins)
    model_dir = _model_dir(model)
    manifest = Manifest.read(model_dir)
    spec = _spec(job, manifest, data=data, local=local)
    frame = read_table(spec.active.data, spec.active.name, spec.active.id_column)
    with active_compute(config, insecure=insecure, local=local):
        return spec, execute.predict(spec, frame, model_dir, manifest, where, verbose=verbose)


def run(args: argparse.Namespace) -> int:
    verbose = not (args.quiet or args.json)
    try:
        spec, outcome = predict_job_file(args.job, args.model, local=args.local, config=args.config,
                                         insecure=args.insecure, data=args.data, verbose=verbose, plugins=args.plugin)
    except (VFLError, OSError, KeyError) as exc:
        print(f"vfl predict: {exc}", file=sys.stderr)
        return 2
    result = outcome.result
    out = pathlib.Path(args.out or pathlib.Path(spec.output_dir) / "predictions.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    result.predictions.to_csv(out, index=False)
    summary = {"job": spec.name, "n_input": result.n_input, "n_scored": result.n_scored,
               "predictions": str(out), "bytes_sent": outcome.bytes_sent}
    print(json.dumps(summary) if args.json else
          f"scored {summary['n_scored']} of {summary['n_input']} rows (shared with every party); wrote {out}")
    return 0
