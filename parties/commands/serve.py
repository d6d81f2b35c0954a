"""``vfl serve --config party.toml``: run a passive party until interrupted."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from parties.runtime.config import load_config
from parties.runtime.errors import ConfigError
from parties.runtime.logs import setup_logging
from vfl.errors import VFLError


def register(sub) -> None:
    p = sub.add_parser("serve", help="run a passive party that accepts jobs from its configured peers")
    p.add_argument("--config", required=True, help="party config (TOML)")
    p.add_argument("--insecure", action="store_true",
                   help="DEBUGGING ONLY: no encryption, no authentication (any process can connect)")
    p.add_argument("--log-json", action="store_true", help="log JSON lines instead of text")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--jobs-module", action="append", default=[], metavar="MODULE",
                   help="import MODULE to register extra job handlers (repeatable)")
    p.add_argument("--core-only", "--no-discover", dest="core_only", action="store_true",
                   help="serve only the built-in echo job (deployment checks; starts without the learning stack)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from parties.jobs.server import serve
    setup_logging(json_lines=args.log_json, level=args.log_level)
    try:
        config = load_config(args.config, insecure=args.insecure)
    except ConfigError as exc:
        logging.getLogger("parties.serve").error("cannot start: %s", exc)
        return 2
    setup_logging(party=config.name, json_lines=args.log_json, level=args.log_level)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def ready(server) -> None:            # the launcher waits for this line
        print(f"READY {config.name} {server.node.endpoint}", flush=True)

    try:
        return serve(config, insecure=args.insecure, stop=stop, extra_modules=tuple(args.jobs_module), ready=ready,
                     core_only=args.core_only)
    except VFLError as exc:           # a bad config, or a plugin that does not import
        logging.getLogger("parties.serve").error("cannot start: %s", exc)
        return 2
    finally:
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """``python -m parties.commands.serve ...``: the same command without importing every other
    subcommand (the launcher uses this to start parties quickly)."""
    parser = argparse.ArgumentParser(prog="vfl")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
