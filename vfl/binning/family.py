"""Hetero WOE/IV binning as a model family (job name ``binning``): a statistic, not a scoring model."""
from __future__ import annotations

import numpy as np

from vfl.binning.model import ActiveBinning, PassiveBinning
from vfl.family import DataNeeds, ModelFamily, PassiveCaps, TrainingSummary


class BinningFamily(ModelFamily):
    name = "binning"
    label_privacy = True
    task = "statistics"
    data = DataNeeds(allow_nan=True, label="binary", categorical=True)
    active_estimator = ActiveBinning
    passive_estimator = PassiveBinning
    passive_cap = "max_bins"
    predicts = False

    def passive(self, caps: PassiveCaps, **_) -> PassiveBinning:
        return PassiveBinning(allow_insecure_key_size_for_tests=caps.allow_small_keys)

    def summary(self, model: ActiveBinning) -> TrainingSummary:
        table = [{"feature": k, "iv": round(v, 6), "bins": len(model.counts_[k])} for k, v in model.iv_table()]
        return TrainingSummary(None, {"iv": table, "bins": bin_figures(model), "share_woe": model.share_woe})

    def baseline(self, params, x_train, y_train, x_eval, **_):
        return None

    def plots(self, report: dict, out_dir) -> dict[str, str]:
        table = report.get("iv")
        if not table:
            return {}
        from vfl.report import pyplot, save_figure
        plt = pyplot()
        out = {}
        names, ivs = [r["feature"] for r in table][::-1], [r["iv"] for r in table][::-1]
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(names) + 1.5))
        ax.barh(names, ivs, color="#2b6cb0")
        ax.set_xlabel("information value")
        ax.set_title("IV per feature (0.02 weak, 0.1 medium, 0.3 strong)")
        out["iv"] = save_figure(fig, f"{out_dir}/iv.png")
        top = [r["feature"] for r in table[:9]]
        cols = 3
        rows = -(-len(top) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
        for ax, name in zip(axes.ravel(), top):
            woe = report["bins"][name]["woe"]
            ax.bar(np.arange(len(woe)), woe, color=["#c53030" if w > 0 else "#2f855a" for w in woe])
            ax.set_title(name, fontsize=8)
            ax.set_xlabel("bin", fontsize=7)
        for ax in axes.ravel()[len(top):]:
            ax.axis("off")
        fig.suptitle("WOE per bin, the most informative features (red: more events than average)")
        out["woe"] = save_figure(fig, f"{out_dir}/woe.png")
        return out


def bin_figures(model: ActiveBinning) -> dict:
    """Per feature: rows, events and WOE per bin, and for the active's own columns what each bin holds."""
    labels = model.labels()
    return {k: {"rows": model.counts_[k].tolist(), "events": model.events_[k].tolist(),
                "woe": [round(float(w), 6) for w in model.woe_[k]],
                **({"values": labels[k]} if k in labels else {})} for k in model.iv_}


FAMILIES = (BinningFamily(),)
