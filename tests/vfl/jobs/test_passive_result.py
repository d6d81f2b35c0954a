"""What a passive reports back when its part of a job ends: checked as coming from another organisation."""
from __future__ import annotations

import pytest

from vfl.errors import ProtocolError
from vfl.jobs.results import PassiveResult

DIGEST = "ab" * 32


def test_a_passive_result_with_figures_round_trips():
    figures = {"phases": {"seconds": {"packing": 1.5, "waiting": 0.25}, "counts": {"packing": 12}}}
    result = PassiveResult(rows=10, features=["x0"], part_digest=DIGEST, figures=figures)
    assert PassiveResult.from_wire("insurer", result.to_wire()) == result
    plain = PassiveResult(rows=10, features=["x0"])
    assert "figures" not in plain.to_wire() and PassiveResult.from_wire("insurer", plain.to_wire()) == plain


@pytest.mark.parametrize("figures", [
    {"phases": "fast"},                                        # text where numbers go
    {"phases": {"seconds": {"packing": [1, 2]}}},              # a list
    {"a": {"b": {"c": {"d": 1}}}},                             # deeper than 3 tables
    {"phases": {f"k{i}": i for i in range(2000)}},             # more than 1000 values
    {"x" * 65: 1},                                             # a name longer than 64 characters
    7,                                                         # not a table
])
def test_a_passive_result_with_malformed_figures_is_refused(figures):
    wire = {"rows": 10, "features": ["x0"], "part_digest": DIGEST, "figures": figures}
    with pytest.raises(ProtocolError, match="insurer reported its part"):
        PassiveResult.from_wire("insurer", wire)
