"""``vfl audit --log bank.audit.jsonl [--job ID]``: what left this party, per peer and phase."""
from __future__ import annotations

import argparse
import json
import sys

from parties.runtime.audit import job_report, render_report


def register(sub) -> None:
    p = sub.add_parser("audit", help="sum a party's audit log (bytes sent per peer, phase and kind)")
    p.add_argument("--log", required=True, help="the party's audit log (JSON lines)")
    p.add_argument("--job", help="only this job id")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        report = job_report(args.log, job=args.job)
    except (OSError, ValueError, KeyError) as exc:
        print(f"vfl audit: cannot read {args.log}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render_report(report))
    return 0
