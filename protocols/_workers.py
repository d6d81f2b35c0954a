"""How many worker processes the engine may use.

``VFL_WORKERS`` caps the process pool of every parallel routine; an explicit ``workers=``
argument wins over the environment. Default: all cores.
"""
from __future__ import annotations

import os

ENV_VAR = "VFL_WORKERS"


def resolve_workers(workers: int | None = None) -> int:
    """Return the worker count to use: the argument, else ``$VFL_WORKERS``, else all cores."""
    if workers is None:
        raw = os.environ.get(ENV_VAR, "").strip()
        if raw:
            try:
                workers = int(raw)
            except ValueError:
                raise ValueError(f"{ENV_VAR} must be a positive integer, got {raw!r}") from None
        else:
            workers = os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return workers
