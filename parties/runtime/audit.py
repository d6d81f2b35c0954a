"""Audit log: one JSON line per message this party sends, and a report that sums it.

Each message line: ``time`` (UTC ISO-8601), ``party``, ``job``, ``peer``, ``kind``, ``phase``,
``seq``, ``bytes`` (header + frames, as on the wire before encryption) and ``sha256`` of
those bytes. The log holds no payload, so a compliance officer can read what left the
building without reading customer data. Heartbeats and flow-control frames carry no data and
are not logged. Event lines (``time``, ``party``, ``job``, ``event`` and plain fields) record
facts no message shows, such as which implementation computed the PSI.
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
        self._write(entry)

    def event(self, *, job: str, event: str, **fields) -> None:
        """A fact about the job that no message shows (e.g. ``event="psi", backend=...``)."""
        self._write({"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
                     "party": self.party, "job": job, "event": event, **fields})

    def _write(self, entry: dict) -> None:
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
    entries = [e for e in entries if job is None or e["job"] == job]
    rows = [e for e in entries if "event" not in e]
    report = {"jobs": sorted({e["job"] for e in entries}), "messages": len(rows),
              "bytes": sum(e["bytes"] for e in rows),
              "events": [{k: v for k, v in e.items() if k not in ("time", "party")} for e in entries if "event" in e]}
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
    for event in report.get("events", []):
        details = ", ".join(f"{k}={v}" for k, v in event.items() if k not in ("job", "event"))
        lines.append(f"  event {event['event']:<18} job {event['job']}: {details}")
    return "\n".join(lines)
