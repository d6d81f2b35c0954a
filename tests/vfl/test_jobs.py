"""Job files: every mistake is named before any cryptography starts."""
from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from vfl.errors import DataError
from vfl.jobs.data import feature_columns, read_table
from vfl.jobs.roles import make_active_model
from vfl.jobs.spec import JobSpecError, load_job

GOOD = """
[job]
name = "t"
model = "logistic_regression"
[evaluation]
test_size = 0.25
seed = 1
[model]
epochs = 2
[parties.bank]
role = "active"
data = "bank.csv"
label = "y"
[parties.insurer]
role = "passive"
data = "insurer.csv"
"""


def _write(tmp_path, text: str):
    path = tmp_path / "job.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_good_job_parses_with_paths_relative_to_the_file(tmp_path):
    spec = load_job(_write(tmp_path, GOOD))
    assert spec.active.name == "bank" and [p.name for p in spec.passives] == ["insurer"]
    assert spec.active.data == str(tmp_path / "bank.csv") and spec.test_size == 0.25
    assert spec.output_dir == "runs/t"


@pytest.mark.parametrize("change, match", [
    (lambda s: s.replace('model = "logistic_regression"', 'model = "forest"'), "model must be one of"),
    (lambda s: s.replace('[model]\nepochs = 2', '[model]\nepochs = 2\nlearning_rat = 1'), "unknown hyperparameters"),
    (lambda s: s.replace('role = "passive"', 'role = "passive"\nlabel = "y"'), "label column belongs to the active"),
    (lambda s: s.replace('label = "y"\n', ''), "must name its label"),
    (lambda s: s.replace('role = "passive"', 'role = "active"\nlabel = "y"'), "exactly one active"),
    (lambda s: s.replace('role = "passive"', 'role = "arbiter"'), "role must be"),
    (lambda s: s.replace('test_size = 0.25', 'test_size = 1.5'), "test_size"),
    (lambda s: s.replace('data = "insurer.csv"', 'dta = "insurer.csv"'), "unknown keys"),
    (lambda s: s.replace('[job]', '[jobb]'), "missing \\[job\\]"),
    (lambda s: s + "\n[[[", "not valid TOML"),
])
def test_bad_job_files_are_named(tmp_path, change, match):
    with pytest.raises(JobSpecError, match=match):
        load_job(_write(tmp_path, change(GOOD)))


def test_missing_job_file(tmp_path):
    with pytest.raises(JobSpecError, match="cannot read"):
        load_job(tmp_path / "nope.toml")


def test_bad_hyperparameter_values_fail_before_crypto(tmp_path):
    spec = load_job(_write(tmp_path, GOOD.replace("epochs = 2", "epochs = 0")))
    with pytest.raises(ValueError, match="epochs"):
        make_active_model(spec)
    spec = load_job(_write(tmp_path, GOOD.replace("epochs = 2", "epochs = 'many'")))
    with pytest.raises((ValueError, TypeError)):
        make_active_model(spec)


def _frame_checks(tmp_path):
    spec = load_job(_write(tmp_path, GOOD))
    return spec.active, spec.passives[0]


def test_missing_label_and_id_columns_named(tmp_path):
    active, passive = _frame_checks(tmp_path)
    with pytest.raises(DataError, match="bank: label column 'y'"):
        feature_columns(pd.DataFrame({"id": [1], "a": [1.0]}), active)
    with pytest.raises(DataError, match="insurer: id column 'id'"):
        feature_columns(pd.DataFrame({"cust": [1], "a": [1.0]}), passive)


def test_non_numeric_and_missing_features_named(tmp_path):
    _, passive = _frame_checks(tmp_path)
    with pytest.raises(DataError, match="insurer: feature column 'city' is not numeric"):
        feature_columns(pd.DataFrame({"id": [1, 2], "a": [1.0, 2.0], "city": ["x", "y"]}), passive)
    with pytest.raises(DataError, match="'a' has missing"):
        feature_columns(pd.DataFrame({"id": [1, 2], "a": [1.0, None]}), passive)


def test_unreadable_data_file_named(tmp_path):
    with pytest.raises(DataError, match="bank: data file .* does not exist"):
        read_table(tmp_path / "none.csv", "bank")
