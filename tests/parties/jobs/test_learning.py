"""A passive's config, not the job, decides which of its columns and files a job may use."""
from __future__ import annotations

import pandas as pd
import pytest

from parties.jobs import JobContext
from parties.jobs.learning import check_columns, model_path
from parties.runtime.config import parse_config
from parties.runtime.errors import ConfigError, JobRejectedError
from vfl.errors import DataError
from vfl.jobs.spec import PartySpec

FRAME = pd.DataFrame({"cid": [1, 2], "age": [30, 40], "premium": [1.0, 2.0], "claims": [0, 1]})


class _T:
    party = "insurer"


def _ctx(policies=None):
    return JobContext(_T(), "bank", {}, {"customers": "/x.csv"}, 10, 5.0, "/models", policies or {})


def _mine(**kw):
    return PartySpec.from_params("insurer", {"alias": "customers", "id_column": "cid", "features": None, **kw})


def test_defaults_allow_two_or_more_features_but_never_the_id():
    check_columns(_ctx(), _mine(), FRAME)
    with pytest.raises(DataError, match="'cid' is the id or label column, not a feature"):
        check_columns(_ctx(), _mine(features=["cid", "age"]), FRAME)
    with pytest.raises(JobRejectedError, match="at least 2"):
        check_columns(_ctx(), _mine(features=["age"]), FRAME)
    with pytest.raises(DataError, match="listed more than once"):      # not two features
        check_columns(_ctx(), _mine(features=["age", "age"]), FRAME)


def test_policy_pins_the_id_column_and_the_offered_features():
    policy = {"customers": {"id_column": "cid", "features": ["age", "premium"], "min_features": 2}}
    check_columns(_ctx(policy), _mine(features=["age", "premium"]), FRAME)
    with pytest.raises(JobRejectedError, match="does not offer columns \\['claims'\\]"):
        check_columns(_ctx(policy), _mine(features=["age", "claims"]), FRAME)
    with pytest.raises(JobRejectedError, match="matches customers on 'cid' only"):
        check_columns(_ctx(policy), _mine(id_column="age", features=["premium", "claims"]), FRAME)


def test_model_parts_are_kept_per_initiator():
    assert model_path(_ctx(), "job1", "run1") == "/models/bank/job1/run1/insurer.json"
    assert model_path(_ctx(), "job1", None) == "/models/bank/job1/insurer.json"      # before runs were recorded


def test_config_policies_parse_and_are_checked(tmp_path):
    raw = {"name": "insurer", "listen": "tcp://127.0.0.1:7000",
           "data": {"customers": "c.csv", "policies": {"customers": {"id_column": "cid", "features": ["age"]}}}}
    config = parse_config(raw, base_dir=str(tmp_path), insecure=True)
    assert config.data_policies["customers"]["min_features"] == 2 and set(config.data) == {"customers"}
    bad = {**raw, "data": {"customers": "c.csv", "policies": {"other": {}}}}
    with pytest.raises(ConfigError, match="unknown aliases"):
        parse_config(bad, base_dir=str(tmp_path), insecure=True)
    bad = {**raw, "data": {"customers": "c.csv", "policies": {"customers": {"colour": "red"}}}}
    with pytest.raises(ConfigError, match="keys among"):
        parse_config(bad, base_dir=str(tmp_path), insecure=True)


def test_the_policy_is_checked_before_the_table_so_withheld_columns_stay_unknown():
    policy = {"customers": {"id_column": "cid", "features": ["age", "premium"], "min_features": 2}}
    for asked in (["age", "salary"], ["age", "claims"]):      # absent, and present but withheld: same answer
        with pytest.raises(JobRejectedError, match=r"does not offer columns \['(salary|claims)'\]$"):
            check_columns(_ctx(policy), _mine(features=asked), FRAME)
    settled = check_columns(_ctx(policy), _mine(), FRAME)      # no feature list: what the policy offers
    assert settled.features == ("age", "premium")
    assert check_columns(_ctx(), _mine(), FRAME).features is None    # no policy: every column but the id
