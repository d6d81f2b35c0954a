"""``vfl predict JOB.toml --model DIR``: federated scoring of new rows.

Every party aligns its new rows by PSI and computes its partial score with its own model part;
only the active party sees the sum, which it writes to ``predictions.csv``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import shutil
import sys

from parties.jobs.execute import bytes_sent, execute, local_spec
from parties.jobs.learning import SAFE_NAME
from vfl.errors import VFLError
from vfl.jobs.data import read_table
from vfl.jobs.roles import active_predict, passive_params
from vfl.jobs.spec import load_job


def register(sub) -> None:
    parser = sub.add_parser("predict", help="score new rows with a trained federated model")
    parser.add_argument("job", help="job file naming the parties and the rows to score")
    parser.add_argument("--model", required=True, help="model directory written by `vfl run` (its model/ folder)")
    parser.add_argument("--data", help="override the active party's data file")
    parser.add_argument("--out", help="predictions CSV (default: <output_dir>/predictions.csv)")
    parser.add_argument("--local", action="store_true", help="start every party on this machine")
    parser.add_argument("--config", help="this (active) party's config, for deployed peers")
    parser.add_argument("--insecure", action="store_true", help="no CURVE encryption (debugging only)")
    parser.add_argument("--json", action="store_true", help="print one JSON summary")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def _model_dir(path: str) -> pathlib.Path:
    base = pathlib.Path(path)
    for candidate in (base, base / "model"):
        if (candidate / "manifest.json").exists():
            return candidate
    raise VFLError(f"{path} holds no trained model (no manifest.json in it or in its model/ folder)")


def run(args: argparse.Namespace) -> int:
    verbose = not (args.quiet or args.json)
    try:
        model_dir = _model_dir(args.model)
        manifest = json.loads((model_dir / "manifest.json").read_text())
        if not isinstance(manifest.get("job"), str) or not SAFE_NAME.match(manifest["job"]):
            raise VFLError(f"{model_dir}/manifest.json names job {manifest.get('job')!r}, not a safe file name")
        spec = load_job(args.job)
        spec = dataclasses.replace(spec, name=manifest["job"], model=manifest["model"])
        if args.data:
            active = dataclasses.replace(spec.active, data=args.data)
            spec = dataclasses.replace(spec, parties=tuple(active if p.role == "active" else p for p in spec.parties))
        spec = local_spec(spec) if args.local else spec
        frame = read_table(spec.active.data, spec.active.name)

        def prepare(models_dir: str) -> None:       # local passives get their saved parts
            target = os.path.join(models_dir, spec.active.name, spec.name)
            os.makedirs(target, exist_ok=True)
            for p in spec.passives:
                shutil.copy(model_dir / f"{p.name}.json", os.path.join(target, f"{p.name}.json"))

        result = execute(spec, "vfl.predict", passive_params(spec),
                         lambda t: active_predict(t, spec, frame, model_dir, verbose=verbose),
                         local=args.local, config=args.config, insecure=args.insecure, prepare=prepare)
    except (VFLError, OSError, KeyError) as exc:
        print(f"vfl predict: {exc}", file=sys.stderr)
        return 2
    out = pathlib.Path(args.out or pathlib.Path(spec.output_dir) / "predictions.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    result.result["predictions"].to_csv(out, index=False)
    summary = {"job": spec.name, "n_input": result.result["n_input"], "n_scored": result.result["n_scored"],
               "predictions": str(out), "bytes_sent": bytes_sent(spec, result.stats)}
    print(json.dumps(summary) if args.json else
          f"scored {summary['n_scored']} of {summary['n_input']} rows (shared with every party); wrote {out}")
    return 0
