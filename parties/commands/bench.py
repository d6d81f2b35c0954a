"""``vfl bench <what>``: measured side by side with the baseline, reported as ratios."""
from __future__ import annotations

import argparse
import importlib
import json
import sys

# name -> module with `add_arguments(parser)` and `run(args) -> dict` and `render(result) -> str`
BENCHMARKS = {
    "paillier": "vfl.bench.paillier",
    "psi": "vfl.bench.psi",
    "lr": "parties.bench_lr",
    "secureboost": "parties.bench_sbt",
}


def register(sub) -> None:
    parser = sub.add_parser("bench", help="run a benchmark against its baseline")
    bench_sub = parser.add_subparsers(dest="bench", metavar="BENCHMARK")
    for name, module_name in BENCHMARKS.items():
        module = importlib.import_module(module_name)
        p = bench_sub.add_parser(name, help=module.__doc__.strip().splitlines()[0])
        p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
        module.add_arguments(p)
        p.set_defaults(func=_runner(module))
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _runner(module):
    def run(args: argparse.Namespace) -> int:
        result = module.run(args)
        if args.json:
            json.dump(result, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            print(module.render(result))
        return 0
    return run
