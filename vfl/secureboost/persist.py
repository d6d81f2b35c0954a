"""SecureBoost model files: versioned JSON, one per party, holding only that party's part.

No pickle. Non-finite floats are written as ``null`` (a threshold of ``null`` means +inf:
"every non-missing value goes left"), so the files are strict JSON.
"""
from __future__ import annotations

import json
import math
import pathlib

import numpy as np

FORMAT = "vfl-secureboost-model"
VERSION = 1


def finite_or_none(values) -> list:
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, float).tolist()]


def none_to(values, fill: float) -> np.ndarray:
    return np.array([fill if v is None else float(v) for v in values], dtype=float)


def _plain(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def save_model(path, *, role: str, params: dict, body: dict) -> None:
    doc = {"format": FORMAT, "version": VERSION, "role": role,
           "params": {k: _plain(v) for k, v in params.items()}, "model": body}
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, allow_nan=False))


def load_model(path, *, role: str) -> dict:
    try:
        doc = json.loads(pathlib.Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read model file {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file")
    if doc.get("version") != VERSION:
        raise ValueError(f"{path} has model format version {doc.get('version')}, this engine reads {VERSION}")
    if doc.get("role") != role:
        raise ValueError(f"{path} holds the {doc.get('role')} party's SecureBoost model, not the {role}'s")
    if not isinstance(doc.get("params"), dict) or not isinstance(doc.get("model"), dict):
        raise ValueError(f"{path} is malformed: params or model missing")
    return doc
