"""Job reports: one JSON object, a readable summary, and plots (ROC and loss curves)."""
from __future__ import annotations

import json
import pathlib

import numpy as np


def public_report(report):
    """The report without internal fields (keys starting with ``_``, at any depth)."""
    if isinstance(report, dict):
        return {k: public_report(v) for k, v in report.items() if not str(k).startswith("_")}
    return report


def write_report(report: dict, out_dir) -> dict:
    """Write report.json, roc.png (classification) and loss.png; returns the paths written."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"report": str(out / "report.json")}
    if report.get("loss_curve"):
        paths["loss_plot"] = str(out / "loss.png")
        _loss_plot(report, paths["loss_plot"])
    if "_test_scores" in report and "auc" in report.get("metrics", {}):
        paths["roc_plot"] = str(out / "roc.png")
        _roc_plot(report, paths["roc_plot"])
    report["files"] = paths
    pathlib.Path(paths["report"]).write_text(json.dumps(public_report(report), indent=2))
    return paths


def _figure():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _loss_plot(report: dict, path: str) -> None:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    unit = report.get("loss_unit", "epoch")           # "tree" for boosted trees
    steps = np.arange(1, len(report["loss_curve"]) + 1)
    ax.plot(steps, report["loss_curve"], marker="o", label="training loss")
    if report.get("validation_loss_curve"):
        val = report["validation_loss_curve"]
        ax.plot(steps[:len(val)], val, marker="s", label="validation loss")
    if report.get("kept"):                           # early stopping kept the first `kept` steps
        ax.axvline(report["kept"], color="grey", linestyle=":", label=f"kept {report['kept']} {unit}s")
    ax.set_xlabel(unit)
    ax.set_ylabel(report.get("loss_name", "loss"))
    ax.set_title(f"{report.get('job', '')}: loss per {unit}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _roc_plot(report: dict, path: str) -> None:
    from sklearn.metrics import roc_curve
    plt = _figure()
    y, scores = report["_test_scores"]
    y, scores = np.asarray(y), np.asarray(scores, float)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    base = report.get("baseline")
    if scores.ndim == 2:                              # K classes: one-vs-rest curve per class
        from scipy.special import softmax
        proba = softmax(scores, axis=1)               # the ranking the macro AUC is computed on
        for k in range(scores.shape[1]):
            fpr, tpr, _ = roc_curve(y == k, proba[:, k])
            ax.plot(fpr, tpr, label=f"class {k} vs rest")
        ax.plot([], [], " ", label=f"federated macro AUC {report['metrics']['auc']:.4f}")
        if base:
            ax.plot([], [], " ", label=f"centralized macro AUC {base['metrics']['auc']:.4f}")
    else:
        fpr, tpr, _ = roc_curve(y, scores)
        ax.plot(fpr, tpr, label=f"federated (AUC {report['metrics']['auc']:.4f})")
    if base and "_test_scores" in base and scores.ndim == 1:
        bf, bt, _ = roc_curve(*base["_test_scores"])
        ax.plot(bf, bt, linestyle="--", label=f"centralized (AUC {base['metrics']['auc']:.4f})")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"{report.get('job', '')}: ROC on held-out rows")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def render_report(report: dict) -> str:
    lines = [f"job {report.get('job')}: {report.get('model')}",
             f"  customers shared by all parties (PSI): {report.get('n_intersection')}"
             f"  (train {report.get('n_train')}, held out {report.get('n_test')})"]
    metrics, base = report.get("metrics", {}), (report.get("baseline") or {}).get("metrics", {})
    for name, value in metrics.items():
        extra = f"   centralized baseline {base[name]:.4f}   difference {value - base[name]:+.4f}" if name in base else ""
        lines.append(f"  {name.upper():5} federated {value:.4f}{extra}")
    secs = report.get("seconds", {})
    lines.append("  time: " + ", ".join(f"{k} {v:.1f} s" for k, v in secs.items()))
    for party, sent in report.get("bytes_sent", {}).items():
        lines.append(f"  {party} sent {_fmt_bytes(sent)}")
    for name, path in report.get("files", {}).items():
        lines.append(f"  {name}: {path}")
    return "\n".join(lines)
