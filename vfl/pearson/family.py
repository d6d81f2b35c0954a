"""Hetero Pearson correlation as a model family (job name ``pearson``): a statistic, not a
scoring model — no label, no evaluation, nothing to predict."""
from __future__ import annotations

import math

import numpy as np

from vfl.family import DataNeeds, ModelFamily, PassiveCaps, TrainingSummary
from vfl.pearson.model import ActivePearson, PassivePearson, check_consent
from vfl.pearson.plan import RevealPlan, check_section


class PearsonFamily(ModelFamily):
    name = "pearson"
    task = "statistics"
    data = DataNeeds(allow_nan=False, label=None)
    active_estimator = ActivePearson
    passive_estimator = PassivePearson
    passive_cap = "max_rounds"            # unused: one round; the passive's consent is reveal_to
    predicts = False
    sections = frozenset({"reveal"})
    job_parties = True                   # a passive checks the setup is the job it accepted
    runtime_params = frozenset({"verbose", "workers", "reveal"})

    def check_section(self, name: str, table: dict) -> None:
        check_section(table)

    def check_parties(self, sections: dict, parties: list[str]) -> None:
        RevealPlan.from_section(sections.get("reveal"), parties)

    def check_passive(self, sections: dict, parties: list[str], me: str, caps: PassiveCaps) -> None:
        """Before the PSI: refuse a job whose plan reveals this party's correlations to a party
        its config does not allow."""
        check_consent(RevealPlan.from_section(sections.get("reveal"), parties), me, caps.reveal_to, parties[0])

    def active(self, params: dict, *, verbose: bool = True, sections: dict | None = None, **_) -> ActivePearson:
        return ActivePearson(**params, verbose=verbose, reveal=(sections or {}).get("reveal"))

    def passive(self, caps: PassiveCaps, sections: dict | None = None, parties: list | None = None,
                **_) -> PassivePearson:
        return PassivePearson(reveal_to=caps.reveal_to, allow_insecure_key_size_for_tests=caps.allow_small_keys,
                              job_parties=parties, job_reveal=(sections or {}).get("reveal"))

    def summary(self, model: ActivePearson) -> TrainingSummary:
        names, matrix = model.correlation()
        rows = [[None if math.isnan(v) else round(float(v), 6) for v in row] for row in matrix]
        return TrainingSummary(None, {"correlation": {"features": names, "matrix": rows,
                                                      "rows": model.n_rows_},
                                      "mpc": model.mpc_})

    def baseline(self, params, x_train, y_train, x_eval, **_):
        return None

    def plots(self, report: dict, out_dir) -> dict[str, str]:
        corr = report.get("correlation")
        if not corr:
            return {}
        from vfl.report import pyplot, save_figure
        plt = pyplot()
        names = corr["features"]
        m = np.array([[np.nan if v is None else v for v in row] for row in corr["matrix"]], dtype=float)
        size = min(4 + 0.28 * len(names), 30)
        fig, ax = plt.subplots(figsize=(size, size * 0.85))
        image = ax.imshow(np.ma.masked_invalid(m), cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_title("Pearson correlation (blank: not revealed to this party)")
        fig.colorbar(image, ax=ax, shrink=0.8)
        return {"correlation": save_figure(fig, f"{out_dir}/correlation.png")}


FAMILIES = (PearsonFamily(),)
