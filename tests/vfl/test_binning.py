"""Hetero WOE/IV binning: every party's WOE and IV equal a centralized computation with the same
bins exactly (the counts are integers), 2 and 3 parties, with missing values; small bins merged."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from parties.transport.inprocess import InProcessNetwork
from vfl import datasets
from vfl.binning import bins as binlib
from vfl.binning.model import bin_index, fit_bins
from vfl.errors import ProtocolError
from vfl.family import PassiveCaps
from vfl.jobs import active, passive
from vfl.jobs.spec import PassiveRequest, parse_job

CAPS = PassiveCaps(max_rounds=1, allow_small_keys=True)


def _run(names, frames, tmp_path, key, model=None):
    raw = {"job": {"name": "bins", "model": "binning"}, "model": {"key_bits": 1024, **(model or {})},
           "parties": {n: {"role": "active" if i == 0 else "passive", "data": f"{n}.csv",
                           **({"label": "y"} if i == 0 else {})} for i, n in enumerate(names)}}
    spec = dataclasses.replace(parse_job(raw), output_dir=str(tmp_path))
    net = InProcessNetwork(names, timeout=60)
    roles = {names[0]: lambda t: active.train(t, spec, frames[names[0]], private_key=key, verbose=False)}
    for p in spec.passives:
        request = PassiveRequest.parse(spec.passive_request(), p.name)
        roles[p.name] = lambda t, r=request, n=p.name: passive.train(
            t, r, frames[n], active=names[0], model_path=tmp_path / f"{n}.json", caps=CAPS)
    out = net.run(roles)
    return out[names[0]].summary.figures, {n: json.loads((tmp_path / f"{n}.json").read_text()) for n in names[1:]}


def _reference(frame: pd.DataFrame, y: np.ndarray, n_bins=10, method="quantile", min_size=50, monotone=False) -> dict:
    """The centralized computation: the same rules on the joined table's columns."""
    bins = fit_bins(frame, n_bins, method, min_size)
    index = bin_index(frame, bins)
    out = {}
    for name, b in bins.items():
        counts = np.bincount(index[name], minlength=b.n_bins)
        events = np.bincount(index[name], weights=y, minlength=b.n_bins)
        if monotone:
            merge = binlib.monotone_groups(counts, events, b.ordered)
            counts, events = np.bincount(merge, counts), np.bincount(merge, events)
        out[name] = (counts.astype(int), events, *binlib.woe_iv(events, counts))
    return out


@pytest.mark.parametrize("n_passives", [1, 2])
def test_woe_and_iv_equal_a_centralized_computation(tmp_path, small_keypair, n_passives):
    guest, host = datasets.load_hetero("breast")
    host = host.sample(frac=1.0, random_state=3).reset_index(drop=True)
    host.loc[host.index[:40], host.columns[1]] = np.nan            # missing values: a bin of their own
    cols = [c for c in host.columns if c != "id"]
    frames = {"bank": guest}
    for i, part in enumerate(np.array_split(cols, n_passives)):
        frames[f"p{i}"] = host[["id", *part]]
    figures, parts = _run(list(frames), frames, tmp_path, small_keypair[1])
    joined = guest.merge(host, on="id", suffixes=("", "_h"))
    y = joined["y"].to_numpy()
    for i, part in enumerate(np.array_split(cols, n_passives)):
        ref = _reference(host.set_index("id").loc[joined["id"], list(part)].reset_index(drop=True), y)
        for j, name in enumerate(part):
            got = figures["bins"][f"p{i}:feature {j}"]
            counts, events, woe, iv = ref[name]
            assert got["rows"] == counts.tolist() and got["events"] == events.astype(int).tolist()
            assert np.allclose(got["woe"], np.round(woe, 6), atol=1e-6)
            table = {r["feature"]: r["iv"] for r in figures["iv"]}
            assert abs(table[f"p{i}:feature {j}"] - iv) < 1e-6
        assert parts[f"p{i}"]["woe"] == {}                          # not shared unless the job says so
    own = _reference(guest.set_index("id").loc[joined["id"]].drop(columns="y").reset_index(drop=True), y)
    assert figures["bins"]["bank:x0"]["rows"] == own["x0"][0].tolist()
    assert all(min(b["rows"]) >= 50 for b in figures["bins"].values())


def test_woe_is_sent_to_a_passive_only_when_the_job_shares_it(tmp_path, small_keypair):
    guest, host = datasets.load_hetero("breast")
    figures, parts = _run(["bank", "p0"], {"bank": guest, "p0": host}, tmp_path, small_keypair[1],
                          model={"share_woe": True, "n_bins": 5, "method": "equal_width"})
    woe = parts["p0"]["woe"]
    assert set(woe) == {c for c in host.columns if c != "id"}
    assert woe["x0"] == pytest.approx(figures["bins"]["p0:feature 0"]["woe"], abs=1e-6)


def test_small_bins_are_merged_before_anything_is_revealed():
    values = np.concatenate([np.zeros(3), np.arange(100.0), [np.nan] * 2])
    b = binlib.numeric_bins(values, 10, "quantile", 20)
    counts = np.bincount(b.assign(values), minlength=b.n_bins)
    assert counts.min() >= 20 and counts.sum() == len(values)      # the 2 missing rows joined a bin
    assert b.assign(np.array([np.nan]))[0] == b.largest_bin


def test_categories_get_a_bin_each_and_rare_or_unseen_ones_share_one():
    values = np.array(["a"] * 30 + ["b"] * 25 + ["c"] * 5 + ["d"] * 6 + [None] * 21, dtype=object)
    b = binlib.categorical_bins(values, 10)
    assert b.n_bins == 4                                           # a, b, other (c + d), missing
    assign = b.assign(np.array(["a", "b", "c", "d", "zz", None], dtype=object))
    assert assign.tolist() == [0, 1, 2, 2, 2, 3]
    assert b.describe() == ["'a'", "'b'", "'c' or 'd' or other", "missing"]
    again = binlib.ColumnBins.from_doc(json.loads(json.dumps(b.to_doc())))
    assert np.array_equal(again.assign(values), b.assign(values))
    few = binlib.categorical_bins(np.array(["a"] * 30 + ["c"] * 3 + [None] * 2, dtype=object), 10)
    assert few.n_bins == 1 and set(few.assign(np.array(["c", None, "new"], dtype=object))) == {0}


def test_monotone_merging_leaves_monotone_woe_and_keeps_the_missing_bin_apart():
    rng = np.random.default_rng(5)
    counts = rng.integers(50, 200, 12)
    events = np.minimum(counts, rng.integers(5, 60, 12))
    merge = binlib.monotone_groups(np.append(counts, 80), np.append(events, 70), 12)
    pooled_c, pooled_e = np.bincount(merge, np.append(counts, 80)), np.bincount(merge, np.append(events, 70))
    woe, _ = binlib.woe_iv(pooled_e, pooled_c)
    steps = np.diff(woe[:-1])
    assert np.all(steps >= 0) or np.all(steps <= 0)
    assert merge[-1] == merge[:-1].max() + 1 and pooled_c[-1] == 80     # missing: still its own bin
    assert np.all(np.diff(merge[:-1]) >= 0) and np.all(np.diff(merge[:-1]) <= 1)   # adjacent bins only


def test_monotone_merging_and_text_columns_equal_the_centralized_computation(tmp_path, small_keypair):
    guest, host = datasets.load_hetero("breast")
    host = host.copy()
    host["grade"] = np.where(host["x3"] > 0.5, "high", np.where(host["x3"] > -0.5, "mid", "low"))
    host.loc[host.index[:7], "grade"] = "rare"
    figures, parts = _run(["bank", "p0"], {"bank": guest, "p0": host[["id", "x0", "x1", "grade"]]}, tmp_path,
                          small_keypair[1], model={"monotone": True, "share_woe": True, "min_bin_size": 20})
    joined = guest.merge(host, on="id", suffixes=("_guest", ""))
    ref = _reference(joined[["x0", "x1", "grade"]], joined["y"].to_numpy(), min_size=20, monotone=True)
    for j, name in enumerate(["x0", "x1", "grade"]):
        got = figures["bins"][f"p0:feature {j}"]
        assert got["rows"] == ref[name][0].tolist() and np.allclose(got["woe"], ref[name][2], atol=1e-6)
        assert parts["p0"]["woe"][name] == pytest.approx(ref[name][2], abs=1e-6)
        assert parts["p0"]["bins"][name]["n_bins"] == len(ref[name][0])
    woe = np.asarray(figures["bins"]["p0:feature 0"]["woe"])
    assert np.all(np.diff(woe) >= 0) or np.all(np.diff(woe) <= 0)
    assert parts["p0"]["bins"]["grade"]["kind"] == "categorical"


def test_a_passive_refuses_bins_it_does_not_serve(tmp_path, small_keypair):
    guest, host = datasets.load_hetero("breast")
    with pytest.raises(ProtocolError, match="outside what this party serves"):
        _run(["bank", "p0"], {"bank": guest, "p0": host}, tmp_path, small_keypair[1], model={"n_bins": 500})


def test_a_column_of_few_values_among_many_missing_is_one_bin_and_the_job_runs(tmp_path, small_keypair):
    values = np.r_[np.arange(30.0), [np.nan] * 370]
    assert binlib.numeric_bins(values, 10, "quantile", 50).n_bins == 1
    text = np.array(["a"] * 10 + ["b"] * 5 + [None] * 385, dtype=object)
    assert np.bincount(binlib.categorical_bins(text, 50).assign(text)).tolist() == [400]
    guest, host = datasets.load_hetero("breast")
    host = host[["id", "x0"]].copy()
    host.loc[host.index[40:], "x0"] = np.nan                    # 40 values, 529 missing
    figures, _ = _run(["bank", "p0"], {"bank": guest, "p0": host}, tmp_path, small_keypair[1])
    assert figures["bins"]["p0:feature 0"]["rows"] == [569]


@pytest.mark.parametrize("case", ["float ordered", "huge event count"])
def test_the_active_refuses_malformed_bin_sums_by_name(small_keypair, case):
    from protocols.paillier import EncryptedVector
    from vfl.binning.messages import BinningSetup, BinSums, EncryptedLabels
    from vfl.binning.model import ActiveBinning
    sk, n = small_keypair[1], 400
    rng = np.random.default_rng(0)
    y, x = rng.integers(0, 2, n), pd.DataFrame({"a0": rng.normal(size=n)})

    def passive(t):
        setup, labels = t.recv("bank", BinningSetup), t.recv("bank", EncryptedLabels).labels
        if case == "float ordered":
            sums = EncryptedVector.concat([labels[i * 100:(i + 1) * 100].sum() for i in range(4)])
            t.send("bank", BinSums(np.array([4]), np.array([3.5]), np.array([100] * 4), sums))
        else:
            big = EncryptedVector.encrypt(setup.public_key, [2**70], frac_bits=0, int_bits=71)
            t.send("bank", BinSums(np.array([2]), np.array([2]), np.array([100, 300]),
                                   EncryptedVector.concat([big, labels[100:].sum()])))

    net = InProcessNetwork(["bank", "p0"], timeout=20)
    with pytest.raises(ProtocolError, match="p0 sent"):
        net.run({"bank": lambda t: ActiveBinning(min_bin_size=50, monotone=True, key_bits=1024, verbose=False).fit(
            x, y, transport=t, passives=["p0"], private_key=sk), "p0": passive})
