"""Checkpoints of a training run, so that a run that died continues where it stopped.

Every party keeps its own state of a run in its own directory (:class:`RunState`):

- ``job.json``, written once the PSI and the evaluation split are done ("round 0"): which of
  its rows the PSI aligned, in which order, and the split. A resumed run rebuilds its aligned
  table from it and runs no second PSI (so it reveals nothing new).
- ``round-NNNNNN.json``, written by the estimator at each round boundary (after an epoch, a
  tree): what it needs to continue — weights, trees, losses, random-generator states, never a
  key (keys are drawn afresh on resume; the arithmetic under them is exact, so the model is
  the same). The last :data:`KEEP` rounds are kept: a party may be a round ahead of another.

Every file is private (0600, directory 0700) and written whole (temporary file, fsync,
rename, fsync of the directory), and bound to the run: its id and digests of the job, of the
party's table, of the columns it uses (a passive's own data policy may choose them), of its
peers' public keys and of the aligned ids and split. A file whose binding differs from the
resumed run's is never used; a changed table, job or choice of columns is refused by name.
The directory is removed when the run completes.

On resume the parties agree on the last round every one of them holds (:func:`agree_round`,
run by :mod:`vfl.jobs.active` and :mod:`vfl.jobs.passive`). A party whose state only changes
in some rounds (a passive that takes no part in trees grown on the active's columns alone)
saves with ``open_ended=True``: such a checkpoint also stands for the later rounds up to its
next one.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil

import numpy as np
import pandas as pd

from vfl.errors import DataError, ProtocolError
from vfl.files import make_dirs, write_private

KEEP = 2
JOB_FILE = "job.json"
OPEN = -1                        # the upper end of an open-ended checkpoint's rounds


def digest_of(value) -> str:
    """sha256 of plain data (JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def table_digest(frame: pd.DataFrame) -> str:
    """sha256 of a table's content (column names and values, not its file's bytes); of a table
    read a chunk at a time (:class:`vfl.jobs.data.CsvTable`), of its file's bytes."""
    if not isinstance(frame, pd.DataFrame):
        return f"file:{frame.digest()}"
    h = hashlib.sha256(json.dumps([str(c) for c in frame.columns]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def alignment_digest(ids: list[str], train_rows: np.ndarray, test_rows: np.ndarray) -> str:
    """sha256 of the aligned ids (normalized, in the common order) and the split: equal at every
    party of a run, so the parties can compare them without showing them."""
    h = hashlib.sha256()
    for value in ids:
        raw = value.encode("utf-8")
        h.update(len(raw).to_bytes(4, "big") + raw)
    h.update(np.asarray(train_rows, "<i8").tobytes() + b"|" + np.asarray(test_rows, "<i8").tobytes())
    return h.hexdigest()


def encode_state(value):
    """numpy arrays and scalars to JSON: arrays as their raw bytes (exact, compact)."""
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return {"__list__": [encode_state(v) for v in value.tolist()]}
        data = np.ascontiguousarray(value)
        return {"__array__": base64.b64encode(data.tobytes()).decode(), "dtype": data.dtype.str,
                "shape": list(data.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): encode_state(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_state(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return {"__float__": repr(value)}
    return value


def decode_state(value):
    if isinstance(value, dict):
        if "__array__" in value:
            raw = base64.b64decode(value["__array__"])
            return np.frombuffer(raw, dtype=np.dtype(value["dtype"])).reshape(value["shape"]).copy()
        if "__float__" in value:
            return float(value["__float__"])
        if "__list__" in value:
            return [decode_state(v) for v in value["__list__"]]
        return {k: decode_state(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_state(v) for v in value]
    return value


def _private_dir(path: pathlib.Path) -> pathlib.Path:
    make_dirs(path)
    os.chmod(path, 0o700)
    return path


def _read(path: pathlib.Path) -> dict | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


@dataclasses.dataclass(frozen=True)
class Alignment:
    """What ``job.json`` holds: this party's aligned rows (positions in its table, in the
    common order), the split (positions in the aligned order) and their common digest."""

    rows: np.ndarray
    train_rows: np.ndarray
    test_rows: np.ndarray
    digest: str


@dataclasses.dataclass
class RunState:
    """One party's persistent state of one training run.

    ``job`` is the digest of the job as this party sees it, ``peers`` the digest of its peers'
    public keys, ``columns`` the digest of the columns it uses (in order; a passive's data
    policy may choose them, the job does not always say); ``resume`` says the run continues
    from here rather than starting.
    """

    directory: pathlib.Path
    run: str
    job: str
    peers: str = ""
    resume: bool = False
    columns: str = ""

    def __post_init__(self):
        self.directory = pathlib.Path(self.directory)

    def _binding(self, table: str) -> dict:
        return {"run": self.run, "job": self.job, "table": table, "peers": self.peers, "columns": self.columns}

    def begin(self, frame: pd.DataFrame, alignment: Alignment) -> "Checkpoints":
        """Record the PSI's outcome and the split (a fresh run); returns the round store."""
        if self.directory.exists():
            shutil.rmtree(self.directory)
        _private_dir(self.directory)
        binding = self._binding(table_digest(frame))
        write_private(self.directory / JOB_FILE, json.dumps({"binding": binding, "alignment": encode_state(
            {"rows": alignment.rows, "train": alignment.train_rows, "test": alignment.test_rows,
             "digest": alignment.digest})}))
        return Checkpoints(self.directory, {**binding, "alignment": alignment.digest})

    def held(self) -> bool:
        """Whether this party holds a state of the run (whatever its binding)."""
        return (self.directory / JOB_FILE).is_file()

    def check(self, frame: pd.DataFrame, party: str) -> None:
        """Check that the run, the job, this party's table, the columns it uses and its peers are
        those the state was written for (DataError naming which differs otherwise)."""
        self._checked(frame, party)

    def _checked(self, frame: pd.DataFrame, party: str) -> tuple[dict, dict]:
        doc = _read(self.directory / JOB_FILE)
        if doc is None or not isinstance(doc.get("binding"), dict) or doc["binding"].get("run") != self.run:
            raise DataError(f"party {party!r} holds no state of run {self.run} (in {self.directory})")
        expected, found = self._binding(table_digest(frame)), doc["binding"]
        if found.get("columns") != expected["columns"]:
            raise DataError(f"cannot resume run {self.run} at party {party!r}: the columns it uses differ from "
                            "those its checkpoint was written for (its data policy or the job's features "
                            "changed since the run started)")
        what = {"job": "the job", "table": f"party {party!r}'s table", "peers": "the peers' public keys"}
        changed = [what[k] for k in what if found.get(k) != expected[k]]
        if changed:
            raise DataError(f"cannot resume run {self.run} at party {party!r}: {', '.join(changed)} changed "
                            "since the run started")
        return doc, expected

    def restore(self, frame: pd.DataFrame, party: str) -> tuple[Alignment, "Checkpoints"]:
        """The recorded alignment and the round store, once :meth:`check` passes."""
        doc, expected = self._checked(frame, party)
        try:
            a = decode_state(doc["alignment"])
            alignment = Alignment(np.asarray(a["rows"], np.int64), np.asarray(a["train"], np.int64),
                                  np.asarray(a["test"], np.int64), str(a["digest"]))
        except (KeyError, TypeError, ValueError):
            raise DataError(f"party {party!r}'s state of run {self.run} is damaged ({self.directory / JOB_FILE})") \
                from None
        if len(alignment.rows) and (alignment.rows.min() < 0 or alignment.rows.max() >= len(frame)):
            raise DataError(f"party {party!r}'s state of run {self.run} names rows its table does not have")
        return alignment, Checkpoints(self.directory, {**expected, "alignment": alignment.digest})

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclasses.dataclass
class Checkpoints:
    """One party's round checkpoints of one run, in ``directory``, bound to ``binding``."""

    directory: pathlib.Path
    binding: dict

    def __post_init__(self):
        self.directory = pathlib.Path(self.directory)

    def _path(self, round_: int) -> pathlib.Path:
        return self.directory / f"round-{round_:06d}.json"

    def _docs(self) -> dict[int, dict]:
        out = {}
        for path in sorted(self.directory.glob("round-*.json")) if self.directory.is_dir() else []:
            doc = _read(path)
            if doc is not None and doc.get("binding") == self.binding and isinstance(doc.get("round"), int) \
                    and path == self._path(doc["round"]):
                out[doc["round"]] = doc
        return out

    def rounds(self) -> list[int]:
        """The rounds this party holds for this run (files of other runs are ignored)."""
        return sorted(self._docs())

    def holdings(self) -> list[tuple[int, int]]:
        """The rounds this party can resume at, as ``(first, last)`` ranges (``last`` = :data:`OPEN`:
        every later round). Round 0 — the start of the fit — is always held."""
        docs = self._docs()
        starts = sorted(docs)
        out = [] if 0 in docs else [(0, 0)]
        for i, r in enumerate(starts):
            if docs[r].get("open_ended"):
                out.append((r, starts[i + 1] - 1 if i + 1 < len(starts) else OPEN))
            else:
                out.append((r, r))
        return out

    def save(self, round_: int, state: dict, *, open_ended: bool = False) -> None:
        _private_dir(self.directory)
        write_private(self._path(round_), json.dumps({"round": round_, "binding": self.binding,
                                                      "open_ended": open_ended, "state": encode_state(state)}))
        for old in self.rounds()[:-KEEP]:
            self._path(old).unlink(missing_ok=True)

    def load(self, round_: int) -> dict | None:
        """The state saved at ``round_`` or, for an open-ended checkpoint, the one standing for it
        (None: round 0 and nothing saved, the fit starts from the beginning)."""
        chosen = None
        for first, last in self.holdings():
            if first <= round_ and (last == OPEN or round_ <= last):
                chosen = first
        if chosen is None:
            raise DataError(f"no checkpoint of round {round_} in {self.directory}")
        doc = self._docs().get(chosen)
        return None if doc is None else decode_state(doc["state"])

    def drop_after(self, round_: int) -> None:
        """Forget the rounds after ``round_`` (a resumed run redoes them)."""
        for r in self.rounds():
            if r > round_:
                self._path(r).unlink(missing_ok=True)


def covers(holdings, round_: int) -> bool:
    return any(first <= round_ and (last == OPEN or round_ <= last) for first, last in holdings)


def agree_round(own: list[int], others: dict[str, list]) -> int:
    """The last round of ``own`` every other party covers (ProtocolError for malformed ranges)."""
    for name, ranges in others.items():
        if not isinstance(ranges, (list, tuple)) or not all(
                isinstance(r, (list, tuple)) and len(r) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                    for v in r) for r in ranges):
            raise ProtocolError(f"{name} described the rounds it holds in a malformed way")
    common = [r for r in own if all(covers(ranges, r) for ranges in others.values())]
    return max(common, default=0)


@dataclasses.dataclass
class Checkpoint:
    """What an estimator's ``fit`` gets: the round to start at, ``state`` saved there (None: the
    beginning) and ``save(round, state)`` to call at every round boundary. ``fixed`` is merged
    into every state saved (what the estimator settles once per fit, e.g. its row split)."""

    store: Checkpoints | None = None
    round: int = 0
    state: dict | None = None
    fixed: dict = dataclasses.field(default_factory=dict)

    def save(self, round_: int, state: dict, *, open_ended: bool = False) -> None:
        if self.store is not None:
            self.store.save(round_, {**self.fixed, **state}, open_ended=open_ended)


def setup_digest(setup) -> str:
    """sha256 of a setup message's fields but its public key (a resumed fit draws a new one)."""
    fields = {f.name: getattr(setup, f.name) for f in dataclasses.fields(setup) if f.name != "public_key"}
    return digest_of(encode_state(fields))


def same_setup(checkpoint: Checkpoint | None, setup, active: str) -> None:
    """A passive's check that a resumed fit runs under the setup its checkpoint was saved under
    (the rows, the batch order, the rounds); records the setup for the next checkpoints."""
    if checkpoint is None:
        return
    digest = setup_digest(setup)
    if checkpoint.state is not None and checkpoint.state.get("setup") != digest:
        raise ProtocolError(f"{active} continues the fit with another setup than the one this party checkpointed")
    checkpoint.fixed["setup"] = digest
