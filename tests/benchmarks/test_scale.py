"""``vfl bench scale`` at toy sizes: every configuration gives the same results and the table renders."""
import argparse

import pytest

pytest.importorskip("distributed")

from benchmarks import scale as bench  # noqa: E402
from parties.commands.bench import benchmark_parser  # noqa: E402
from protocols import _workers  # noqa: E402


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_local_pool_and_clusters_agree_and_render():
    result = bench.run(argparse.Namespace(rounds=1, scale=0.01))
    assert result["configs"][1:] == ["Dask, 1 worker", "Dask, 2 workers"]
    assert [row["work"] for row in result["table"]] == ["encrypt", "X.T @ [[d]]", "SecureBoost tree", "PSI"]
    assert all(row["same_result"] for row in result["table"])
    assert all(0 < v < 1 for v in result["overhead_seconds_per_piece"].values())
    assert "per-piece overhead" in bench.render(result)
    assert _workers.installed_backend() is None            # nothing left installed


def test_the_parser_is_wired():
    parser, module = benchmark_parser("scale")
    assert module is bench and parser.parse_args(["--scale", "0.1", "--rounds", "2"]).rounds == 2
