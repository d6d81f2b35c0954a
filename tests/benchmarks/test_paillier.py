"""The benchmark runs end to end and its ratios are computed from what it measured."""
from __future__ import annotations

import json

import pytest

from parties.commands.cli import main


@pytest.mark.timeout(180)
def test_bench_paillier_quick_json(capsys, monkeypatch):
    monkeypatch.setenv("VFL_WORKERS", "1")
    assert main(["bench", "paillier", "--quick", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["key_bits"] == 2048 and list(result["ours"]) == ["1"]
    ours, phe, ratios = result["ours"]["1"], result["phe"], result["ratios"]["1"]
    for key, phe_key in [("encrypt_keyholder", "encrypt"), ("decrypt", "decrypt"), ("mul_scalar", "mul_scalar")]:
        assert ours[key] > 0 and phe[phe_key] > 0
        assert ratios[key] == pytest.approx(ours[key] / phe[phe_key])
    assert ratios["xtd"] == pytest.approx(phe["xtd_seconds"] / ours["xtd_seconds"])
    assert result["modmul_per_s"] > 0 and ours["slots_per_ciphertext"] > 1


def test_bench_table_renders(capsys, monkeypatch):
    from benchmarks import paillier
    fake = {"key_bits": 2048, "machine": {}, "sizes": paillier.SIZES["quick"], "modmul_per_s": 1.0,
            "setup": {"keygen_s": 0.1},
            "phe": {"encrypt": 1, "decrypt": 1, "add": 1, "mul_scalar": 1, "xtd_seconds": 2.0, "xtd_measured_rows": 4},
            "ours": {"1": {k: 2.0 for _, k, _ in paillier.ROWS} | {"workers": 1, "xtd_seconds": 1.0,
                                                                  "slots_per_ciphertext": 3}}}
    fake["ratios"] = paillier.ratios(fake)
    text = paillier.render(fake)
    assert "2.0x" in text and "scaled linearly" in text
