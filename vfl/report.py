"""Job reports: one JSON object (report.json), a readable summary, and plots (ROC, loss).

:class:`JobReport` gathers the typed results of a training job; :meth:`JobReport.to_dict`
is the public report (the keys ``vfl run --json`` prints and docs/jobs.md lists). Truth and
scores of individual rows stay out of it: they feed the plots only.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from vfl import registry
from vfl.errors import VFLError
from vfl.family import REPORT_KEYS, Curves
from vfl.files import write_private
from vfl.jobs.results import Baseline, PassiveResult, Scores, TrainingResult


@dataclasses.dataclass
class JobReport:
    training: TrainingResult
    job_id: str
    bytes_sent: dict[str, int]
    passives: dict[str, PassiveResult]
    baseline: Baseline | None = None
    files: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def notes(self) -> list[str]:
        ev, notes = self.training.evaluation, []
        if ev is not None and ev.metrics is None:
            notes.append("no rows were held out ([evaluation] test_size = 0): metrics are on the training rows "
                         "(training_metrics), for the federated model and the baseline alike, and flatter them")
        privacy = self.training.privacy or {}
        if "label_epsilon" in privacy:
            notes.append(f"label DP: the model was trained on labels released by {privacy['mechanism']} "
                         f"with ε = {privacy['label_epsilon']:g} (δ = {privacy['delta']:g}); the loss curve is on "
                         "those labels, the metrics on the true labels of the held-out rows"
                         + ("" if self.baseline is None else "; the baseline trains on the true labels"))
        if "features" in privacy:
            f = privacy["features"]
            notes.append(f"feature DP: every passive's training rows are (ε = {f['feature_epsilon']:g}, "
                         f"δ = {f['feature_delta']:g})-DP against what this party received (noise multiplier "
                         f"{f['noise_multiplier']:.3g}); held-out rows were scored without noise"
                         + ("" if self.baseline is None else "; the baseline trains on the exact columns"))
        spent = privacy.get("ledger")
        if spent:
            budget = "no budget" if spent["budget"] is None else f"a budget of {spent['budget']:g}"
            notes.append(f"the labels of {spent['dataset']} have now spent ε = {spent['spent_after']:g} in all "
                         f"(δ = {spent['delta']:g}) of {budget}"
                         + ("" if spent["charged"] else "; this run was charged when it began"))
        if self.training.resumed_from is not None:
            notes.append(f"run {self.training.run} was resumed from round {self.training.resumed_from} (the last "
                         "epoch or tree every party had checkpointed); seconds and bytes count the resumed part")
        return notes

    def to_dict(self) -> dict:
        t = self.training
        out = {"job": t.job, "model": t.model, "n_intersection": t.n_intersection, "n_train": t.n_train,
               "n_test": t.n_test, "features": t.features, **t.summary.to_report()}   # no clash: TrainingSummary
        if t.evaluation is not None:
            out.update(_metrics(t.evaluation))
            clash = sorted(set(t.evaluation.figures) & (set(out) | REPORT_KEYS))
            if clash:
                raise VFLError(f"a model family's evaluation figures use keys {clash}, which the report uses")
            out.update(t.evaluation.figures)
        out.update(seconds=t.seconds, job_id=self.job_id, run=t.run, bytes_sent=self.bytes_sent,
                   passives={p: r.to_wire() for p, r in self.passives.items()})
        if t.resumed_from is not None:
            out["resumed_from"] = t.resumed_from
        if t.privacy is not None:
            out["privacy"] = t.privacy
        if self.baseline is not None:
            b = self.baseline
            out["baseline"] = {"model": b.model, "n_rows": b.n_rows, **_metrics(b.evaluation),
                               **({"training_loss": b.training_loss} if b.training_loss is not None else {})}
        if self.notes:
            out["notes"] = self.notes
        out["files"] = dict(self.files)
        return out


def _metrics(evaluation) -> dict:
    return {k: v for k, v in (("metrics", evaluation.metrics), ("training_metrics", evaluation.training_metrics))
            if v is not None}


def write_report(report: JobReport, out_dir) -> dict:
    """Write report.json, loss.png and roc.png (classification with held-out rows), plus the
    plots the model family draws itself (:meth:`vfl.family.ModelFamily.plots`); returns the paths."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t, paths = report.training, {"report": str(out / "report.json")}
    if t.summary.curves and t.summary.curves.loss:
        paths["loss_plot"] = str(out / "loss.png")
        _loss_plot(t.job, t.summary.curves, paths["loss_plot"])
    test = t.evaluation.test if t.evaluation else None
    if test is not None and "auc" in (t.evaluation.metrics or {}):
        paths["roc_plot"] = str(out / "roc.png")
        base = report.baseline.evaluation if report.baseline else None
        _roc_plot(t.job, test, t.evaluation.metrics, base.test if base else None, base.metrics if base else None,
                  paths["roc_plot"])
    paths.update(registry.family(t.model).plots(report.to_dict(), out))
    report.files = paths
    write_private(paths["report"], json.dumps(report.to_dict(), indent=2))
    return paths


def pyplot():
    """matplotlib's pyplot on the file-only backend (what every report plot draws with)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path) -> str:
    """Lay out, write (PNG, 110 dpi) and close a report figure; returns its path as text."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return str(path)


def _loss_plot(job: str, curves: Curves, path: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    steps = np.arange(1, len(curves.loss) + 1)
    ax.plot(steps, curves.loss, marker="o", label="training loss")
    if curves.validation:
        ax.plot(steps[:len(curves.validation)], curves.validation, marker="s", label="validation loss")
    if curves.kept:                                   # early stopping kept the first `kept` steps
        ax.axvline(curves.kept, color="grey", linestyle=":", label=f"kept {curves.kept} {curves.unit}s")
    ax.set_xlabel(curves.unit)
    ax.set_ylabel(curves.name)
    ax.set_title(f"{job}: loss per {curves.unit}")
    ax.legend()
    save_figure(fig, path)


def _roc_plot(job: str, test: Scores, metrics: dict, base: Scores | None, base_metrics: dict | None,
              path: str) -> None:
    from scipy.special import softmax
    from sklearn.metrics import roc_curve
    plt = pyplot()
    y, scores = np.asarray(test.truth), np.asarray(test.scores, float)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    if scores.ndim == 2:                              # K classes: one-vs-rest curve per class
        proba = softmax(scores, axis=1)               # the ranking the macro AUC is computed on
        for k in range(scores.shape[1]):
            fpr, tpr, _ = roc_curve(y == k, proba[:, k])
            ax.plot(fpr, tpr, label=f"class {k} vs rest")
        ax.plot([], [], " ", label=f"federated macro AUC {metrics['auc']:.4f}")
        if base_metrics:
            ax.plot([], [], " ", label=f"centralized macro AUC {base_metrics['auc']:.4f}")
    else:
        fpr, tpr, _ = roc_curve(y, scores)
        ax.plot(fpr, tpr, label=f"federated (AUC {metrics['auc']:.4f})")
        if base is not None and base_metrics:
            bf, bt, _ = roc_curve(base.truth, base.scores)
            ax.plot(bf, bt, linestyle="--", label=f"centralized (AUC {base_metrics['auc']:.4f})")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"{job}: ROC on held-out rows")
    ax.legend(loc="lower right")
    save_figure(fig, path)


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _metric_lines(label: str, metrics: dict, base: dict) -> list[str]:
    lines = []
    for name, value in metrics.items():
        extra = (f"   centralized baseline {base[name]:.4f}   difference {value - base[name]:+.4f}"
                 if name in base else "")
        lines.append(f"  {label}{name.upper():5} federated {value:.4f}{extra}")
    return lines


def _scorecard_lines(report: dict) -> list[str]:
    """A scorecard's selection and stability, where the report has them."""
    lines, sel = [], report.get("selection")
    if isinstance(sel, dict) and "kept" in sel:
        lines.append(f"  features kept: {len(sel['kept'])} of {len(report.get('iv', []))} "
                     f"(IV selection {len(sel['by_iv'])}, dropped as correlated {len(sel['dropped_correlated'])})")
        lines += [f"  note: {text}" for text in sel.get("left_out", [])]
    if "population_stability_index" in report:
        lines.append(f"  population stability index, held-out vs training scores: "
                     f"{report['population_stability_index']:.4f} (< 0.1 stable, > 0.25 shifted)")
    return lines


def render_report(report: dict) -> str:
    """The summary ``vfl run`` prints, from the public report."""
    lines = [f"job {report.get('job')}: {report.get('model')}",
             f"  customers shared by all parties (PSI): {report.get('n_intersection')}"
             f"  (train {report.get('n_train')}, held out {report.get('n_test')})"]
    base = report.get("baseline") or {}
    lines += _metric_lines("", report.get("metrics", {}), base.get("metrics") or {})
    lines += _metric_lines("training ", report.get("training_metrics", {}), base.get("training_metrics") or {})
    if base.get("training_loss") is not None and report.get("loss_curve"):
        ours, theirs = report["loss_curve"][-1], base["training_loss"]
        lines.append(f"  training {report.get('loss_name', 'loss')}: federated {ours:.6f}   centralized optimum "
                     f"{theirs:.6f}   difference {ours - theirs:+.6f}")
    lines += _scorecard_lines(report)
    lines.append("  time: " + ", ".join(f"{k} {v:.1f} s" for k, v in report.get("seconds", {}).items()))
    for party, sent in report.get("bytes_sent", {}).items():
        lines.append(f"  {party} sent {_fmt_bytes(sent)}")
    lines += [f"  note: {note}" for note in report.get("notes", [])]
    for name, path in report.get("files", {}).items():
        lines.append(f"  {name}: {path}")
    return "\n".join(lines)
