"""Hetero SecureBoost on default-credit over real party processes, against plain XGBoost and phe.

Ours: the bundled 2-party default-credit split (FATE's), 80% of 30000 rows for training, depth 5,
32 bins, 2048-bit keys, each party its own process on loopback with CURVE; seconds per tree as
measured by the active party. Plain XGBoost (``xgboost``, ``tree_method="hist"``, same trees,
depth, bins, learning rate and L2) on the joined training table in this process. phe: the same
protocol's cryptographic work per tree — two encryptions per row (phe cannot pack g and h), one
ciphertext addition per (row, passive feature, level) for the histograms, and a decryption per
(node, passive feature, bin, g/h) — with unit costs measured here on a few values and scaled;
it pays no communication and no packing, which favours phe's count of operations.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.resources
import statistics
import tempfile
import time

import numpy as np

from parties.jobs import execute
from protocols.paillier import generate_keypair
from protocols.paillier.interop import to_phe_private, to_phe_public
from vfl.jobs.baseline import joined_split
from vfl.jobs.data import read_table
from vfl.jobs.spec import load_job


def add_arguments(parser) -> None:
    parser.add_argument("--trees", type=int, default=5, help="trees of the federated run (default 5)")
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--bins", type=int, default=32)
    parser.add_argument("--subsample", type=float, default=1.0, help="row share per tree (XGBoost gets the same)")
    parser.add_argument("--colsample", type=float, default=1.0, help="column share per tree (XGBoost too)")
    parser.add_argument("--goss", action="store_true",
                        help="GOSS row sampling (top 0.2 + 0.1 of the rest); XGBoost has no GOSS and uses all rows")


def _sampling(args) -> dict:
    """The job's sampling hyperparameters (only those that differ from the defaults)."""
    out = {"subsample": args.subsample, "colsample_bytree": args.colsample}
    out = {k: v for k, v in out.items() if v < 1.0}
    if args.goss:
        out["goss"] = True
    return {**out, "random_state": 0} if out else {}


def _spec(args, out: str):
    job = importlib.resources.files("vfl.datasets") / "jobs" / "credit_lr.toml"
    spec = execute.local_spec(load_job(str(job)))
    return dataclasses.replace(spec, name="credit-sbt-bench", model="secureboost", output_dir=out, hyperparameters={
        "n_estimators": args.trees, "max_depth": args.depth, "max_bins": args.bins, "learning_rate": 0.3,
        **_sampling(args)})


def _ours(args) -> dict:
    with tempfile.TemporaryDirectory() as out:
        spec = _spec(args, out)
        frames = {p.name: read_table(p.data, p.name, p.id_column) for p in spec.parties}
        outcome = execute.train(spec, frames[spec.active.name], execute.Parties(local=True), verbose=False)
    result = outcome.result
    return {"rows": result.n_train, "tree_seconds": result.summary.figures["tree_seconds"],
            "auc": result.evaluation.metrics["auc"], "psi_seconds": result.seconds["psi"],
            "bytes_sent": outcome.bytes_sent, "passive_features": len(outcome.passives["insurer"].features),
            "joined": joined_split(spec, frames, result.train_ids, result.test_ids)}


def _xgboost(args, joined) -> dict:
    import xgboost

    from vfl.metrics import classification_metrics
    x_train, y_train, x_test, y_test = joined
    model = xgboost.XGBClassifier(n_estimators=args.trees, max_depth=args.depth, max_bin=args.bins,
                                  learning_rate=0.3, reg_lambda=1.0, tree_method="hist", n_jobs=1,
                                  subsample=args.subsample, colsample_bytree=args.colsample, random_state=0)
    start = time.perf_counter()
    model.fit(x_train, y_train)
    seconds = time.perf_counter() - start
    auc = classification_metrics(y_test, model.predict_proba(x_test)[:, 1])["auc"]
    return {"seconds": seconds, "auc": auc}


def _phe(rows: int, features: int, depth: int, bins: int) -> dict:
    pk, sk = generate_keypair(2048)
    ppub = to_phe_public(pk)
    ppriv = to_phe_private(sk, ppub)
    vals = np.random.default_rng(0).normal(size=40).tolist()
    t0 = time.perf_counter()
    cts = [ppub.encrypt(v) for v in vals]
    enc = (time.perf_counter() - t0) / len(vals)
    t0 = time.perf_counter()
    acc = cts[0]
    for _ in range(20):
        for c in cts:
            acc = acc + c
    add = (time.perf_counter() - t0) / (20 * len(cts))
    t0 = time.perf_counter()
    for c in cts[:20]:
        ppriv.decrypt(c)
    dec = (time.perf_counter() - t0) / 20
    nodes = 2 ** depth - 1
    per_tree = 2 * rows * enc + rows * features * depth * add + nodes * features * bins * 2 * dec
    return {"encrypt_s": enc, "add_s": add, "decrypt_s": dec, "tree_seconds_scaled": per_tree}


def run(args: argparse.Namespace) -> dict:
    ours = _ours(args)
    xgb = _xgboost(args, ours.pop("joined"))
    per_tree = statistics.median(ours["tree_seconds"])
    share = 0.3 if args.goss else args.subsample          # rows whose g, h are encrypted and summed
    phe = _phe(int(ours["rows"] * share), ours["passive_features"], args.depth, args.bins)
    total = sum(ours["tree_seconds"])
    return {"dataset": "default_credit (FATE hetero split)", "rows": ours["rows"], "trees": args.trees,
            "depth": args.depth, "bins": args.bins, "sampling": _sampling(args), "ours": ours,
            "ours_tree_seconds": per_tree,
            "xgboost": xgb, "phe": phe, "ratio_vs_phe": phe["tree_seconds_scaled"] / per_tree,
            "slowdown_vs_xgboost": total / xgb["seconds"]}


def render(result: dict) -> str:
    ours, xgb, phe = result["ours"], result["xgboost"], result["phe"]
    return "\n".join([
        f"hetero SecureBoost, {result['dataset']}, {result['rows']} training rows, 2 parties as processes, "
        f"2048-bit Paillier, {result['trees']} trees, depth {result['depth']}, {result['bins']} bins"
        + (f", sampling {result['sampling']}" if result.get("sampling") else ""),
        f"  ours: {result['ours_tree_seconds']:.1f} s per tree (median of "
        f"{', '.join(f'{s:.1f}' for s in ours['tree_seconds'])}); held-out AUC {ours['auc']:.4f}; "
        f"PSI {ours['psi_seconds']:.1f} s",
        f"  plain XGBoost (hist, one thread, same trees/depth/bins): {xgb['seconds']:.2f} s in all, "
        f"AUC {xgb['auc']:.4f}; "
        f"ours is {result['slowdown_vs_xgboost']:.0f}x slower in total",
        f"  phe, same protocol: {phe['tree_seconds_scaled']:.0f} s per tree (unit costs measured here and scaled; "
        f"encrypt {phe['encrypt_s'] * 1e3:.1f} ms, add {phe['add_s'] * 1e6:.0f} us, "
        f"decrypt {phe['decrypt_s'] * 1e3:.1f} ms); "
        f"ratio {result['ratio_vs_phe']:.1f}x",
        "  bytes sent: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in ours["bytes_sent"].items()),
    ])
