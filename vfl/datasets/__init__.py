"""Bundled public data (FATE's example sets; see data/SOURCE.md for attribution)."""
from __future__ import annotations

import pathlib

import pandas as pd

DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"


def path(name: str) -> pathlib.Path:
    """Path of a bundled file, e.g. ``path("breast_hetero_guest")``."""
    p = DATA_DIR / f"{name}.csv.gz"
    if not p.exists():
        known = sorted(f.name.removesuffix(".csv.gz") for f in DATA_DIR.glob("*.csv.gz"))
        raise FileNotFoundError(f"no bundled data set {name!r}; bundled: {known}")
    return p


def load(name: str) -> pd.DataFrame:
    return pd.read_csv(path(name))


def load_hetero(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The (guest, host) pair of a vertical split: ``load_hetero("breast")``."""
    return load(f"{name}_hetero_guest"), load(f"{name}_hetero_host")
