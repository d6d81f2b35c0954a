"""Model files: versioned JSON, one per party, holding only that party's part. No pickle."""
from __future__ import annotations

import json
import pathlib

import numpy as np

FORMAT = "vfl-linear-model"
VERSION = 1


def _plain(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def save_model(path, *, role: str, task: str, params: dict, arrays: dict, scalars: dict) -> None:
    doc = {"format": FORMAT, "version": VERSION, "role": role, "task": task,
           "params": {k: _plain(v) for k, v in params.items()},
           "arrays": {k: np.asarray(v, float).tolist() for k, v in arrays.items()},
           "scalars": {k: _plain(v) for k, v in scalars.items()}}
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))


def load_model(path, *, role: str, task: str | None) -> dict:
    try:
        doc = json.loads(pathlib.Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read model file {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file")
    if doc.get("version") != VERSION:
        raise ValueError(f"{path} has model format version {doc.get('version')}, this engine reads {VERSION}")
    if doc.get("role") != role:
        raise ValueError(f"{path} holds the {doc.get('role')} party's model, not the {role}'s")
    if task is not None and doc.get("task") != task:
        raise ValueError(f"{path} holds a {doc.get('task')} model, expected {task}")
    return doc
