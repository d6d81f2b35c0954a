"""What every model family's training handshake shares.

Each family's active party opens training with its own ``Setup`` message (its public
parameters); each passive checks it before any cryptography and answers :class:`Ready` with its
feature count, or refuses (an abort naming every problem). The checks every family makes are
here: the row count matches the aligned table, the key is large enough, the job stays within
what this party serves.
"""
from __future__ import annotations

import dataclasses

from protocols.messages import Message
from protocols.paillier.keys import SECURE_KEY_BITS
from vfl.errors import ProtocolError

MAX_FEATURES = 100_000


@dataclasses.dataclass(frozen=True)
class Ready(Message):
    """Passive → active: the setup is accepted; ``n_features`` columns take part."""
    KIND = "model.ready"
    n_features: int


def check_ready(ready: Ready, peer: str) -> int:
    """A passive's declared feature count (it sizes what the active expects back)."""
    n = ready.n_features
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_FEATURES:
        raise ProtocolError(f"{peer} declared {n!r} features; expected 1..{MAX_FEATURES}")
    return n


def setup_problems(*, job_rows: int, my_rows: int, rounds: int, max_rounds: int, unit: str,
                   key_bits: int | None, allow_small_key: bool, key_owner: str = "the job's") -> list[str]:
    """The checks every family's passive makes on a setup: rows, rounds, key size."""
    problems = []
    if job_rows != my_rows:
        problems.append(f"the job has {job_rows} rows but this party holds {my_rows} (tables not aligned?)")
    if rounds > max_rounds:
        problems.append(f"{rounds} {unit} requested but this party serves at most {max_rounds}")
    if key_bits is not None and key_bits not in SECURE_KEY_BITS and not allow_small_key:
        problems.append(f"{key_owner} {key_bits}-bit key is below the 2048-bit minimum")
    return problems


def refuse(problems: list[str], what: str, active: str) -> None:
    """Raise one error listing every problem (nothing if there are none)."""
    if problems:
        raise ProtocolError(f"refusing the {what} job from {active}: " + "; ".join(problems))
