"""Audit log: one JSON line per message this party sends, and a report that sums it.

Each line: ``time`` (UTC ISO-8601), ``party``, ``job``, ``peer``, ``kind``, ``phase``,
``seq``, ``bytes`` (header + frames, as on the wire before encryption) and ``sha256`` of
those bytes. The log holds no payload, so a compliance officer can read what left the
building without reading customer data. Heartbeats and flow-control frames carry no data and
are not logged.
"""
from __future__ import annotations

import collections
import datetime
import json
import os
import threading
from typing import Iterable


class AuditLog:
    """Append-only JSON-lines file, safe to share between threads of one process."""

    def __init__(self, path: str | os.PathLike, party: str):
        self.path, self.party = os.fspath(path), party
        self._lock = threading.Lock()
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(self.path, "a", encoding="utf-8"):
            pass            # fail at start-up, not at the first message

    def record(self, *, job: str, peer: str, kind: str, phase: str, seq: int, nbytes: int, sha256: str) -> None:
        entry = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
                 "party": self.party, "job": job, "peer": peer, "kind": kind, "phase": phase,
                 "seq": seq, "bytes": nbytes, "sha256": sha256}
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)


def read_entries(path: str | os.PathLike) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def job_report(entries: Iterable[dict] | str | os.PathLike, job: str | None = None) -> dict:
    """Bytes and messages sent, per peer, per phase and per kind (optionally for one job)."""
    if isinstance(entries, (str, os.PathLike)):
        entries = read_entries(entries)
    rows = [e for e in entries if job is None or e["job"] == job]
    report = {"jobs": sorted({e["job"] for e in rows}), "messages": len(rows),
              "bytes": sum(e["bytes"] for e in rows)}
    for key in ("peer", "phase", "kind"):
        sums: dict = collections.defaultdict(lambda: {"messages": 0, "bytes": 0})
        for e in rows:
            sums[e[key]]["messages"] += 1
            sums[e[key]]["bytes"] += e["bytes"]
        report[f"per_{key}"] = {k: dict(v) for k, v in sorted(sums.items())}
    return report


def render_report(report: dict) -> str:
    lines = [f"{report['messages']} messages, {report['bytes']:,} bytes sent"]
    for key in ("peer", "phase"):
        for name, row in report[f"per_{key}"].items():
            lines.append(f"  {key} {name:<20} {row['messages']:>8} msgs {row['bytes']:>16,} bytes")
    return "\n".join(lines)
