"""The two ledgers of what a party lets its data be used for: ε spent of each dataset's labels,
and rows each peer had it score. In process; over real processes in
tests/parties/jobs/test_budgets_processes.py."""
from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from parties.runtime import budgets
from parties.runtime.budgets import BudgetError, LabelLedger, QueryLedger, parse_privacy_terms, parse_query_terms
from parties.runtime.config import ConfigError, parse_config
from vfl.privacy import LabelPrivacy, compose


def _resolve(tmp_path):
    return lambda p: str(tmp_path / p)


def _labels(tmp_path, budget=None, delta=0.0):
    data = {"customers": str(tmp_path / "customers.csv"), "other": str(tmp_path / "other.csv")}
    raw = {"delta": delta, **({"label_epsilon_budget": {"customers": budget}} if budget is not None else {})}
    return LabelLedger(parse_privacy_terms(raw, _resolve(tmp_path), "bank", set(data)), data, "bank")


def _eps(value):
    return LabelPrivacy(value)


def test_spent_epsilon_adds_up_per_dataset_and_refuses_past_the_budget(tmp_path):
    ledger = _labels(tmp_path, budget=3.0)
    name = ledger.dataset(str(tmp_path / "sub" / ".." / "customers.csv"))
    assert name == "customers"                                              # the alias of the file
    status = ledger.charge(name, _eps(2.0), run="r1", job="j")
    assert status == {"dataset": "customers", "budget": 3.0, "delta": 0.0, "spent_before": 0.0,
                      "spent_after": 2.0, "charged": True}
    with pytest.raises(BudgetError, match=r"label_epsilon = 1.5 would take the labels of customers to ε = 3.5"):
        ledger.check(name, _eps(1.5))
    with pytest.raises(BudgetError, match="past their budget"):
        ledger.charge(name, _eps(1.5), run="r2", job="j")
    assert ledger.spent(name) == 2.0                                        # a refusal records nothing
    assert ledger.charge(name, _eps(1.0), run="r3", job="j")["spent_after"] == 3.0   # exactly the budget
    assert ledger.summary()["customers"] == {"budget": 3.0, "spent": 3.0, "runs": 2}
    other = ledger.dataset(str(tmp_path / "other.csv"))
    assert ledger.charge(other, _eps(5.0), run="r4", job="j")["budget"] is None   # no budget: counted only
    assert ledger.dataset("/elsewhere/x.csv") == "/elsewhere/x.csv"


def test_a_resumed_run_is_not_charged_again(tmp_path):
    ledger = _labels(tmp_path, budget=2.5)
    ledger.charge("customers", _eps(2.0), run="r1", job="j")
    again = ledger.charge("customers", _eps(2.0), run="r1", job="j")        # the same run, resumed
    assert again["charged"] is False and again["spent_after"] == 2.0
    assert ledger.check("customers", _eps(2.0), run="r1")["charged"] is False
    assert len(json.loads(ledger.path.read_text())["customers"]) == 1


def test_a_budgeted_dataset_refuses_a_job_without_label_dp(tmp_path):
    ledger = _labels(tmp_path, budget=4.0)
    with pytest.raises(BudgetError, match="a job without a \\[privacy\\] section would use them without bound"):
        ledger.check("customers", None)
    assert ledger.check("other", None)["charged"] is False                   # no budget there


def test_with_delta_the_releases_compose_below_their_sum(tmp_path):
    assert compose([1.0, 0.5, 2.0]) == 3.5
    many = [0.5] * 40
    assert compose(many, 1e-6) < 0.9 * sum(many)                             # PLD: tighter than adding up
    ledger = _labels(tmp_path, budget=18.0, delta=1e-6)
    for i in range(40):
        ledger.charge("customers", _eps(0.5), run=f"r{i}", job="j")          # 20 by adding up: all fit
    assert ledger.spent("customers") == pytest.approx(compose(many, 1e-6))


def test_the_ledger_is_one_count_for_every_process_of_the_party(tmp_path):
    ledger = _labels(tmp_path, budget=10.0)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        outcomes = pool.starmap(_charge_one, [(str(tmp_path), f"r{i}") for i in range(8)])
    assert sorted(outcomes).count("ok") == 5 and outcomes.count("refused") == 3   # 5 × 2.0 = the budget
    assert ledger.spent("customers") == 10.0


def _charge_one(directory, run):
    import pathlib
    ledger = _labels(pathlib.Path(directory), budget=10.0)
    try:
        ledger.charge("customers", _eps(2.0), run=run, job="j")
        return "ok"
    except BudgetError:
        return "refused"


def test_a_damaged_ledger_stops_the_job_rather_than_start_again_from_zero(tmp_path):
    ledger = _labels(tmp_path, budget=1.0)
    ledger.path.write_text("{not json")
    with pytest.raises(budgets.PartyError, match="unreadable"):
        ledger.check("customers", _eps(0.5))


def test_privacy_and_predictions_sections_are_checked(tmp_path):
    base = {"name": "bank", "listen": "tcp://127.0.0.1:1", "data": {"customers": "c.csv"}}
    config = parse_config(base, base_dir=str(tmp_path), insecure=True)
    assert config.privacy.label_epsilon_budget == {} and config.privacy.ledger.endswith("bank.privacy-ledger.json")
    assert not config.predictions.capped and config.predictions.ledger.endswith("bank.query-ledger")
    assert config.privacy.max_feature_epsilon == 0.0
    with_cap = parse_config({**base, "privacy": {"max_feature_epsilon": 2}}, base_dir=str(tmp_path), insecure=True)
    assert with_cap.privacy.max_feature_epsilon == 2.0
    for section, bad, message in [
            ("privacy", {"label_epsilon_budget": {"nope": 1.0}}, "not a \\[data\\] alias"),
            ("privacy", {"label_epsilon_budget": {"customers": -1}}, "must be a number >= 0"),
            ("privacy", {"delta": 1.5}, "delta must be a number in \\[0, 1\\)"),
            ("privacy", {"budget": 1}, "unknown keys \\['budget'\\]"),
            ("privacy", {"max_feature_epsilon": "high"}, "max_feature_epsilon must be a number >= 0"),
            ("predictions", {"max_rows_per_request": 2.5}, "max_rows_per_request must be an integer >= 0"),
            ("predictions", {"period_hours": 0}, "period_hours must be a number > 0"),
            ("predictions", {"rows": 1}, "unknown keys")]:
        with pytest.raises(ConfigError, match=message):
            parse_config({**base, section: bad}, base_dir=str(tmp_path), insecure=True)


def _queries(tmp_path, **caps):
    return QueryLedger(parse_query_terms(caps, _resolve(tmp_path), "insurer"), "insurer")


def test_rows_scored_are_capped_per_request_per_period_and_per_model(tmp_path, monkeypatch):
    ledger = _queries(tmp_path, max_rows_per_request=300, max_rows_per_period=500, period_hours=1,
                      max_rows_per_model=800)
    assert ledger.admit("bank", "m1", 300) == {"rows": 300, "rows_in_period": 300, "rows_with_model": 300}
    with pytest.raises(BudgetError, match="asked to score 301 rows; max_rows_per_request is 300"):
        ledger.admit("bank", "m1", 301)
    with pytest.raises(BudgetError, match="300 already in the last 1 h; max_rows_per_period is 500"):
        ledger.admit("bank", "m1", 250)
    assert ledger.admit("other", "m1", 250)["rows_in_period"] == 250          # counted per peer
    restarted = _queries(tmp_path, max_rows_per_request=300, max_rows_per_period=500, period_hours=1,
                         max_rows_per_model=800)
    with pytest.raises(BudgetError, match="max_rows_per_period"):             # kept across restarts
        restarted.admit("bank", "m2", 250)
    later = budgets.time.time() + 3601
    monkeypatch.setattr(budgets.time, "time", lambda: later)                   # the period has rolled on
    assert restarted.admit("bank", "m1", 300)["rows_in_period"] == 300
    monkeypatch.setattr(budgets.time, "time", lambda: later + 3601)
    with pytest.raises(BudgetError, match="with model m1, 600 already; max_rows_per_model is 800"):
        restarted.admit("bank", "m1", 300)
    assert restarted.admit("bank", "m2", 300)["rows_with_model"] == 300
    assert restarted.summary()["bank"]["per_model"] == {"m1": 600, "m2": 300}


def test_a_refusal_by_the_next_check_records_no_rows(tmp_path):
    ledger = _queries(tmp_path, max_rows_per_period=100)

    def psi_ledger_refuses():
        raise BudgetError("the PSI ledger says no")
    with pytest.raises(BudgetError, match="PSI ledger"):
        ledger.admit("bank", "m", 60, then=psi_ledger_refuses)
    assert ledger.admit("bank", "m", 100)["rows_in_period"] == 100
    assert oct(os.stat(ledger.dir / "bank.json").st_mode & 0o777) == "0o600"


def test_releases_with_a_delta_add_up_in_epsilon_and_in_delta(tmp_path):
    noisy = LabelPrivacy(1.0, "gradient_noise", delta=1e-6)
    pure = _labels(tmp_path / "pure", budget=5.0)
    with pytest.raises(BudgetError, match="would then add up to δ = 1e-06, past the ledger's δ of 0"):
        pure.check("customers", noisy)
    ledger = _labels(tmp_path / "approx", budget=5.0, delta=2.5e-6)
    ledger.charge("customers", _eps(0.5), run="r1", job="j")
    ledger.charge("customers", noisy, run="r2", job="j")
    assert ledger.spent("customers") == 1.5                                 # added up, not composed by PLD
    ledger.charge("customers", noisy, run="r3", job="j")
    with pytest.raises(BudgetError, match="δ = 3e-06"):                     # ε 3.5 fits, δ does not
        ledger.check("customers", noisy)


def test_a_passive_keeps_the_same_ledger_for_the_epsilon_of_its_columns(tmp_path):
    from vfl.privacy import FeaturePrivacy
    data = {"customers": str(tmp_path / "customers.csv")}
    terms = parse_privacy_terms({"feature_epsilon_budget": {"customers": 5.0}, "delta": 1e-5}, _resolve(tmp_path),
                                "insurer", set(data))
    ledger = LabelLedger(terms, data, "insurer", kind="features")
    assert ledger.path.name == "insurer.feature-ledger.json"
    ledger.charge("customers", FeaturePrivacy(2.0), run="r1", job="lr")
    ledger.charge("customers", FeaturePrivacy(2.0), run="r1", job="lr")          # resumed: not again
    assert ledger.summary() == {"customers": {"budget": 5.0, "spent": 2.0, "runs": 1}}
    with pytest.raises(BudgetError, match="feature_epsilon = 4 would take the columns of customers to ε = 6"):
        ledger.charge("customers", FeaturePrivacy(4.0), run="r2", job="lr")
    with pytest.raises(BudgetError, match=r"without \[privacy\] feature_epsilon would use them without bound"):
        ledger.check("customers", None)
    with pytest.raises(BudgetError, match="add up to δ"):                          # 11 runs at 1e-6 pass 1e-5
        for k in range(11):
            ledger.charge("customers", FeaturePrivacy(0.1), run=f"s{k}", job="lr")
    labels = LabelLedger(terms, data, "insurer")
    assert labels.summary() == {} and not labels.path.exists()                     # the labels' ledger is apart
