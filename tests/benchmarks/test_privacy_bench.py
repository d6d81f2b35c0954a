"""``vfl bench privacy`` at a toy size: one seed per ε, the table has every figure and renders."""
import argparse

from benchmarks import privacy as bench


def test_the_privacy_bench_measures_and_renders():
    args = argparse.Namespace(dataset="breast", epsilons="none,1", mechanism="randomized_response", seeds=1,
                              trees=1, depth=2, known=0.05)
    result = bench.run(args)
    plain, dp = result["table"]
    assert plain["label_epsilon"] is None and dp["label_epsilon"] == 1.0 and plain["model_auc_lost"] == 0
    for row in (plain, dp):
        assert 0.5 < row["model_auc"] <= 1 and 0 < row["baseline_auc"] <= 1
        assert row["gain"] == row["attack_auc"] - row["baseline_auc"]
        assert row["runs"][0]["known_rows"] >= 2
    text = bench.render(result)
    assert "gain = attack − baseline" in text and "  none " in text
