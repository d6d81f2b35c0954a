"""``vfl demo``: a real federated training on bundled data, every party its own process.

A hospital (labels, 10 features) and a lab (20 features) of FATE's breast split find their
shared patients by PSI, train hetero logistic regression over CURVE-encrypted ZeroMQ links with
2048-bit Paillier, evaluate on held-out patients beside the centralized baseline, and write the
report, ROC and loss plots and each party's model part.
"""
from __future__ import annotations

import argparse
import importlib.resources

from parties.commands import run as run_command

DEMOS = {"breast-lr": "breast_lr.toml", "breast3-lr": "breast3_lr.toml", "breast-sbt": "breast_sbt.toml",
         "breast3-sbt": "breast3_sbt.toml", "credit-lr": "credit_lr.toml", "credit3-lr": "credit3_lr.toml",
         "credit3-sbt": "credit3_sbt.toml", "wine-sbt": "wine_sbt.toml"}


def register(sub) -> None:
    parser = sub.add_parser("demo", help="run a bundled federated job end to end and print its report")
    parser.add_argument("name", nargs="?", default="breast-lr", choices=sorted(DEMOS),
                        help="breast-lr (default, ~30 s), breast3-lr (3 parties), credit-lr and credit3-lr "
                             "(30000 customers, ~1-2 min); SecureBoost: breast-sbt, breast3-sbt, wine-sbt "
                             "(3 classes, ~30 s), credit3-sbt (3 parties, 30000 customers, ~1.5 min)")
    parser.add_argument("--output-dir", default=None, help="default: runs/demo-<name>")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    job = importlib.resources.files("vfl.datasets") / "jobs" / DEMOS[args.name]
    if not args.json:
        print(f"vfl demo {args.name}: every party is its own process on loopback, CURVE-authenticated, "
              "2048-bit Paillier\n")
    parser = argparse.ArgumentParser(prog="vfl")          # `vfl run JOB --local ...`, parsed as such
    run_command.register(parser.add_subparsers(dest="command"))
    argv = ["run", str(job), "--local", f"--output-dir={args.output_dir or f'runs/demo-{args.name}'}"]
    run_args = parser.parse_args(argv + ["--json"] * args.json + ["--quiet"] * args.quiet)
    return run_args.func(run_args)
