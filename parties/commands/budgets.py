"""``vfl budgets --config party.toml [--json]``: what this party's ledgers have counted — the ε
spent of each dataset's labels and of its columns against their budgets (``[privacy]``), and the
rows each peer had it score (``[predictions]``)."""
from __future__ import annotations

import argparse
import json
import sys

from parties.runtime.budgets import LabelLedger, QueryLedger
from parties.runtime.config import load_config
from vfl.errors import VFLError


def register(sub) -> None:
    p = sub.add_parser("budgets", help="ε spent of each dataset's labels and columns, rows each peer had scored")
    p.add_argument("--config", required=True, help="this party's config (TOML)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, insecure=True)          # the ledgers need no key
        report = {"party": config.name,
                  "labels": LabelLedger(config.privacy, config.data, config.name).summary(),
                  "features": LabelLedger(config.privacy, config.data, config.name, kind="features").summary(),
                  "predictions": QueryLedger(config.predictions, config.name).summary(),
                  "caps": {k: getattr(config.predictions, k) for k in ("max_rows_per_request", "max_rows_per_period",
                                                                       "period_hours", "max_rows_per_model")}}
    except VFLError as exc:
        print(f"vfl budgets: {exc}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for kind, title in (("labels", "label DP"), ("features", "feature DP")):
        print(f"{report['party']}: {title}, ε spent per dataset")
        for name, row in report[kind].items():
            budget = "no budget" if row["budget"] is None else f"budget {row['budget']:g}"
            print(f"  {name:<24} ε {row['spent']:>8.4g} of {budget} ({row['runs']} runs)")
    caps = report["caps"]
    print(f"rows scored per peer (caps: {caps['max_rows_per_request'] or '-'} per request, "
          f"{caps['max_rows_per_period'] or '-'} per {caps['period_hours']:g} h, {caps['max_rows_per_model'] or '-'} "
          "per model)")
    for peer, row in report["predictions"].items():
        models = ", ".join(f"{m}: {n}" for m, n in sorted(row["per_model"].items()))
        print(f"  {peer:<24} {row['rows_in_period']:>10} in the period; per model {models}")
    return 0
