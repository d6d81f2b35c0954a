"""The SecureBoost passive's label-inference attack: it finds a leak where one is known (the
passive's own columns are noise, the partitions are not), and label DP shrinks it."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from jobs.test_flow import run_training

from vfl.attacks.secureboost import label_inference, node_codes
from vfl.jobs.spec import parse_job

SBT = {
    "job": {"name": "attack", "model": "secureboost"},
    "evaluation": {"test_size": 0.2, "seed": 1},
    "model": {"n_estimators": 3, "max_depth": 3, "random_state": 0},
    "parties": {"bank": {"role": "active", "data": "g.csv", "label": "y"},
                "lab": {"role": "passive", "data": "h.csv", "alias": "lab"}},
}


def _tables(n=800, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] - x[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(int)
    ids = [f"c{i}" for i in range(n)]
    guest = pd.DataFrame({"id": ids, "a0": x[:, 0], "a1": x[:, 1], "a2": x[:, 2], "y": y})
    host = pd.DataFrame({"id": ids, **{f"p{j}": rng.normal(size=n) for j in range(3)}})    # noise only
    return guest, host


def _attack(tmp_path, key, privacy=None, seed=0):
    guest, host = _tables()
    raw = {**SBT, **({"privacy": privacy} if privacy else {})}
    spec = dataclasses.replace(parse_job(raw), output_dir=str(tmp_path))
    net, out = run_training(spec, {"bank": guest, "lab": host}, tmp_path, key)
    ids = out["bank"].train_ids
    own = host.set_index("id").loc[ids, ["p0", "p1", "p2"]]
    y = guest.set_index("id").loc[ids, "y"]
    return label_inference(net["lab"].received, own, y, known_share=0.02, seed=seed), out["bank"]


def test_the_attack_finds_the_leak_of_the_partitions_and_label_dp_shrinks_it(tmp_path, small_keypair):
    plain, _ = _attack(tmp_path / "plain", small_keypair[1])
    assert abs(plain["baseline_auc"] - 0.5) < 0.1                 # its own columns say nothing
    assert plain["attack_auc"] > 0.85 and plain["gain"] > 0.3     # the partitions say a lot
    noisy, result = _attack(tmp_path / "dp", small_keypair[1], {"label_epsilon": 0.1})
    assert result.privacy["label_epsilon"] == 0.1
    assert noisy["attack_auc"] < plain["attack_auc"] - 0.1


def test_node_codes_one_hot_every_tree_and_depth():
    from vfl.secureboost import messages as msg
    m1 = msg.Nodes(tree=0, depth=0, node_ids=np.array([0]), node_of_row=np.zeros(4, np.int32))
    m2 = msg.Nodes(tree=0, depth=1, node_ids=np.array([1, 2]), node_of_row=np.array([1, 2, -1, 1], np.int32))
    codes = node_codes([("bank", m1), ("bank", "other"), ("bank", m2)]).toarray()
    np.testing.assert_array_equal(codes, [[1, 1, 0], [1, 0, 1], [1, 0, 0], [1, 1, 0]])


def test_what_the_partitions_add_beyond_the_passive_s_own_splits(tmp_path, small_keypair):
    """Labels that follow |p0| > 0.8, a column of the passive's: a linear model of its columns
    cannot see it, its own splits (p0 ≤ −0.8, p0 ≤ 0.8) can for any customer. The partitions'
    gain over the linear baseline is large; over the splits it is small — the population
    pattern, not these rows' labels."""
    from vfl import registry
    rng = np.random.default_rng(3)
    n = 800
    p = rng.normal(size=(n, 3))
    y = (np.abs(p[:, 0]) > 0.8).astype(int)
    ids = [f"c{i}" for i in range(n)]
    guest = pd.DataFrame({"id": ids, "a0": rng.normal(size=n), "a1": rng.normal(size=n), "y": y})
    host = pd.DataFrame({"id": ids, **{f"p{j}": p[:, j] for j in range(3)}})
    spec = dataclasses.replace(parse_job(SBT), output_dir=str(tmp_path))
    net, out = run_training(spec, {"bank": guest, "lab": host}, tmp_path, small_keypair[1])
    lookup = registry.family("secureboost").load_passive(tmp_path / "model" / "lab.json").lookup_
    splits = list(lookup.values())
    assert splits and all(f == 0 for f, _, _ in splits)                # the trees split on p0 only
    train = out["bank"].train_ids
    result = label_inference(net["lab"].received, host.set_index("id").loc[train, ["p0", "p1", "p2"]],
                             guest.set_index("id").loc[train, "y"], known_share=0.05, seed=0, own_splits=splits)
    assert result["gain"] > 0.25                                        # beyond a linear model of its columns
    assert result["splits_auc"] > 0.9 and abs(result["gain_over_splits"]) < 0.05
