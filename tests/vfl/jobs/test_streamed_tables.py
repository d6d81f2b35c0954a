"""Tables read a chunk at a time (vfl.jobs.data.CsvTable): the same rows, codes, edges and
trees as the table read whole; bad input named before the PSI; a file that changes refused."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from sbt_reference import federated_tree, fit_federated, make_data, predict_federated

from vfl import registry
from vfl.checkpoint import table_digest
from vfl.errors import DataError
from vfl.jobs.data import CsvTable, feature_columns, open_table, read_table
from vfl.jobs.spec import PartySpec
from vfl.secureboost.binning import apply_edges, bin_blocks, bin_columns, quantile_edges

SBT = registry.family("secureboost")


def _write(path, x, ids, names=None) -> list[str]:
    names = names or [f"f{i}" for i in range(x.shape[1])]
    frame = pd.DataFrame(x, columns=names)
    frame.insert(0, "cid", ids)
    frame.to_csv(path, index=False)
    return names


def _table(path, features, chunk_rows=37, allow_nan=True):
    return CsvTable(path, "insurer", "cid", features, allow_nan=allow_nan, chunk_rows=chunk_rows)


def test_rows_in_any_order_equal_the_table_read_whole(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 4)) * 1e4
    x[rng.random(x.shape) < 0.1] = np.nan
    ids = [f"{i:05d}" for i in rng.permutation(500)]          # text ids with leading zeros
    names = _write(tmp_path / "t.csv", x, ids)
    table = _table(tmp_path / "t.csv", names)
    whole = read_table(tmp_path / "t.csv", "insurer", "cid")
    assert table.ids["cid"].tolist() == whole["cid"].tolist() and len(table) == 500
    rows = rng.permutation(500)[:321]
    view = table.rows(rows)
    np.testing.assert_array_equal(view.to_numpy(), whole.iloc[rows][names].to_numpy(float))
    narrow = view.iloc[np.arange(10, 50)][["f3", "f1"]]
    np.testing.assert_array_equal(narrow.to_numpy(), whole.iloc[rows[10:50]][["f3", "f1"]].to_numpy(float))
    assert narrow.shape == (40, 2)
    seen = np.concatenate([index for index, _ in view.blocks()])
    assert sorted(seen.tolist()) == list(range(321))           # each row of the view exactly once


@pytest.mark.parametrize("chunk_rows", [1, 37, 100_000])
def test_streamed_binning_equals_binning_in_memory(tmp_path, chunk_rows):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 5))
    x[:, 1] = np.round(x[:, 1])                                # few distinct values
    x[rng.random(x.shape) < 0.05] = np.nan
    names = _write(tmp_path / "t.csv", x, [f"c{i}" for i in range(400)])
    rows = rng.permutation(400)[:300]
    view = _table(tmp_path / "t.csv", names, chunk_rows=chunk_rows).rows(rows)
    codes, edges = bin_blocks(view, 16)
    expected_codes, expected_edges = bin_columns(view.to_numpy(), 16)
    np.testing.assert_array_equal(codes, expected_codes)
    assert codes.dtype == np.int8
    for e, f in zip(edges, expected_edges):
        np.testing.assert_array_equal(e, f)


def test_a_table_too_big_for_the_budget_takes_its_edges_from_a_sample(tmp_path):
    rng = np.random.default_rng(7)
    x = rng.exponential(size=(3000, 2))
    names = _write(tmp_path / "t.csv", x, [f"c{i}" for i in range(3000)])
    view = _table(tmp_path / "t.csv", names, chunk_rows=500).rows(np.arange(3000))
    codes, edges = bin_blocks(view, 8, max_values=1500)         # every 4th row
    whole = view.to_numpy()
    for f in range(2):
        sampled = quantile_edges(whole[::4, f], 8)
        np.testing.assert_array_equal(edges[f], sampled)
        np.testing.assert_array_equal(codes[:, f], apply_edges(whole[:, f], sampled))
        share = np.searchsorted(np.sort(whole[:, f]), edges[f]) / 3000     # each edge's rank in the full column
        assert np.abs(share - np.arange(1, 8) / 8).max() < 0.03            # close to the exact quantiles


def test_trees_from_a_streamed_passive_equal_trees_from_its_frame(tmp_path, small_ou_keypair):
    """The passive's part read a chunk at a time (its file in another row order): the same
    trees, thresholds and predictions as from the same part in memory."""
    parts, y = make_data(n=240, n_features=(3, 4))
    perm = np.random.default_rng(1).permutation(240)          # file row j holds sample perm[j]
    names = _write(tmp_path / "p.csv", parts[1][perm], [f"id{i}" for i in perm])
    streamed = _table(tmp_path / "p.csv", names, chunk_rows=50).rows(np.argsort(perm))
    runs = {}
    for label, passive_part in (("memory", pd.DataFrame(parts[1], columns=names)), ("streamed", streamed)):
        net, active, passives = fit_federated([parts[0], passive_part], y, small_ou_keypair[1], n_estimators=2)
        trees = [federated_tree(active, passives, t) for t in range(len(active.trees_))]
        runs[label] = trees, predict_federated(net, active, passives, [parts[0], passive_part]), passives[0]
    assert runs["streamed"][0] == runs["memory"][0]
    np.testing.assert_array_equal(runs["streamed"][1], runs["memory"][1])
    reordered = predict_federated(net, active, passives, [parts[0], streamed[names[::-1]]])    # columns by name
    np.testing.assert_array_equal(reordered, runs["memory"][1])
    assert runs["streamed"][2].feature_names_in_ == names
    assert any(split[1] == 1 for tree in runs["streamed"][0] for split in tree.values() if split[0] == "split")


def test_bad_input_is_named_when_the_table_is_opened(tmp_path):
    frame = pd.DataFrame({"cid": [f"c{i}" for i in range(100)], "a": np.arange(100.0), "b": np.arange(100.0)})
    frame["b"] = frame["b"].astype(object)
    frame.loc[83, "b"] = "n/a?"                                  # text in a late chunk only
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match=r"insurer: feature column 'b' is not numeric"):
        _table(tmp_path / "t.csv", ["a", "b"], chunk_rows=10)
    frame.loc[83, "b"] = "inf"
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match=r"feature column 'b' has infinite values"):
        _table(tmp_path / "t.csv", ["a", "b"], chunk_rows=10)
    frame.loc[83, "b"] = ""
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match=r"feature column 'b' has missing values"):
        _table(tmp_path / "t.csv", ["a", "b"], chunk_rows=10, allow_nan=False)
    party = PartySpec("insurer", "passive", None, "t", "cid", None, ("a", "zz"))
    with pytest.raises(DataError, match=r"feature columns \['zz'\] are not in its table"):
        open_table(tmp_path / "t.csv", party, SBT)
    (tmp_path / "h.csv").write_text("cid,a,b\n")
    with pytest.raises(DataError, match="header but no rows"):
        _table(tmp_path / "h.csv", ["a", "b"])


def test_a_file_that_changes_under_a_job_is_refused(tmp_path):
    x = np.arange(60.0).reshape(30, 2)
    names = _write(tmp_path / "t.csv", x, [f"c{i}" for i in range(30)])
    table = _table(tmp_path / "t.csv", names, chunk_rows=7)
    digest = table_digest(table)
    assert digest == table_digest(_table(tmp_path / "t.csv", names)) and digest.startswith("file:")
    assert feature_columns(table, PartySpec("insurer", "passive", None, "t", "cid", None, None), SBT) == names
    _write(tmp_path / "t.csv", x + 1, [f"c{i}" for i in range(30)])
    os.utime(tmp_path / "t.csv", ns=(1, 1))
    with pytest.raises(DataError, match="changed while a job was reading it"):
        table.rows(np.arange(30)).to_numpy()


@pytest.mark.parametrize("bucket_rows", [3, 1_000_000])
def test_rows_written_in_a_given_order_are_the_files_own(tmp_path, bucket_rows):
    """A PSI's output from a table it never held: the chosen rows, in the PSI's order, as the
    file's text (ids with leading zeros, quoted commas, empty cells kept)."""
    frame = pd.DataFrame({"cid": [f"{i:04d}" for i in range(40)], "a": np.arange(40) * 1.5,
                          "note": [f'say "{i}", then' if i % 3 else "" for i in range(40)]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    table = CsvTable(tmp_path / "t.csv", "insurer", "cid", [], allow_nan=True, chunk_rows=7)
    rows = np.random.default_rng(2).permutation(40)[:25]
    table.write_rows(rows, tmp_path / "out.csv", bucket_rows=bucket_rows)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    expected = pd.read_csv(tmp_path / "t.csv", dtype=str, keep_default_na=False).iloc[rows].reset_index(drop=True)
    pd.testing.assert_frame_equal(out, expected)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("vfl-rows-")]     # the spill is gone
