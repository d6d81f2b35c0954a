"""``vfl bench tables`` at a toy size: both modes run in their own process, give the same codes,
and the figures render."""
import argparse

from benchmarks import tables as bench
from parties.commands.bench import benchmark_parser


def test_whole_and_chunks_agree_and_render():
    result = bench.run(argparse.Namespace(rows=3000, columns=5, csv=None))
    assert result["same_codes"] and result["exact_edges"]
    for mode in ("whole", "chunks"):
        assert result[mode]["peak_rss_gb"] > 0 and result[mode]["seconds"] > 0
    assert result["memory_ratio"] == result["whole"]["peak_rss_gb"] / result["chunks"]["peak_rss_gb"]
    text = bench.render(result)
    assert "whole / chunks peak memory" in text and "same codes: True" in text
    parser, _ = benchmark_parser("tables")
    assert parser.parse_args(["--rows", "10", "--json"]).rows == 10
