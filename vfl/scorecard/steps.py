"""The steps of a scorecard job and their settings: one job-file section per step, each optional.

```toml
[binning]      # n_bins, method, min_bin_size, monotone
[selection]    # min_iv, top_k, max_correlation
[regression]   # the logistic regression's keys (solver, alpha, penalty, epochs, gtol, protocol, ...)
[points]       # pdo, base_score, base_odds, reason_codes
```
"""
from __future__ import annotations

from vfl.binning.model import ActiveBinning
from vfl.linear.model import ActiveLogisticRegression
from vfl.validation import Integer, Interval, Optional, check_params

STEPS = ("binning", "selection", "regression", "points")

DEFAULTS = {
    "binning": {"n_bins": 10, "method": "quantile", "min_bin_size": 50, "monotone": True},
    "selection": {"min_iv": 0.02, "top_k": None, "max_correlation": None},
    # feature_key: no encryption per L-BFGS iteration (the same model as label_key, docs/hetero_lr.md)
    "regression": {"protocol": "feature_key"},
    "points": {"pdo": 20.0, "base_score": 600.0, "base_odds": 50.0, "reason_codes": 3},
}
REGRESSION_KEYS = ("solver", "alpha", "penalty", "epochs", "gtol", "protocol", "learning_rate", "batch_size",
                   "lr_schedule", "lr_decay", "random_state", "early_stopping", "validation_fraction", "tol",
                   "n_iter_no_change")
_CONSTRAINTS = {
    "selection": {"min_iv": Interval(0), "top_k": Optional(Integer(1)),
                  "max_correlation": Optional(Interval(0, 1, "neither"))},
    "points": {"pdo": Interval(0, None, "neither"), "base_score": Interval(), "base_odds": Interval(0, None, "neither"),
               "reason_codes": Integer(0, 10)},
}


def settings(name: str, table: dict | None) -> dict:
    """A step's settings: its defaults updated by the job's section, checked (``ValueError``
    naming the key)."""
    table = dict(table or {})
    known = REGRESSION_KEYS if name == "regression" else tuple(DEFAULTS[name])
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ValueError(f"unknown keys {unknown} (known: {sorted(known)})")
    out = {**DEFAULTS[name], **table}
    if name == "binning":
        ActiveBinning(**out)._validate_params()
    elif name == "regression":
        ActiveLogisticRegression(**out)._validate_params()
    else:
        check_params(out, _CONSTRAINTS[name], f"[{name}]")
    return out


def all_settings(sections: dict) -> dict[str, dict]:
    return {name: settings(name, sections.get(name)) for name in STEPS}
