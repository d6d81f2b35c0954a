"""``run.json``: which run an output directory belongs to, and whether it completed.

A training run writes it when it starts (``"status": "running"``) and marks it complete once
the report is written; ``vfl run JOB --resume RUN_DIR`` reads it to know which run to
continue. Starting a run first removes what marks a previous run's output as complete (its
report and its model manifest), so a half-written output is never taken for a finished one:
``vfl predict`` needs the manifest, and the report is written last.

The active party's checkpoints live beside it, in ``checkpoints/``; a local run's parties
(configs, keys, the passives' model parts and checkpoints) in ``parties/``. Both are removed
when the run completes.

One process at a time uses an output directory: a run (fresh or resumed) holds an exclusive
lock on ``run.lock`` in it (:func:`lock`) until it ends, and a second one is refused.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import pathlib
import shutil

from vfl.errors import DataError
from vfl.files import make_dirs, write_private

try:
    import fcntl
except ImportError:          # not POSIX: no locking
    fcntl = None

FILE = "run.json"
LOCK = "run.lock"
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


class RunLock:
    """An exclusive lock on an output directory: ``flock`` on ``run.lock`` in it, held as long as
    this object's file is open (and released by the system when the process dies)."""

    def __init__(self, fd: int | None):
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)                 # closing the file releases its lock

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock(out_dir, *, create: bool = True) -> RunLock:
    """Take the output directory's run lock (DataError if another run holds it; ``create``: make
    the directory if need be). Locks belong to an open file, so a second :func:`lock` of the
    same directory fails even in the same process."""
    out = pathlib.Path(out_dir)
    if create:
        make_dirs(out)
    elif not out.is_dir():
        raise DataError(f"{out_dir} holds no run to resume (no {FILE})")
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(out / LOCK, flags, 0o600)
    except OSError as exc:
        raise DataError(f"cannot lock {out / LOCK}: {exc.strerror}") from None
    if fcntl is None:
        return RunLock(fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise DataError(f"cannot lock {out / LOCK}: {exc.strerror}") from None
        run = None
        with contextlib.suppress(DataError):
            run = read(out).run
        which = f"run {run} in {out}" if run else f"the run in {out}"
        raise DataError(f"{which} is in use by another process (a run, or a resume of it, is still going on): "
                        "wait for it to end or stop it first") from None
    return RunLock(fd)
