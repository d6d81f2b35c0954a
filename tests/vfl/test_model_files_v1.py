"""Version-1 model files written before the model-family interface still load and score the same.

tests/vfl/data/v1_models/ holds the files of a 2-epoch LR and a 2-tree SecureBoost model trained on
the bundled breast split by the engine at commit 887a068 (before the interface), with the scores
that engine gave the first 50 rows.
"""
from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from parties.transport.inprocess import InProcessNetwork
from vfl import datasets, registry

DATA = pathlib.Path(__file__).resolve().parent / "data" / "v1_models"


@pytest.mark.parametrize("prefix, model", [("lr", "logistic_regression"), ("sbt", "secureboost")])
def test_v1_files_load_and_score_as_before(prefix, model):
    family = registry.family(model)
    bank, lab = family.load_active(DATA / f"{prefix}_bank.json"), family.load_passive(DATA / f"{prefix}_lab.json")
    guest, host = datasets.load_hetero("breast")
    assert bank.feature_names_in_ == [c for c in guest.columns if c not in ("id", "y")]
    assert lab.feature_names_in_ == [c for c in host.columns if c != "id"]
    net = InProcessNetwork(["bank", "lab"], timeout=30)
    rows = guest.head(50), host.head(50)        # the same 50 customers, in the same order
    out = net.run({"bank": lambda t: bank.decision_function(rows[0], transport=t, passives=["lab"]),
                   "lab": lambda t: lab.serve_scores(rows[1], transport=t, active="bank")})
    expected = json.loads((DATA / f"{prefix}_scores.json").read_text())
    np.testing.assert_allclose(out["bank"], expected, rtol=0, atol=1e-12)
