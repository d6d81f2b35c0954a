"""Job requests come from another organisation and config files from a hand: whatever they
hold, parsing them raises only the engine's own, named errors — never a crash."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from parties.runtime.config import parse_config
from parties.runtime.errors import ConfigError
from vfl.errors import VFLError
from vfl.jobs.spec import PassiveRequest, parse_job

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                     st.text(max_size=12), st.binary(max_size=8))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) |
                       st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)
_GOOD = {"job": "j1", "model": "logistic_regression", "psi_private": False, "rounds": 3, "sections": {},
         "parties": {"insurer": {"name": "insurer", "alias": "c", "id_column": "id", "features": None}}}


def _mutations():
    keys = st.sampled_from([*_GOOD, "run", "parts", "extra"])
    return st.dictionaries(keys, _VALUES, max_size=4)


@settings(max_examples=400, deadline=None, database=None)
@given(_mutations(), st.booleans())
def test_any_job_request_is_parsed_or_refused_by_name(changes, drop):
    params = dict(_GOOD)
    for key, value in changes.items():
        if drop:
            params.pop(key, None)
        else:
            params[key] = value
    try:
        PassiveRequest.parse(params, "insurer")
    except VFLError:
        pass


@settings(max_examples=200, deadline=None, database=None)
@given(_VALUES)
def test_any_value_as_a_request_is_refused_by_name(value):
    try:
        PassiveRequest.parse(value, "insurer")
    except VFLError:
        pass


_CONFIG = {"name": "insurer", "listen": "tcp://127.0.0.1:7002", "data": {"c": "c.csv"}, "limits": {},
           "psi": {}, "peers": [{"name": "bank", "address": "tcp://127.0.0.1:7001"}]}


@settings(max_examples=400, deadline=None, database=None)
@given(st.dictionaries(st.sampled_from([*_CONFIG, "plugins", "share_error_details", "models_dir", "audit_log",
                                        "accept_jobs_from", "secret_key"]), _VALUES, max_size=4))
def test_any_config_is_loaded_or_refused_by_name(changes):
    raw = {**_CONFIG, **changes}
    try:
        parse_config(raw, base_dir="/nonexistent", insecure=True)
    except ConfigError:
        pass


@settings(max_examples=300, deadline=None, database=None)
@given(st.dictionaries(st.sampled_from(["job", "model", "evaluation", "psi", "parties", "privacy"]), _VALUES,
                       max_size=5))
def test_any_job_file_is_loaded_or_refused_by_name(raw):
    try:
        parse_job(raw)
    except VFLError:
        pass
