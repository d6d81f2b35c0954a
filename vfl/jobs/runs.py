"""``run.json``: which run an output directory belongs to, and whether it completed.

A training run writes it when it starts (``"status": "running"``) and marks it complete once
the report is written; ``vfl run JOB --resume RUN_DIR`` reads it to know which run to
continue. Starting a run first removes what marks a previous run's output as complete (its
report and its model manifest), so a half-written output is never taken for a finished one:
``vfl predict`` needs the manifest, and the report is written last.

The active party's checkpoints live beside it, in ``checkpoints/``; a local run's parties
(configs, keys, the passives' model parts and checkpoints) in ``parties/``. Both are removed
when the run completes.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil

from vfl.errors import DataError
from vfl.files import write_private

FILE = "run.json"
CHECKPOINTS = "checkpoints"
LOCAL_PARTIES = "parties"
COMPLETE_MARKERS = ("report.json", "model/manifest.json")


@dataclasses.dataclass(frozen=True)
class RunRecord:
    run: str
    job: str                 # the job's digest (JobSpec.digest)
    local: bool
    status: str = "running"  # "running" or "complete"

    def write(self, out_dir) -> None:
        write_private(pathlib.Path(out_dir) / FILE, json.dumps(dataclasses.asdict(self), indent=1))


def begin(out_dir, record: RunRecord) -> None:
    """A fresh run: forget any earlier run's completion markers, then record this one."""
    out = pathlib.Path(out_dir)
    for name in COMPLETE_MARKERS:
        (out / name).unlink(missing_ok=True)
    record.write(out)


def complete(out_dir, record: RunRecord) -> None:
    """The run's report is written: mark it complete and remove its checkpoints."""
    out = pathlib.Path(out_dir)
    dataclasses.replace(record, status="complete").write(out)
    for name in (CHECKPOINTS, LOCAL_PARTIES):
        shutil.rmtree(out / name, ignore_errors=True)


def read(out_dir) -> RunRecord:
    path = pathlib.Path(out_dir) / FILE
    try:
        doc = json.loads(path.read_text())
        return RunRecord(run=str(doc["run"]), job=str(doc["job"]), local=bool(doc["local"]),
                         status=str(doc["status"]))
    except FileNotFoundError:
        raise DataError(f"{out_dir} holds no run to resume (no {FILE})") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is unreadable or malformed: {exc}") from None


def resumable(out_dir, job_digest: str, *, local: bool) -> RunRecord:
    """The run recorded in ``out_dir``, checked: not complete, the same job, run the same way."""
    record = read(out_dir)
    if record.status == "complete":
        raise DataError(f"run {record.run} in {out_dir} completed: there is nothing to resume")
    if record.job != job_digest:
        raise DataError(f"run {record.run} in {out_dir} ran another job (the job file changed since): "
                        "run it afresh without --resume")
    if record.local != local:
        raise DataError(f"run {record.run} in {out_dir} ran {'with' if record.local else 'without'} --local; "
                        "resume it the same way")
    return record
