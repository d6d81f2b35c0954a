"""The manifest of a trained model: which run made it and a digest of every party's part.

Written by the active party when a training job ends (``model/manifest.json``), read by ``vfl
predict``. Every party stores its part under the run's id, and a prediction names the run and
the part's digest: a part from another run, or a changed one, is refused instead of being
silently combined with the others. Manifests written before runs were recorded have neither;
their parts are found by job name, unchecked.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib

from vfl.errors import DataError
from vfl.files import write_private
from vfl.names import is_safe_name

FILE = "manifest.json"


def digest(path) -> str:
    """sha256 of a model part file."""
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Manifest:
    job: str
    model: str
    active: str
    passives: list[str]
    run: str | None = None                               # the training job's id
    parts: dict[str, str] = dataclasses.field(default_factory=dict)   # party -> sha256 of its part

    def write(self, model_dir) -> None:
        write_private(pathlib.Path(model_dir) / FILE, json.dumps(dataclasses.asdict(self), indent=1))

    @classmethod
    def read(cls, model_dir) -> "Manifest":
        path = pathlib.Path(model_dir) / FILE
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"cannot read {path}: {exc}") from None
        names = [raw.get("job"), raw.get("active"), *(raw.get("passives") or [])] if isinstance(raw, dict) else [None]
        run, parts = (raw.get("run"), raw.get("parts", {})) if isinstance(raw, dict) else (None, None)
        if not all(is_safe_name(n) for n in names) or not isinstance(raw.get("model"), str) \
                or not (run is None or is_safe_name(run)) or not isinstance(parts, dict):
            raise DataError(f"{path} is not a manifest of this engine (job, parties, run or parts malformed)")
        return cls(raw["job"], raw["model"], raw["active"], list(raw["passives"]), run, dict(parts))

    def check_part(self, party: str, path) -> None:
        """Refuse a part that is not the one this run recorded (no check for legacy manifests)."""
        expected = self.parts.get(party)
        if self.run is not None and expected != digest(path):
            raise DataError(f"{party}'s model part {path} is not the one run {self.run} of job {self.job} recorded "
                            "(another run's part, or changed since)")
