"""``vfl demo``: the bundled end-to-end run.

Until federated training lands, the demo is the Paillier engine measured against phe.
"""
from __future__ import annotations

import argparse


def register(sub) -> None:
    parser = sub.add_parser("demo", help="run the bundled demo and print its report")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vfl.bench import paillier
    print("vfl demo: the Paillier engine against python-paillier (same key, same process)\n")
    print(paillier.render(paillier.run(argparse.Namespace(quick=args.quick, key_bits=2048))))
    return 0
