"""SecureBoost model files: versioned JSON, one per party, holding only that party's part.

No pickle. Non-finite floats are written as ``null`` (a threshold of ``null`` means +inf:
"every non-missing value goes left"), so the files are strict JSON.
"""
from __future__ import annotations

import math

import numpy as np

from vfl.model_files import plain, read_model_file, write_model_file

FORMAT = "vfl-secureboost-model"
VERSION = 1


def finite_or_none(values) -> list:
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, float).tolist()]


def none_to(values, fill: float) -> np.ndarray:
    return np.array([fill if v is None else float(v) for v in values], dtype=float)


def save_model(path, *, role: str, params: dict, body: dict) -> None:
    doc = {"format": FORMAT, "version": VERSION, "role": role,
           "params": {k: plain(v) for k, v in params.items()}, "model": body}
    write_model_file(path, doc)


def load_model(path, *, role: str) -> dict:
    doc = read_model_file(path, format=FORMAT, version=VERSION, role=role)
    if not isinstance(doc.get("params"), dict) or not isinstance(doc.get("model"), dict):
        raise ValueError(f"{path} is malformed: params or model missing")
    return doc
