"""PSI on DataFrames over the in-process transport (the same bodies run over processes in
tests/vfl/test_psi_processes.py)."""
import random
import time

import numpy as np
import pandas as pd
import pytest

from parties.transport.inprocess import InProcessNetwork
from vfl.errors import DataError, PeerFailedError
from vfl.psi import align, align_active, align_passive
from vfl.psi.ids import normalize_ids


def run_inprocess(frames: dict, id_columns: dict, *, active: str, **options) -> dict:
    net = InProcessNetwork(list(frames), timeout=20.0)
    roles = {}
    for name, df in frames.items():
        if name == active:
            roles[name] = lambda t, df=df, c=id_columns[name]: align_active(t, df, c, **options)
        else:
            roles[name] = lambda t, df=df, c=id_columns[name]: align_passive(t, df, c, active=active)
    return net.run(roles, timeout=60)


def mixed_tables(seed: int, sizes=(900, 700)):
    """Active ids as ints; passive ids as padded strings, floats and unicode - same customers."""
    rng = random.Random(seed)
    universe = rng.sample(range(10**12), 2 * max(sizes))
    a_ids = rng.sample(universe, sizes[0])
    b_ids = rng.sample(universe, sizes[1])
    active = pd.DataFrame({"id": a_ids + [f"ünï-{i}" for i in range(50)],
                           "label": rng.choices([0, 1], k=sizes[0] + 50)})
    shown = [f" {v} " if i % 3 == 0 else (float(v) if i % 3 == 1 else v) for i, v in enumerate(b_ids)]
    passive = pd.DataFrame({"cust": shown + [f"ünï-{i}" for i in range(0, 100, 2)], "x": np.arange(sizes[1] + 50)})
    return active, passive


def assert_aligned(results: dict, frames: dict, id_columns: dict, *, active: str):
    norm = {n: normalize_ids(r.frame, id_columns[n], n) for n, r in results.items()}
    expected = set.intersection(*(set(normalize_ids(f, id_columns[n], n)) for n, f in frames.items()))
    a = results[active]
    assert set(norm[active]) == expected and a.report.size == len(expected) == len(a.frame)
    for name, result in results.items():
        if name == active:
            continue
        picked = [norm[name][p] for p in a.positions]        # their row at each of our common rows
        assert picked == norm[active], name
        assert list(result.frame.index) == list(range(len(result.frame)))
        # other columns travel with their row
        original = frames[name].set_index(pd.Index(normalize_ids(frames[name], id_columns[name], name)))
        assert list(original.loc[norm[name]].iloc[:, -1]) == list(result.frame.iloc[:, -1])


@pytest.mark.parametrize("seed", [3, 4])
def test_two_parties_mixed_types_and_unicode(seed):
    a, b = mixed_tables(seed)
    frames, cols = {"bank": a, "shop": b}, {"bank": "id", "shop": "cust"}
    results = run_inprocess(frames, cols, active="bank", chunk_size=256)
    assert_aligned(results, frames, cols, active="bank")
    assert results["shop"].report.size == results["bank"].report.size > 25


def three_party_tables():
    a = pd.DataFrame({"id": range(0, 600), "y": 1})
    b = pd.DataFrame({"id": [f" {i}" for i in range(300, 900)], "b": range(600)})
    c = pd.DataFrame({"id": range(0, 900, 2), "c": range(450)})
    return {"a": a, "b": b, "c": c}, {"a": "id", "b": "id", "c": "id"}


def check_three_parties(results, frames, cols):
    assert_aligned(results, frames, cols, active="a")
    assert results["a"].report.matched == {"b": 300, "c": 300}
    for name in "bc":
        assert results[name].report.size == 150 == len(results[name].frame)
        assert results[name].report.matched is None


def private_tables():
    a = pd.DataFrame({"id": range(0, 400)})
    b = pd.DataFrame({"id": range(200, 700), "v": range(500)})
    c = pd.DataFrame({"id": range(0, 700, 2), "w": range(350)})
    return {"a": a, "b": b, "c": c}, {"a": "id", "b": "id", "c": "id"}


def check_private(results, frames, cols):
    assert_aligned(results, frames, cols, active="a")
    ra = results["a"]
    assert ra.report.private and ra.report.n_rows == 350 and ra.mask.sum() == ra.report.size == 100
    for name in "bc":
        rep = results[name].report
        assert rep.size is None and rep.n_rows == 350 == len(results[name].frame)
    assert sorted(results["c"].frame["w"]) == list(range(350))        # the smallest passive: every row


def test_three_parties_passives_see_only_the_global_rows():
    frames, cols = three_party_tables()
    check_three_parties(run_inprocess(frames, cols, active="a"), frames, cols)


def test_private_option_passives_learn_only_their_alignment():
    frames, cols = private_tables()
    check_private(run_inprocess(frames, cols, active="a", private=True), frames, cols)


def test_zero_overlap_is_a_reported_outcome():
    frames = {"a": pd.DataFrame({"id": range(100), "y": 0.5}), "b": pd.DataFrame({"k": range(500, 600)})}
    results = run_inprocess(frames, {"a": "id", "b": "k"}, active="a")
    for name, r in results.items():
        assert r.report.size == 0 and len(r.frame) == 0
    assert list(results["a"].frame.columns) == ["id", "y"]


def test_bad_passive_table_fails_fast_everywhere():
    frames = {"a": pd.DataFrame({"id": range(50)}), "b": pd.DataFrame({"id": [1, 2, 2]}),
              "c": pd.DataFrame({"id": range(50)})}
    net = InProcessNetwork(list(frames), timeout=20.0)
    errors = {}

    def role(name):
        def body(t):
            try:
                if name == "a":
                    return align_active(t, frames[name], "id")
                return align(t, frames[name], "id", role="passive", active="a")
            except Exception as exc:
                errors[name] = exc
                raise
        return body

    start = time.perf_counter()
    with pytest.raises(DataError, match="party 'b', id column 'id': 2 rows share an id"):
        net.run({n: role(n) for n in frames}, timeout=30)
    assert time.perf_counter() - start < 10                       # nobody waited for a timeout
    assert isinstance(errors["a"], PeerFailedError) and errors["a"].peer == "b"
    assert isinstance(errors["c"], PeerFailedError) and errors["c"].peer == "a"


def test_missing_id_column_at_the_active_is_named():
    frames = {"a": pd.DataFrame({"x": [1]}), "b": pd.DataFrame({"id": [1]})}
    with pytest.raises(DataError, match="party 'a', id column 'id': no such column"):
        run_inprocess(frames, {"a": "id", "b": "id"}, active="a")


def test_role_must_be_known():
    with pytest.raises(ValueError, match="role"):
        align(None, pd.DataFrame({"id": [1]}), "id", role="arbiter")


def test_report_and_audit_log_name_the_backend(tmp_path):
    frames = {"bank": pd.DataFrame({"id": range(50)}), "insurer": pd.DataFrame({"id": range(25, 80)})}
    net = InProcessNetwork(list(frames), timeout=20.0, audit_dir=str(tmp_path))
    results = net.run({"bank": lambda t: align_active(t, frames["bank"], "id"),
                       "insurer": lambda t: align_passive(t, frames["insurer"], "id", active="bank")}, timeout=60)
    from parties.runtime.audit import job_report
    from protocols.psi.group import backend
    for name, result in results.items():
        assert result.report.backend == backend() and backend().startswith("libsodium X25519 (PyNaCl ")
        report = job_report(tmp_path / f"{name}.audit.jsonl")
        assert report["events"] == [{"job": net.job, "event": "psi", "backend": backend()}]
        assert report["messages"] > 0          # events are not counted as messages
