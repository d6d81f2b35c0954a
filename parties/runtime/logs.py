"""Logging for party processes: human-readable lines by default, JSON lines on request."""
from __future__ import annotations

import datetime
import json
import logging
import sys
import time

_FIELDS = ("peer", "job", "kind")


class Throttled:
    """Logs an event at most once per ``every`` seconds per key, with how many it stands for, so
    that a peer (or a stranger) repeating a refused thing cannot flood the log."""

    def __init__(self, logger: logging.Logger, every: float = 60.0, max_keys: int = 1024):
        self.logger, self.every, self.max_keys = logger, every, max_keys
        self._seen: dict = {}                     # key -> (events not yet reported, time of last report)

    def __call__(self, key, level: int, message: str, *args) -> None:
        now = time.monotonic()
        count, last = self._seen.get(key, (0, float("-inf")))
        count += 1
        if now - last < self.every:
            self._seen[key] = (count, last)
            return
        if len(self._seen) >= self.max_keys:
            self._seen.clear()
        self._seen[key] = (0, now)
        suffix = f" ({count} times since the last report)" if count > 1 else ""
        self.logger.log(level, message + suffix, *args)


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7f]}


class TextFormatter(logging.Formatter):
    """One line per record: control characters in the message (which may quote what a peer
    sent) are escaped, so no peer can forge or split a log line. Tracebacks stay multi-line."""

    def formatMessage(self, record: logging.LogRecord) -> str:      # noqa: N802 - logging's name
        record.message = record.message.translate(_CONTROL)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and party if known."""

    def __init__(self, party: str | None = None):
        super().__init__()
        self.party = party

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
                 .isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if self.party:
            entry["party"] = self.party
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(*, party: str | None = None, json_lines: bool = False, level: str = "INFO",
                  stream=None) -> None:
    """Configure the root logger of a party process (call once, from the CLI)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter(party))
    else:
        prefix = f"[{party}] " if party else ""
        handler.setFormatter(TextFormatter(f"%(asctime)s %(levelname)-7s {prefix}%(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("zmq.auth").setLevel(logging.WARNING)   # we log admissions ourselves
