"""Label DP against the SecureBoost passive's label-inference attack: for each ε (and none),
the model's held-out AUC and the attack's gain over an attacker that uses no protocol output
(:mod:`vfl.attacks.secureboost`), means over several seeds, in one run.

Each seed trains a 2-party SecureBoost job through the job flow, both parties in this process
over the in-process transport (2048-bit keys), and records what the passive received. The
passive knows ``--known`` of the training labels; the attack and the baseline are scored on
the rest.
"""
from __future__ import annotations

import dataclasses
import statistics
import tempfile

DATASETS = {"breast": ("breast", "y"), "credit": ("default_credit", "y")}


def add_arguments(parser) -> None:
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="breast")
    parser.add_argument("--epsilons", default="none,0.5,2,8", help="comma-separated ε values; none: no label DP")
    parser.add_argument("--mechanism", choices=("randomized_response", "rr_with_prior"), default="randomized_response")
    parser.add_argument("--seeds", type=int, default=3, help="training runs (and attacker picks) per ε")
    parser.add_argument("--trees", type=int, default=3)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--known", type=float, default=0.01, help="share of training labels the passive knows")


def _run_once(guest, host, features, eps, args, seed: int) -> dict:
    from parties.transport.inprocess import InProcessNetwork
    from vfl.attacks.secureboost import label_inference
    from vfl.family import PassiveCaps
    from vfl.jobs import active, passive
    from vfl.jobs.spec import PassiveRequest, parse_job
    raw = {"job": {"name": "privacy-bench", "model": "secureboost"},
           "evaluation": {"test_size": 0.2, "seed": seed},
           "model": {"n_estimators": args.trees, "max_depth": args.depth, "random_state": seed},
           "parties": {"bank": {"role": "active", "data": "g.csv", "label": "y"},
                       "lab": {"role": "passive", "data": "h.csv", "alias": "lab"}}}
    if eps is not None:
        raw["privacy"] = {"label_epsilon": eps, "mechanism": args.mechanism}
    with tempfile.TemporaryDirectory() as out:
        spec = dataclasses.replace(parse_job(raw), output_dir=out)
        request = PassiveRequest.parse(spec.passive_request(), "lab")
        net = InProcessNetwork(["bank", "lab"], timeout=3600, record=True)
        results = net.run({
            "bank": lambda t: active.train(t, spec, guest, verbose=False),
            "lab": lambda t: passive.train(t, request, host, active="bank", model_path=f"{out}/lab.json",
                                           caps=PassiveCaps(max_rounds=args.trees))})
    result = results["bank"]
    ids = result.train_ids
    own = host.assign(id=host["id"].astype(str)).set_index("id").loc[ids, features]
    y = guest.assign(id=guest["id"].astype(str)).set_index("id").loc[ids, "y"]
    attack = label_inference(net["lab"].received, own, y, known_share=args.known, seed=seed)
    return {"model_auc": result.evaluation.metrics["auc"], **attack}


def run(args) -> dict:
    from vfl import datasets
    guest, host = datasets.load_hetero(DATASETS[args.dataset][0])
    features = [c for c in host.columns if c != "id"]
    rows = []
    for text in args.epsilons.split(","):
        eps = None if text.strip() == "none" else float(text)
        runs = [_run_once(guest, host, features, eps, args, seed) for seed in range(args.seeds)]
        mean = {k: statistics.mean(r[k] for r in runs) for k in ("model_auc", "baseline_auc", "attack_auc", "gain")}
        spread = {f"{k}_sd": statistics.stdev(r[k] for r in runs) if len(runs) > 1 else 0.0
                  for k in ("model_auc", "gain")}
        rows.append({"label_epsilon": eps, **mean, **spread, "runs": runs})
    plain = next((r for r in rows if r["label_epsilon"] is None), None)
    for r in rows:
        if plain is not None:
            r["model_auc_lost"] = plain["model_auc"] - r["model_auc"]
    return {"dataset": args.dataset, "mechanism": args.mechanism, "seeds": args.seeds, "trees": args.trees,
            "depth": args.depth, "known_share": args.known, "passive_features": len(features), "table": rows}


def render(r: dict) -> str:
    lines = [f"label DP against the SecureBoost passive's label inference: {r['dataset']}, {r['trees']} trees of "
             f"depth {r['depth']}, {r['mechanism']}, the passive knows {r['known_share']:.0%} of the training "
             f"labels; means over {r['seeds']} seeds",
             f"  {'ε':>6} {'model AUC':>10} {'AUC lost':>9} {'baseline':>9} {'attack':>8} {'gain':>8} {'gain sd':>8}"]
    for row in r["table"]:
        eps = "none" if row["label_epsilon"] is None else f"{row['label_epsilon']:g}"
        lost = row.get("model_auc_lost")
        lost = "" if lost is None else f"{lost:.4f}"
        lines.append(f"  {eps:>6} {row['model_auc']:>10.4f} {lost:>9} {row['baseline_auc']:>9.4f} "
                     f"{row['attack_auc']:>8.4f} {row['gain']:>+8.4f} {row['gain_sd']:>8.4f}")
    lines.append("  baseline: a logistic regression on the passive's own columns and the known labels; attack: the "
                 "same plus every (tree, depth, node) a row was in; gain = attack − baseline")
    return "\n".join(lines)
