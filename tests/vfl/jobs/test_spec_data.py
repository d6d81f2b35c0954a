"""Job files and tables: every mistake is named before any cryptography starts."""
from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from vfl import registry
from vfl.errors import DataError
from vfl.jobs.data import feature_columns, read_table
from vfl.jobs.spec import JobSpecError, PassiveRequest, load_job

LR, SBT = registry.family("logistic_regression"), registry.family("secureboost")

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
    (lambda s: s.replace('epochs = 2', 'epochs = 0'), "epochs must be an integer >= 1, got 0"),
    (lambda s: s.replace('epochs = 2', "epochs = 'many'"), "epochs must be an integer >= 1, got 'many'"),
    (lambda s: s.replace('epochs = 2', 'penalty = "l3"'), "penalty must be one of"),
    (lambda s: s.replace('epochs = 2', 'verbose = true'), "unknown hyperparameters \\['verbose'\\]"),
    (lambda s: s.replace('name = "t"', 'name = "../t"'), "name must be 1-64 letters"),
    (lambda s: s.replace('seed = 1', 'seed = -1'), "seed must be a non-negative integer"),
    (lambda s: s + '\n[noise]\nscale = 1.0\n', "unknown section \\[noise\\] for model"),
    (lambda s: s + '\n[privacy]\nlabel_epsilon = 0\n', "\\[privacy\\] label_epsilon must be a number in"),
    (lambda s: s.replace('data = "insurer.csv"', 'data = "insurer.csv"\nfeatures = ["a", "a"]'),
     "lists \\['a'\\] more than once"),
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


def test_hyperparameters_come_from_the_family(tmp_path):
    sbt = GOOD.replace('model = "logistic_regression"', 'model = "secureboost"').replace("epochs = 2", "max_depth = 4")
    assert load_job(_write(tmp_path, sbt)).hyperparameters == {"max_depth": 4}
    with pytest.raises(JobSpecError, match="unknown hyperparameters \\['epochs'\\] for secureboost"):
        load_job(_write(tmp_path, sbt.replace("max_depth = 4", "epochs = 2")))
    with pytest.raises(JobSpecError, match="goss are two ways to sample rows"):
        load_job(_write(tmp_path, sbt.replace("max_depth = 4", "goss = true\nsubsample = 0.5")))
    assert set(LR.hyperparameters()) == set(LR.active_estimator.default_params()) - {"verbose"}


def test_passive_request_round_trip_and_refusals(tmp_path):
    spec = load_job(_write(tmp_path, GOOD))
    request = PassiveRequest.parse(spec.passive_request(), "insurer")
    assert (request.job, request.model, request.party.id_column, request.party.features) == ("t", LR.name, "id", None)
    for params, match in [({**spec.passive_request(), "job": "../x"}, "not a safe file name"),
                          ({**spec.passive_request(), "model": "forest"}, "unknown model 'forest'"),
                          ({**spec.passive_request(), "parties": {}}, "does not describe insurer's part"),
                          ([], "not a table")]:
        with pytest.raises((JobSpecError, registry.UnknownModelError), match=match):
            PassiveRequest.parse(params, "insurer")


def _frame_checks(tmp_path):
    spec = load_job(_write(tmp_path, GOOD))
    return spec.active, spec.passives[0]


def test_missing_label_and_id_columns_named(tmp_path):
    active, passive = _frame_checks(tmp_path)
    with pytest.raises(DataError, match="bank: label column 'y'"):
        feature_columns(pd.DataFrame({"id": [1], "a": [1.0]}), active, LR)
    with pytest.raises(DataError, match="insurer: id column 'id'"):
        feature_columns(pd.DataFrame({"cust": [1], "a": [1.0]}), passive, LR)


def test_non_numeric_and_missing_features_named(tmp_path):
    _, passive = _frame_checks(tmp_path)
    with pytest.raises(DataError, match="insurer: feature column 'city' is not numeric"):
        feature_columns(pd.DataFrame({"id": [1, 2], "a": [1.0, 2.0], "city": ["x", "y"]}), passive, LR)
    with pytest.raises(DataError, match="insurer: feature column 'flag' is not numeric \\(dtype bool\\)"):
        feature_columns(pd.DataFrame({"id": [1, 2], "a": [1.0, 2.0], "flag": [True, False]}), passive, SBT)
    with pytest.raises(DataError, match="'b' has infinite values"):
        feature_columns(pd.DataFrame({"id": [1, 2], "a": [1.0, None], "b": [1.0, float("inf")]}), passive, SBT)


def test_missing_values_are_refused_only_where_the_family_cannot_take_them(tmp_path):
    active, passive = _frame_checks(tmp_path)
    frame = pd.DataFrame({"id": [1, 2, 3], "a": [1.0, None, 3.0], "x2": [None, None, 1.0], "y": [0, 1, 0]})
    with pytest.raises(DataError, match="insurer: feature column 'a' has missing values; logistic_regression "
                                        "needs complete rows; models that accept missing values: "
                                        "(.*, )?secureboost, secureboost_regression"):
        feature_columns(frame.drop(columns="y"), passive, LR)
    assert feature_columns(frame, active, SBT) == ["a", "x2"]
    with pytest.raises(DataError, match="bank \\(label column 'y'\\): the label column has missing"):
        feature_columns(frame.assign(y=[0, None, 1]), active, SBT)
    with pytest.raises(DataError, match="a binary model needs labels 0/1, found \\[2.0\\]"):
        feature_columns(frame.fillna(0.0).assign(y=[0, 2, 1]), active, LR)


def test_unreadable_data_file_named(tmp_path):
    with pytest.raises(DataError, match="bank: data file .* does not exist"):
        read_table(tmp_path / "none.csv", "bank")


def test_empty_and_header_only_files_are_named(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("id,x0,y\n")
    with pytest.raises(DataError, match=r"bank: data file .*empty.csv is empty"):
        read_table(tmp_path / "empty.csv", "bank")
    with pytest.raises(DataError, match=r"bank: data file .*header.csv has a header but no rows"):
        read_table(tmp_path / "header.csv", "bank", "id")


def test_ids_are_read_as_text_so_leading_zeros_are_kept(tmp_path):
    (tmp_path / "t.csv").write_text("id,x\n00133,1\n133,2\n7,3\n")
    frame = read_table(tmp_path / "t.csv", "bank", "id")
    assert frame["id"].tolist() == ["00133", "133", "7"] and frame["x"].dtype.kind == "i"
    from vfl.psi import normalize_ids
    assert normalize_ids(frame, "id", "bank") == ["00133", "133", "7"]      # two customers, not one


@pytest.mark.parametrize("labels, match", [
    (["no", "yes", "no"], "labels must be numbers .* holds text"),
    ([0, 0, 0], "the labels hold a single class; a classifier needs both 0 and 1"),
])
def test_unusable_labels_are_named_before_any_cryptography(tmp_path, labels, match):
    active, _ = _frame_checks(tmp_path)
    frame = pd.DataFrame({"id": [1, 2, 3], "a": [1.0, 2.0, 3.0], "y": labels})
    with pytest.raises(DataError, match=r"bank \(label column 'y'\): " + match):
        feature_columns(frame, active, LR)
