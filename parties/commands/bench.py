"""``vfl bench <what> [options]``: measured side by side with the baseline, reported as ratios.

The benchmarks live in the top-level ``benchmarks`` package (they may import every layer); each
module has ``add_arguments(parser)``, ``run(args) -> dict`` and ``render(result) -> str``. A
benchmark's module is imported only when that benchmark runs.

``--compute FILE`` (any benchmark but ``scale``, which compares the backends itself): the
``[compute]`` table of FILE (a party config, say) for the benchmark's own process and every party
process it starts — its pool size, or its Dask cluster. Benchmarks start parties with
``execute.Parties`` from ``args.parties``.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys

from parties.jobs import execute
from parties.runtime import compute

# name -> (module, one-line help)
BENCHMARKS = {
    "paillier": ("benchmarks.paillier", "the Paillier engine against python-paillier, per core"),
    "psi": ("benchmarks.psi", "PSI against openmined-psi per core, optionally end to end over processes"),
    "lr": ("benchmarks.lr", "hetero LR seconds per epoch over processes against the same protocol on phe"),
    "secureboost": ("benchmarks.secureboost", "SecureBoost seconds per tree against plain XGBoost and phe"),
    "mpc": ("benchmarks.mpc", "dealer-free triples against the same on phe, per core; online products; Pearson"),
    "scale": ("benchmarks.scale", "the same work on the local pool and on 1- and 2-worker Dask clusters (TLS)"),
    "privacy": ("benchmarks.privacy", "label DP against three attacks (SecureBoost and LR label inference, LR "
                                      "feature reconstruction): model AUC and attack gain per ε"),
    "tables": ("benchmarks.tables", "a SecureBoost passive's data steps, table read whole against in chunks: "
                                    "peak memory and time"),
}


def register(sub) -> None:
    parser = sub.add_parser("bench", help="run a benchmark against its baseline",
                            description="Benchmarks: " + "; ".join(f"{k}: {v[1]}" for k, v in BENCHMARKS.items()))
    parser.add_argument("bench", choices=sorted(BENCHMARKS), metavar="BENCHMARK",
                        help=", ".join(sorted(BENCHMARKS)) + " (`vfl bench NAME --help` for its options)")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's own options")
    parser.set_defaults(func=run)


def benchmark_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    """The named benchmark's own argument parser, and its module (imported now)."""
    module_name, help_text = BENCHMARKS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"vfl bench {name}", description=help_text)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    if name != "scale":
        parser.add_argument("--compute", metavar="FILE", help="run the heavy work where the [compute] table of FILE "
                            "(a party config) says: its pool size or its Dask cluster, for every party started")
    module.add_arguments(parser)
    return parser, module


def run(args: argparse.Namespace) -> int:
    parser, module = benchmark_parser(args.bench)
    options = parser.parse_args(args.options)
    config = compute.read_compute_file(options.compute) if getattr(options, "compute", None) else None
    options.parties = execute.Parties(local=True, compute=compute.compute_table(config) if config else None)
    backend = compute.install(config) if config else None
    try:
        with compute.job_scope():
            result = module.run(options)
    finally:
        if config:
            compute.uninstall(backend)
    if config:
        result["compute"] = compute.compute_table(config)
    if options.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(module.render(result))
    return 0
