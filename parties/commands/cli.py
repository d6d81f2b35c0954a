"""The ``vfl`` command. Each subcommand lives in ``parties/commands/<name>.py``, is listed in
:data:`COMMANDS` and exposes ``register(subparsers)``, which adds its parser and sets ``func``
to a callable(args) -> int."""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("audit", "bench", "budgets", "demo", "keygen", "ping", "predict", "run", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vfl", description="Vertical federated learning engine.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"parties.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
