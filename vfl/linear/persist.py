"""Model files: versioned JSON, one per party, holding only that party's part. No pickle."""
from __future__ import annotations

import numpy as np

from vfl.model_files import plain, read_model_file, write_model_file

FORMAT = "vfl-linear-model"
VERSION = 1


def save_model(path, *, role: str, task: str, params: dict, arrays: dict, scalars: dict) -> None:
    doc = {"format": FORMAT, "version": VERSION, "role": role, "task": task,
           "params": {k: plain(v) for k, v in params.items()},
           "arrays": {k: np.asarray(v, float).tolist() for k, v in arrays.items()},
           "scalars": {k: plain(v) for k, v in scalars.items()}}
    write_model_file(path, doc)


def load_model(path, *, role: str, task: str | None) -> dict:
    doc = read_model_file(path, format=FORMAT, version=VERSION, role=role)
    if task is not None and doc.get("task") != task:
        raise ValueError(f"{path} holds a {doc.get('task')} model, expected {task}")
    return doc
