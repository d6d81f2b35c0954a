"""Every job file shipped in vfl/datasets/jobs loads, and its tables exist and pass their checks."""
from __future__ import annotations

import pathlib

import pytest

import vfl
from vfl.jobs.data import feature_columns, read_table
from vfl.jobs.spec import load_job

JOBS = sorted((pathlib.Path(vfl.__file__).parent / "datasets" / "jobs").glob("*.toml"))


@pytest.mark.parametrize("path", JOBS, ids=[p.stem for p in JOBS])
def test_bundled_job_loads_and_names_real_tables(path):
    spec = load_job(path)
    for party in spec.parties:
        frame = read_table(party.data, party.name, party.id_column)
        assert feature_columns(frame, party, spec.family)
