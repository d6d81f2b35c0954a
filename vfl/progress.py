"""Progress bars for long work (PSI, encryption, epochs, trees), on stderr, off when asked;
and a clock of the time spent per phase of a protocol."""
from __future__ import annotations

import contextlib
import os
import sys
import time

from tqdm import tqdm


def progress(iterable=None, *, desc: str, total: int | None = None, disable: bool = False, **kwargs):
    """A tqdm bar on stderr; disabled with ``disable=True`` or ``VFL_NO_PROGRESS=1``."""
    disable = disable or os.environ.get("VFL_NO_PROGRESS") == "1"
    return tqdm(iterable, desc=desc, total=total, disable=disable, file=sys.stderr, leave=False,
                dynamic_ncols=True, **kwargs)


class PhaseClock:
    """Seconds spent and operations done per named phase of a protocol run (for reports and
    benchmarks): ``with clock("decryption", n_ciphertexts): ...`` or ``clock.count(name, n)``."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    @contextlib.contextmanager
    def __call__(self, phase: str, operations: int = 0):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start
            if operations:
                self.count(phase, operations)

    def count(self, name: str, operations: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(operations)

    def to_report(self) -> dict:
        return {"seconds": {k: round(v, 4) for k, v in self.seconds.items()}, "counts": dict(self.counts)}
