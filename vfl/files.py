"""Files a party writes about its own data (model parts, splits, reports): private and whole.

Written readable by this user only (0600) and atomically — to a temporary file in the same
directory, flushed to disk, then renamed over the target — so a reader (or a resumed run) sees
the old file or the complete new one, never half of one. The rename, and every directory made
on the way, is flushed too (the containing directory is fsynced, where the platform allows), so
that a machine that loses power does not come back with the file's old name or without it.
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile


def sync_dir(path) -> None:
    """Flush a directory's entries (a file renamed or created in it) to disk: best effort, a
    platform that cannot open or fsync a directory is left as it is."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def make_dirs(path) -> pathlib.Path:
    """``mkdir -p path``; the entry of every directory it creates is flushed (its parent fsynced)."""
    path = pathlib.Path(path)
    missing, p = [], path
    while not os.path.lexists(p) and p != p.parent:
        missing.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True)
    for created in reversed(missing):
        sync_dir(created.parent)
    return path


def write_private(path, data: str | bytes) -> pathlib.Path:
    path = pathlib.Path(path)
    make_dirs(path.parent)
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")   # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    sync_dir(path.parent)
    return path
