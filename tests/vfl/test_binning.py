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
from vfl.binning.model import bin_columns, counts_of
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


def _reference(frame: pd.DataFrame, y: np.ndarray, n_bins=10, method="quantile", min_size=50) -> dict:
    x = frame.to_numpy(float)
    out = {}
    for name, (edges, idx) in zip(frame.columns, bin_columns(x, n_bins, method, min_size)):
        counts = counts_of(idx, edges)
        events = np.bincount(idx, weights=y, minlength=len(counts))[:len(counts)]
        out[name] = (counts, events, *binlib.woe_iv(events, counts))
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
    edges, idx = bin_columns(values[:, None], 10, "quantile", 20)[0]
    counts = counts_of(idx, edges)
    assert counts.min() >= 20 and counts.sum() == len(values)      # the 2 missing rows joined a bin


def test_a_passive_refuses_bins_it_does_not_serve(tmp_path, small_keypair):
    guest, host = datasets.load_hetero("breast")
    with pytest.raises(ProtocolError, match="outside what this party serves"):
        _run(["bank", "p0"], {"bank": guest, "p0": host}, tmp_path, small_keypair[1], model={"n_bins": 500})
