"""DP against an honest-but-curious party's attack: for each ε (and none), the model's held-out
AUC and the attack's gain over an attacker that uses no protocol output, means over several
seeds, in one run. ``--defence labels`` (label DP, ``[privacy] label_epsilon``) or ``features``
(hetero LR only: every passive noises what it sends, ``[privacy] feature_epsilon``). ``--attack``:

- ``secureboost``: the SecureBoost passive infers labels from its row partitions
  (:mod:`vfl.attacks.secureboost`);
- ``lr_labels``: the hetero LR passive infers labels from its gradients
  (:func:`vfl.attacks.linear.label_inference`);
- ``lr_features``: the hetero LR active reconstructs the passive's columns from its partial
  scores (:func:`vfl.attacks.linear.feature_reconstruction`); scored by R², not AUC.

Each seed trains a 2-party job through the job flow, both parties in this process over the
in-process transport (2048-bit keys), and records what each party received (and, for LR, the
gradients the passive computed). The attacker knows ``--known`` of the training labels (of the
passive's rows, for ``lr_features``); the attack and the baseline are scored on the rest.
``--plot FILE.png``: the gain (± sd) and the model's AUC against ε.
"""
from __future__ import annotations

import dataclasses
import statistics
import tempfile

DATASETS = {"breast": ("breast", "y"), "credit": ("default_credit", "y")}
ATTACKS = {"secureboost": "auc", "lr_labels": "auc", "lr_features": "r2"}      # attack -> what it scores


def add_arguments(parser) -> None:
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="breast")
    parser.add_argument("--attack", choices=tuple(ATTACKS), default="secureboost",
                        help="secureboost: the SecureBoost passive's label inference; lr_labels: the LR passive's "
                             "label inference from its gradients; lr_features: the LR active's reconstruction of "
                             "the passive's columns")
    parser.add_argument("--defence", choices=("labels", "features"), default="labels",
                        help="labels: label DP; features: the LR passives' feature DP (lr_* attacks only)")
    parser.add_argument("--epsilons", default="none,0.5,2,8", help="comma-separated ε values; none: no DP")
    parser.add_argument("--mechanism", choices=("randomized_response", "rr_with_prior"), default="randomized_response")
    parser.add_argument("--seeds", type=int, default=3, help="training runs (and attacker picks) per ε")
    parser.add_argument("--trees", type=int, default=3, help="secureboost")
    parser.add_argument("--depth", type=int, default=3, help="secureboost")
    parser.add_argument("--epochs", type=int, default=10, help="lr_*: SGD epochs")
    parser.add_argument("--batch-size", type=int, default=128, help="lr_*: rows per batch (more than the passive's "
                        "features)")
    parser.add_argument("--learning-rate", type=float, default=0.15, help="lr_*")
    parser.add_argument("--protocol", choices=("feature_key", "label_key"), default="feature_key",
                        help="lr_*: who holds the key (both hand the passive the same gradients)")
    parser.add_argument("--known", type=float, default=0.01, help="share of training labels the passive knows "
                        "(lr_features: share of the passive's rows the active knows, at least 2·(features + 1))")
    parser.add_argument("--plot", metavar="FILE.png", help="also draw gain and model AUC against ε to this PNG")


def _indexed(frame, ids, columns):
    return frame.assign(id=frame["id"].astype(str)).set_index("id").loc[ids, columns]


def _train(model: str, params: dict, rounds: int, guest, host, eps, args, seed: int):
    """One 2-party job of ``model`` through the job flow, both parties in this process over
    the recording in-process transport: (the network, the active's result)."""
    from parties.transport.inprocess import InProcessNetwork
    from vfl.family import PassiveCaps
    from vfl.jobs import active, passive
    from vfl.jobs.spec import PassiveRequest, parse_job
    raw = {"job": {"name": "privacy-bench", "model": model}, "evaluation": {"test_size": 0.2, "seed": seed},
           "model": params,
           "parties": {"bank": {"role": "active", "data": "g.csv", "label": "y"},
                       "lab": {"role": "passive", "data": "h.csv", "alias": "lab"}}}
    if eps is not None and getattr(args, "defence", "labels") == "features":
        raw["privacy"] = {"feature_epsilon": eps}
    elif eps is not None:
        raw["privacy"] = {"label_epsilon": eps, "mechanism": args.mechanism}
    with tempfile.TemporaryDirectory() as out:
        spec = dataclasses.replace(parse_job(raw), output_dir=out)
        request = PassiveRequest.parse(spec.passive_request(), "lab")
        net = InProcessNetwork(["bank", "lab"], timeout=3600, record=True)
        results = net.run({
            "bank": lambda t: active.train(t, spec, guest, verbose=False),
            "lab": lambda t: passive.train(t, request, host, active="bank", model_path=f"{out}/lab.json",
                                           caps=PassiveCaps(max_rounds=rounds))})
    return net, results["bank"]


def _run_once(guest, host, features, eps, args, seed: int) -> dict:
    from vfl.attacks.secureboost import label_inference
    net, result = _train("secureboost", {"n_estimators": args.trees, "max_depth": args.depth, "random_state": seed},
                         args.trees, guest, host, eps, args, seed)
    ids = result.train_ids
    own = _indexed(host, ids, features)
    y = _indexed(guest, ids, "y")
    attack = label_inference(net["lab"].received, own, y, known_share=args.known, seed=seed)
    return {"model_auc": result.evaluation.metrics["auc"], **attack}


def _run_lr(guest, host, features, eps, args, seed: int) -> dict:
    """One hetero LR job (SGD) and the attack ``args.attack`` on what its parties saw."""
    from vfl.attacks import linear
    from vfl.linear import messages as msg
    with linear.recording_passive_gradients() as views:
        net, result = _train("logistic_regression",
                             {"solver": "sgd", "epochs": args.epochs, "batch_size": args.batch_size,
                              "learning_rate": args.learning_rate, "protocol": args.protocol, "random_state": seed},
                             args.epochs, guest, host, eps, args, seed)
    ids = result.train_ids
    own = _indexed(host, ids, features)
    if args.attack == "lr_labels":
        attack = linear.label_inference(views["lab"], _indexed(guest, ids, "y"), known_share=args.known, seed=seed)
    else:
        # the setup the active sent (read here from the passive's side of the in-process network)
        setup = next(m for _, m in net["lab"].received if isinstance(m, msg.Setup))
        active_x = _indexed(guest, ids, [c for c in guest.columns if c not in ("id", "y")])
        attack = linear.feature_reconstruction(net["bank"].received, setup, own, passive="lab", active_x=active_x,
                                               known_share=args.known, seed=seed)
    return {"model_auc": result.evaluation.metrics["auc"], **attack}


def run(args) -> dict:
    from vfl import datasets
    attack = getattr(args, "attack", "secureboost")
    metric = ATTACKS[attack]
    defence = getattr(args, "defence", "labels")
    if defence == "features" and attack == "secureboost":
        raise ValueError("--defence features is for the hetero LR attacks (lr_labels, lr_features)")
    guest, host = datasets.load_hetero(DATASETS[args.dataset][0])
    features = [c for c in host.columns if c != "id"]
    once = _run_once if attack == "secureboost" else _run_lr
    keys = ("model_auc", f"baseline_{metric}", f"attack_{metric}", "gain")
    rows = []
    for text in args.epsilons.split(","):
        eps = None if text.strip() == "none" else float(text)
        runs = [once(guest, host, features, eps, args, seed) for seed in range(args.seeds)]
        mean = {k: statistics.mean(r[k] for r in runs) for k in keys}
        spread = {f"{k}_sd": statistics.stdev(r[k] for r in runs) if len(runs) > 1 else 0.0
                  for k in ("model_auc", "gain")}
        rows.append({"epsilon": eps, **mean, **spread, "runs": runs})
    plain = next((r for r in rows if r["epsilon"] is None), None)
    for r in rows:
        if plain is not None:
            r["model_auc_lost"] = plain["model_auc"] - r["model_auc"]
    out = {"dataset": args.dataset, "defence": defence,
           "mechanism": args.mechanism if defence == "labels" else "feature noise", "seeds": args.seeds}
    if attack == "secureboost":
        out.update(trees=args.trees, depth=args.depth)
    else:
        out = {"attack": attack, **out, "protocol": args.protocol, "epochs": args.epochs,
               "batch_size": args.batch_size, "learning_rate": args.learning_rate}
    out.update(known_share=args.known, passive_features=len(features), table=rows)
    if getattr(args, "plot", None):
        out["plot"] = plot(out, args.plot)
    return out


def _defence(r: dict) -> str:
    return "label DP" if r.get("defence", "labels") == "labels" else "the passive's feature DP"


def _title(r: dict) -> str:
    attack = r.get("attack", "secureboost")
    if attack == "secureboost":
        return (f"{_defence(r)} against the SecureBoost passive's label inference: {r['dataset']}, {r['trees']} "
                f"trees of depth {r['depth']}, {r['mechanism']}, the passive knows {r['known_share']:.0%} of the "
                f"training labels; means over {r['seeds']} seeds")
    setting = (f"{r['dataset']}, hetero LR ({r['protocol']}, SGD, {r['epochs']} epochs, batch {r['batch_size']}, "
               f"learning rate {r['learning_rate']:g}), {r['mechanism']}")
    if attack == "lr_labels":
        return (f"{_defence(r)} against the LR passive's label inference from its gradients: {setting}, the passive "
                f"knows {r['known_share']:.0%} of the training labels; means over {r['seeds']} seeds")
    return (f"{_defence(r)} against the LR active's reconstruction of the passive's columns from its partial scores "
            f"(R² per column, averaged): {setting}, the active knows the passive's values of "
            f"{r['known_share']:.0%} of the rows (at least 2·(columns + 1)); means over {r['seeds']} seeds")


_FOOTERS = {
    "secureboost": "baseline: a logistic regression on the passive's own columns and the known labels; attack: the "
                   "same plus every (tree, depth, node) a row was in; gain = attack − baseline",
    "lr_labels": "baseline: a logistic regression on the passive's own columns and the known labels; attack: the "
                 "same plus −d̂, the residuals solved from its gradients; gain = attack − baseline",
    "lr_features": "baseline: per column the better of its mean and a ridge regression on the active's own columns "
                   "(fitted on the known rows); attack: E[x | its partial scores]; gain = attack − baseline",
}


def render(r: dict) -> str:
    attack = r.get("attack", "secureboost")
    metric = ATTACKS[attack]
    lines = [_title(r),
             f"  {'ε':>6} {'model AUC':>10} {'AUC lost':>9} {'baseline':>9} {'attack':>8} {'gain':>8} {'gain sd':>8}"]
    for row in r["table"]:
        eps = "none" if row["epsilon"] is None else f"{row['epsilon']:g}"
        lost = row.get("model_auc_lost")
        lost = "" if lost is None else f"{lost:.4f}"
        lines.append(f"  {eps:>6} {row['model_auc']:>10.4f} {lost:>9} {row[f'baseline_{metric}']:>9.4f} "
                     f"{row[f'attack_{metric}']:>8.4f} {row['gain']:>+8.4f} {row['gain_sd']:>8.4f}")
    lines.append("  " + _FOOTERS[attack])
    if r.get("plot"):
        lines.append(f"  plot: {r['plot']}")
    return "\n".join(lines)


def plot(r: dict, path) -> str:
    """The attack's gain (± its sd over seeds) and the model's AUC against ε; no DP drawn right of
    the largest ε, marked "none"."""
    from vfl.report import pyplot, save_figure
    plt = pyplot()
    table = r["table"]
    finite = sorted(row["epsilon"] for row in table if row["epsilon"] is not None)
    none_at = 2 * finite[-1] if finite else 1.0
    order = sorted(table, key=lambda row: none_at if row["epsilon"] is None else row["epsilon"])
    xs = [none_at if row["epsilon"] is None else row["epsilon"] for row in order]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.errorbar(xs, [row["gain"] for row in order], yerr=[row["gain_sd"] for row in order], marker="o", capsize=4,
                color="tab:red", label="attack gain")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xticks(xs, ["none" if row["epsilon"] is None else f"{row['epsilon']:g}" for row in order])
    ax.minorticks_off()
    ax.set_xlabel("label ε" if r.get("defence", "labels") == "labels" else "feature ε")
    ax.set_ylabel(f"attack gain ({'R²' if ATTACKS[r.get('attack', 'secureboost')] == 'r2' else 'AUC'})",
                  color="tab:red")
    twin = ax.twinx()
    twin.plot(xs, [row["model_auc"] for row in order], marker="s", color="tab:blue", label="model AUC")
    twin.set_ylabel("model AUC (held out)", color="tab:blue")
    ax.set_title(f"{r.get('attack', 'secureboost')} on {r['dataset']}, {r['seeds']} seed"
                 f"{'s' if r['seeds'] != 1 else ''}", fontsize=10)
    return save_figure(fig, path)
