"""The files of a run on disk: written durably (the directory of a renamed or new entry is
fsynced too) and used by one process at a time (``run.lock``)."""
from __future__ import annotations

import os
import stat

import numpy as np
import pandas as pd
import pytest

from parties.jobs import execute
from vfl import files
from vfl.checkpoint import Alignment, RunState
from vfl.errors import DataError
from vfl.jobs import runs


@pytest.fixture
def synced(monkeypatch):
    """What os.fsync was called on, in order: a directory's path, or None for a file."""
    calls, opened, real_open, real_fsync = [], {}, os.open, os.fsync

    def open_(path, flags, *args, **kw):
        fd = real_open(path, flags, *args, **kw)
        opened[fd] = str(path)
        return fd

    def fsync(fd):
        calls.append(opened.get(fd) if stat.S_ISDIR(os.fstat(fd).st_mode) else None)
        real_fsync(fd)
    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def test_a_private_write_syncs_the_file_then_its_directory(tmp_path, synced):
    target = tmp_path / "a" / "b" / "part.json"
    files.write_private(target, "{}")
    made = [str(tmp_path), str(tmp_path / "a")]                   # the parents of the directories made
    assert synced == [*made, None, str(tmp_path / "a" / "b")]     # then the file, then the rename
    assert target.read_text() == "{}" and oct(target.stat().st_mode & 0o777) == "0o600"
    synced.clear()
    files.write_private(target, "[]")                             # over an existing file: the rename
    assert synced == [None, str(tmp_path / "a" / "b")]


def test_a_directory_that_refuses_fsync_is_left_alone(tmp_path, monkeypatch):
    def refuse(fd):
        raise OSError(22, "Invalid argument")
    monkeypatch.setattr(os, "fsync", lambda fd: refuse(fd) if stat.S_ISDIR(os.fstat(fd).st_mode) else None)
    files.write_private(tmp_path / "x" / "y.json", "1")                 # no error
    assert (tmp_path / "x" / "y.json").read_text() == "1"


def test_checkpoints_sync_their_directories(tmp_path, synced):
    state = RunState(tmp_path / "state" / "p0", run="r", job="j")
    rows = np.arange(4)
    store = state.begin(pd.DataFrame({"a": rows}), Alignment(rows, rows[:3], rows[3:], "d"))
    assert synced == [str(tmp_path), str(tmp_path / "state"), None, str(tmp_path / "state" / "p0")]
    synced.clear()
    store.save(1, {"w": np.zeros(2)})
    assert synced == [None, str(tmp_path / "state" / "p0")]


def test_a_run_directory_is_used_by_one_process_at_a_time(tmp_path):
    out = tmp_path / "out"
    first = runs.lock(out)
    assert oct((out / runs.LOCK).stat().st_mode & 0o777) == "0o600"
    with pytest.raises(DataError, match=f"the run in {out} is in use by another process"):
        runs.lock(out)                                  # another open file: refused, even in this process
    runs.RunRecord(run="abc123", job="j", local=True).write(out)
    with pytest.raises(DataError, match="run abc123 in .* is in use by another process"):
        runs.lock(out)
    first.release()
    with runs.lock(out):                                # released: the next run may take it
        pass
    with pytest.raises(DataError, match="holds no run to resume"):
        runs.lock(tmp_path / "missing", create=False)
    assert not (tmp_path / "missing").exists()


def test_training_holds_the_lock_until_finish_and_releases_it_on_errors(tmp_path, monkeypatch):
    spec = type("Spec", (), {"output_dir": str(tmp_path / "out")})()
    monkeypatch.setattr(execute, "_train", lambda *a, **kw: "outcome")
    assert execute.train(spec, None, execute.Parties(local=True)) == "outcome"
    with pytest.raises(DataError, match="in use by another process"):      # trained, the report not yet out
        runs.lock(spec.output_dir)
    runs.RunRecord(run="r1", job="j", local=True).write(spec.output_dir)
    execute.finish(spec)
    runs.lock(spec.output_dir).release()                                    # finished: released

    def dies(*a, **kw):
        with pytest.raises(DataError, match="run r1 in .* is in use"):        # held while it runs
            runs.lock(spec.output_dir)
        raise DataError("the run failed")
    monkeypatch.setattr(execute, "_train", dies)
    with pytest.raises(DataError, match="the run failed"):
        execute.train(spec, None, execute.Parties(local=True), resume=True)
    runs.lock(spec.output_dir).release()                                    # released on the error

    holder = runs.lock(spec.output_dir)                                     # another process's run
    monkeypatch.setattr(execute, "_train", lambda *a, **kw: pytest.fail("ran beside another run"))
    with pytest.raises(DataError, match="in use by another process"):
        execute.train(spec, None, execute.Parties(local=True), resume=True)
    holder.release()


def test_a_run_trained_here_but_never_finished_hands_its_lock_over(tmp_path, monkeypatch):
    spec = type("Spec", (), {"output_dir": str(tmp_path / "out")})()
    monkeypatch.setattr(execute, "_train", lambda *a, **kw: "outcome")
    execute.train(spec, None, execute.Parties(local=True))                  # its report never written
    assert execute.train(spec, None, execute.Parties(local=True), resume=True) == "outcome"
    runs.RunRecord(run="r1", job="j", local=True).write(spec.output_dir)
    execute.finish(spec)
    runs.lock(spec.output_dir).release()
