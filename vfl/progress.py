"""Progress bars for long work (PSI, encryption, epochs, trees), on stderr, off when asked."""
from __future__ import annotations

import os
import sys

from tqdm import tqdm


def progress(iterable=None, *, desc: str, total: int | None = None, disable: bool = False, **kwargs):
    """A tqdm bar on stderr; disabled with ``disable=True`` or ``VFL_NO_PROGRESS=1``."""
    disable = disable or os.environ.get("VFL_NO_PROGRESS") == "1"
    return tqdm(iterable, desc=desc, total=total, disable=disable, file=sys.stderr, leave=False,
                dynamic_ncols=True, **kwargs)
