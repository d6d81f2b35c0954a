"""Files a party writes about its own data (model parts, splits, reports): private and whole.

Written readable by this user only (0600) and atomically — to a temporary file in the same
directory, flushed to disk, then renamed over the target — so a reader (or a resumed run) sees
the old file or the complete new one, never half of one.
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile


def write_private(path, data: str | bytes) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
    return path
