"""``vfl bench mpc``'s OT-extension row at a toy size: measured, checked (a·b = c) and rendered."""
from benchmarks import mpc as bench


def test_the_ot_triple_row_measures_and_renders(small_keypair):
    row = bench.ot_triples(300, {"p0": small_keypair[1], "p1": small_keypair[1]})
    assert row["count"] == 300 and row["per_s"] > 0 and 2500 < row["bytes_per_triple"] < 4000
    result = {"key_bits": 2048, "elementwise": {"phe_per_s": 10.0, "ours_per_s": 100.0, "ratio": 10.0,
                                                 "phe_measured": 6},
              "matrix": {"shape": [4, 2, 1], "ours_s": 1.0, "phe_s": 2.0, "ratio": 2.0, "phe_measured_rows": 2},
              "ot": {**row, "ratio_to_phe": row["per_s"] / 10, "ratio_to_paillier": row["per_s"] / 100,
                     "matrix_s": 0.5, "matrix_ratio_to_phe": 4.0},
              "online_mults_per_s": 1e6, "anchors": []}
    text = bench.render(result)
    assert "KiB per triple cross" in text and "matrix triple 4x2 by 2x1, OT extension" in text


def test_the_sslr_row_trains_and_renders():
    row = bench.sslr_fit("breast", iterations=3, alpha=1e-2)
    assert row["rows"] == 569 and row["auc"] > 0.95
    assert row["loss"] >= row["sklearn_loss"] - 1e-6                       # never below the optimum
    assert row["offline_s"] > 0 and row["setup_s"] > 0 and row["online_s_per_iteration"] > 0
    result = {"key_bits": 2048, "elementwise": {"phe_per_s": 10.0, "ours_per_s": 100.0, "ratio": 10.0,
                                                 "phe_measured": 6},
              "matrix": {"shape": [4, 2, 1], "ours_s": 1.0, "phe_s": 2.0, "ratio": 2.0, "phe_measured_rows": 2},
              "online_mults_per_s": 1e6, "anchors": [], "sslr": row}
    text = bench.render(result)
    assert "SS logistic regression, breast" in text and "s per iteration" in text
