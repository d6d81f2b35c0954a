"""``vfl bench psi`` at toy sizes: the figures exist, agree and render; the parser is wired."""
import argparse

import pytest

from benchmarks import psi as bench
from parties.commands.bench import benchmark_parser
from parties.commands.cli import build_parser


def args(**kw):
    base = dict(n=400, e2e_n=0, repeats=1, no_baseline=False, json=False)
    return argparse.Namespace(**{**base, **kw})


def test_make_sets_share_half():
    a, b = bench.make_sets(1001)
    assert len(a) == len(set(a)) == len(b) == len(set(b)) == 1001
    assert len(set(a) & set(b)) == 500


def test_side_by_side_run_and_render():
    pytest.importorskip("private_set_intersection")
    result = bench.run(args())
    assert result["agree"] and result["ours"]["size"] == result["openmined"]["size"] == 200
    assert result["ratio"] == pytest.approx(result["openmined"]["seconds"] / result["ours"]["seconds"])
    assert result["primitives"]["x25519_libsodium_per_s"] > 0
    assert result["backend"].startswith("libsodium X25519 (PyNaCl ")
    text = bench.render(result)
    assert "ratio (openmined time / ours)" in text and "ids/s per core" in text
    assert f"backend: {result['backend']}" in text


def test_render_without_baseline():
    result = bench.run(args(n=100, no_baseline=True))
    assert "openmined" not in result and result["agree"]
    assert "ratio" not in bench.render(result)


def test_cli_has_psi_bench():
    parsed = build_parser().parse_args(["bench", "psi", "--n", "10", "--e2e-n", "1000000", "--json"])
    assert parsed.bench == "psi" and parsed.options == ["--n", "10", "--e2e-n", "1000000", "--json"]
    options = benchmark_parser("psi")[0].parse_args(parsed.options)
    assert (options.n, options.e2e_n, options.json) == (10, 1000000, True)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_end_to_end_over_processes_reports_wall_time():
    result = bench.run(args(n=50, e2e_n=3000, no_baseline=True))
    e2e = result["e2e"]
    assert "error" not in e2e, e2e
    assert e2e["size"] == e2e["expected"] == 1500 and e2e["seconds"] > 0
    assert e2e["passive"]["size"] == 1500
    assert "two party processes over ZeroMQ" in bench.render(result)


def test_interleaved_rounds_rotate_and_keep_every_result():
    order, sizes = [], iter([5, 5, 5, 5, 5, 4])          # side b's last round disagrees

    def side(name):
        def run():
            order.append(name)
            return next(sizes)
        return run

    best = bench._interleaved_best({"a": side("a"), "b": side("b")}, 3)
    assert order == ["a", "b", "b", "a", "a", "b"]
    assert best["a"][1] == [5, 5, 5] and best["b"][1] == [5, 5, 4]
    assert all(secs >= 0 for secs, _ in best.values())
