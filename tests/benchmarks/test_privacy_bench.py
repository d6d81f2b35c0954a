"""``vfl bench privacy`` at a toy size: one seed per ε, the table has every figure and renders."""
import argparse

import pytest

from benchmarks import privacy as bench


def test_the_privacy_bench_measures_and_renders():
    args = argparse.Namespace(dataset="breast", epsilons="none,1", mechanism="randomized_response", seeds=1,
                              trees=1, depth=2, known=0.05)
    result = bench.run(args)
    plain, dp = result["table"]
    assert plain["epsilon"] is None and dp["epsilon"] == 1.0 and plain["model_auc_lost"] == 0
    assert result["defence"] == "labels"
    for row in (plain, dp):
        assert 0.5 < row["model_auc"] <= 1 and 0 < row["baseline_auc"] <= 1
        assert row["gain"] == row["attack_auc"] - row["baseline_auc"]
        assert row["runs"][0]["known_rows"] >= 2
    text = bench.render(result)
    assert "gain = attack − baseline" in text and "  none " in text


@pytest.mark.parametrize("attack,metric,epsilons,defence", [("lr_labels", "auc", "none,1", "labels"),
                                                             ("lr_features", "r2", "none,2", "features")])
def test_the_privacy_bench_runs_the_lr_attacks_and_plots(tmp_path, attack, metric, epsilons, defence):
    args = argparse.Namespace(dataset="breast", attack=attack, epsilons=epsilons, mechanism="randomized_response",
                              defence=defence,
                              seeds=1, epochs=2, batch_size=64, learning_rate=0.15, protocol="label_key", known=0.05,
                              plot=str(tmp_path / "gain.png"))
    result = bench.run(args)
    assert result["attack"] == attack and len(result["table"]) == len(epsilons.split(","))
    for row in result["table"]:
        assert 0.5 < row["model_auc"] <= 1 and row[f"baseline_{metric}"] <= 1 and row[f"attack_{metric}"] <= 1
        assert row["gain"] == row[f"attack_{metric}"] - row[f"baseline_{metric}"]
    assert result["table"][0]["runs"][0]["known_rows"] >= 2
    if defence == "features":
        assert result["mechanism"] == "feature noise" and "feature DP" in bench.render(result)
    assert (tmp_path / "gain.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = bench.render(result)
    assert "gain = attack − baseline" in text and str(tmp_path / "gain.png") in text
