"""The scorecard as a model family (job name ``scorecard``): binning → selection → logistic
regression on WOE → points, one job; each step set by its own optional section."""
from __future__ import annotations

import csv
import json
import pathlib

import numpy as np
import pandas as pd
from scipy.special import expit

from vfl.binning.bins import woe_iv
from vfl.binning.model import bin_index, column_counts, fit_bins, woe_matrix
from vfl.family import Curves, DataNeeds, ModelFamily, PassiveCaps, TrainingSummary
from vfl.linear.family import LogisticRegressionFamily
from vfl.metrics import classification_metrics
from vfl.pearson.model import check_consent
from vfl.scorecard import card, steps
from vfl.scorecard.model import ActiveScorecard, PassiveScorecard, correlation_plan


class ScorecardFamily(ModelFamily):
    name = "scorecard"
    label_privacy = True
    task = "classification"
    data = DataNeeds(allow_nan=True, label="binary", categorical=True)
    active_estimator = ActiveScorecard
    passive_estimator = PassiveScorecard
    passive_cap = "max_rounds"
    sections = frozenset(steps.STEPS)
    job_parties = True
    runtime_params = frozenset({"verbose", "workers", *steps.STEPS})

    def check_section(self, name: str, table: dict) -> None:
        steps.settings(name, table)

    def check_passive(self, sections: dict, parties: list[str], me: str, caps: PassiveCaps) -> None:
        """Before the PSI: a job that correlates features reveals this party's correlations to the
        active; refuse it if this party's config does not allow that."""
        if steps.settings("selection", sections.get("selection"))["max_correlation"] is not None:
            check_consent(correlation_plan(parties), me, caps.reveal_to, parties[0])

    def active(self, params: dict, *, verbose: bool = True, sections: dict | None = None, **_) -> ActiveScorecard:
        return ActiveScorecard(**params, verbose=verbose, **{k: v for k, v in (sections or {}).items()})

    def passive(self, caps: PassiveCaps, sections: dict | None = None, parties: list | None = None,
                **_) -> PassiveScorecard:
        return PassiveScorecard(max_rounds=caps.max_rounds, min_features=caps.min_features,
                                share_reasons=caps.share_reasons, reveal_to=caps.reveal_to, job_parties=parties,
                                allow_insecure_key_size_for_tests=caps.allow_small_keys)

    # -- results --------------------------------------------------------------------------------
    def metrics(self, y_true, scores) -> dict:
        return {**classification_metrics(y_true, scores), "ks": card.ks(y_true, scores)[0]}

    def training_loss(self, y_true, scores) -> float:
        return LogisticRegressionFamily().training_loss(y_true, scores)

    def evaluation_figures(self, model: ActiveScorecard, y_true, scores) -> dict:
        """KS curve, gains and lift, score distribution by class and the population stability
        index of the scored rows against the training rows."""
        points = model.offset_ - model.factor_ * np.asarray(scores, float)
        y = np.asarray(y_true, int)
        _, curve = card.ks(y, scores)
        edges = np.histogram_bin_edges(points, bins=30)
        first = model.reasons_[:, 0] if model.reason_codes_ else np.zeros(0, dtype=object)
        names, counts = np.unique(first[first != ""].astype(str), return_counts=True)
        top = sorted(zip(names.tolist(), counts.tolist()), key=lambda kv: (-kv[1], kv[0]))
        return {"ks_curve": curve, "gains": card.gains(y, scores),
                "top_reason_codes": [{"reason": k, "rows": int(v)} for k, v in top],
                "population_stability_index": round(card.population_stability_index(
                    model.train_shares_, card.band_shares(points, model.score_bands_)), 6),
                "score_distribution": {"edges": [round(float(e), 3) for e in edges],
                                       "events": np.histogram(points[y == 1], edges)[0].tolist(),
                                       "nonevents": np.histogram(points[y == 0], edges)[0].tolist()}}

    def prediction_columns(self, model: ActiveScorecard, scores: np.ndarray) -> dict[str, np.ndarray]:
        out = {"score": model.offset_ - model.factor_ * scores, "probability": expit(scores)}
        for k in range(model.reason_codes_):
            out[f"reason_{k + 1}"] = model.reasons_[:, k]
            out[f"reason_{k + 1}_points"] = np.round(model.reason_points_[:, k], 4)
        return out

    def summary(self, model: ActiveScorecard) -> TrainingSummary:
        reg = model.regression_
        curves = Curves(list(reg["loss_curve"]), [], "log loss", "iteration" if reg["solver"] == "lbfgs" else "epoch")
        return TrainingSummary(curves, {
            "iv": model.binning_["iv"], "bins": model.binning_["bins"], "selection": model.selection_,
            "regression": {k: v for k, v in reg.items() if k != "loss_curve"},
            "scorecard": {"base_points": round(model.base_points_, 4), "factor": model.factor_, "offset": model.offset_,
                          "table": model.table(),
                          "passives": {p: {"features": c["features"], "max_points": round(c["max_points"], 4),
                                           "names": c["names"]} for p, c in model.cards_.items()}}})

    def baseline(self, params, x_train, y_train, x_eval, sections: dict | None = None):
        """The same pipeline on the joined table: the same bins, WOE, IV and selection (plain
        correlations), then scikit-learn's optimum of the same penalized log-loss on WOE."""
        cfg = steps.all_settings(sections or {})
        b, sel = cfg["binning"], cfg["selection"]
        x_train, x_eval = pd.DataFrame(x_train).reset_index(drop=True), pd.DataFrame(x_eval).reset_index(drop=True)
        y = np.asarray(y_train, int)
        bins = fit_bins(x_train, b["n_bins"], b["method"], b["min_bin_size"])
        index = bin_index(x_train, bins)
        woe, iv = {}, {}
        for name in bins:
            bins[name], counts, events = column_counts(index[name], y, bins[name], b["monotone"])
            woe[name], iv[name] = woe_iv(events, counts)
        keys = card.select_by_iv(iv, {k: len(v) for k, v in woe.items()}, sel["min_iv"], sel["top_k"])
        if sel["max_correlation"] is not None and len(keys) > 1:
            corr = np.corrcoef(woe_matrix(x_train, bins, woe, keys), rowvar=False)
            keys, _ = card.drop_correlated(keys, corr, iv, sel["max_correlation"])
        lr = LogisticRegressionFamily()
        name, scores = lr.baseline(cfg["regression"], woe_matrix(x_train, bins, woe, keys), y,
                                   woe_matrix(x_eval, bins, woe, keys))
        return f"centralized scorecard (same bins and selection, {len(keys)} features) with {name}", scores

    def plots(self, report: dict, out_dir) -> dict[str, str]:
        from vfl.binning.family import BinningFamily
        out = BinningFamily().plots(report, out_dir)
        out.update(_step_files(report, pathlib.Path(out_dir)))
        from vfl.report import pyplot, save_figure
        plt = pyplot()
        dist, curve = report.get("score_distribution"), report.get("ks_curve")
        if dist:
            edges = np.asarray(dist["edges"])
            fig, ax = plt.subplots(figsize=(6, 3.5))
            for key, colour, label in (("nonevents", "#2f855a", "non-events"), ("events", "#c53030", "events")):
                counts = np.asarray(dist[key], float)
                ax.stairs(counts / max(counts.sum(), 1), edges, color=colour, label=label, fill=False, linewidth=1.6)
            ax.set_xlabel("score (points)")
            ax.set_ylabel("share of the class")
            ax.set_title("Score distribution by class (held-out rows)")
            ax.legend()
            out["score_distribution"] = save_figure(fig, f"{out_dir}/score_distribution.png")
        if curve:
            fig, ax = plt.subplots(figsize=(5, 4))
            ax.plot(curve["population"], curve["events"], label="events", color="#c53030")
            ax.plot(curve["population"], curve["nonevents"], label="non-events", color="#2f855a")
            gap = np.asarray(curve["events"]) - np.asarray(curve["nonevents"])
            k = int(np.argmax(gap))
            ax.vlines(curve["population"][k], curve["nonevents"][k], curve["events"][k], colors="black",
                      linestyles=":", label=f"KS {report.get('metrics', {}).get('ks', gap[k]):.3f}")
            ax.set_xlabel("share of rows, riskiest first")
            ax.set_ylabel("cumulative share of the class")
            ax.set_title("KS curve (held-out rows)")
            ax.legend()
            out["ks"] = save_figure(fig, f"{out_dir}/ks.png")
        return out


def _step_files(report: dict, out: pathlib.Path) -> dict[str, str]:
    """Each step's output in the run directory: binning.json, selection.json, scorecard.csv."""
    steps_dir = out / "steps"
    steps_dir.mkdir(parents=True, exist_ok=True)
    files = {"binning": steps_dir / "binning.json", "selection": steps_dir / "selection.json",
             "scorecard_table": steps_dir / "scorecard.csv"}
    files["binning"].write_text(json.dumps({"iv": report.get("iv"), "bins": report.get("bins")}, indent=1))
    files["selection"].write_text(json.dumps(report.get("selection"), indent=1))
    table = (report.get("scorecard") or {}).get("table", [])
    with open(files["scorecard_table"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["feature", "bin", "values", "woe", "points"])
        writer.writeheader()
        writer.writerows(table)
    return {k: str(v) for k, v in files.items()}


FAMILIES = (ScorecardFamily(),)
