"""Model files of every model family: versioned strict JSON, one per party, no pickle."""
from __future__ import annotations

import json
import pathlib

import numpy as np

from vfl.files import write_private


def plain(value):
    """numpy scalars to Python numbers (JSON has no numpy types)."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def write_model_file(path, doc: dict) -> None:
    """This party's part of a model: private to its user, written whole (:mod:`vfl.files`)."""
    write_private(path, json.dumps(doc, indent=1, allow_nan=False))


def read_model_file(path, *, format: str, version: int, role: str) -> dict:
    """The document, after checking its format, version and which party's part it is."""
    try:
        doc = json.loads(pathlib.Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read model file {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != format:
        raise ValueError(f"{path} is not a {format} file")
    if doc.get("version") != version:
        raise ValueError(f"{path} has model format version {doc.get('version')}, this engine reads {version}")
    if doc.get("role") != role:
        raise ValueError(f"{path} holds the {doc.get('role')} party's model, not the {role}'s")
    return doc
