"""Hetero SecureBoost over real party processes, against plain XGBoost and phe.

``--rows R --passive-features P``: a synthetic table instead (the active holds the label and 10
features, one passive P features; the label follows a logistic model of 5 active and 10 passive columns),
to see how the cost follows the shape. Every run reports seconds per tree split into phases —
the active's encryption and decryption, the passive's histogram additions and packing (with
re-randomization), and the rest (communication, split bookkeeping) — beside the floor of each
phase: its operation count times a unit cost measured in the same run, on one core.

``--scheme both`` (the default) trains twice in the same run, with 2048-bit Paillier and with
2048-bit Okamoto–Uchiyama (what ``scheme = "auto"`` picks when a row's slots fit), and reports
the ratio of their seconds per tree; ``paillier`` or ``ou`` trains once.

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
from protocols.paillier import generate_keypair, generate_ou_keypair
from protocols.paillier.interop import to_phe_private, to_phe_public
from vfl.jobs.baseline import centralized_baseline, joined_split
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
    parser.add_argument("--rows", type=int, help="a synthetic table with this many training rows (and a quarter "
                                                  "as many held out) instead of default-credit")
    parser.add_argument("--passive-features", type=int, default=100, help="the synthetic passive's columns")
    parser.add_argument("--scheme", choices=("both", "paillier", "ou"), default="both",
                        help="the homomorphic scheme (default: both, one after the other, compared)")
    parser.add_argument("--precision", action="store_true",
                        help="instead: held-out AUC of the same trees grown in the clear with 24, 16, 12 and 8 "
                             "fractional bits for g and h, on default-credit, breast and a synthetic table")


def _sampling(args) -> dict:
    """The job's sampling hyperparameters (only those that differ from the defaults)."""
    out = {"subsample": args.subsample, "colsample_bytree": args.colsample}
    out = {k: v for k, v in out.items() if v < 1.0}
    if args.goss:
        out["goss"] = True
    return {**out, "random_state": 0} if out else {}


def _synthetic(rows: int, passive_features: int, out: str) -> str:
    """Two CSV files and a job file for a synthetic table; returns the job file's path."""
    import pandas as pd
    rng = np.random.default_rng(7)
    rows = round(rows / 0.8)                          # --rows counts training rows; 20% are held out
    xa, xp = rng.normal(size=(rows, 10)), rng.normal(size=(rows, passive_features))
    k = min(passive_features, 10)            # the label depends on 5 active and up to 10 passive columns
    z = 0.8 * np.tanh(xa[:, :5]).sum(axis=1) + 0.5 * xp[:, :k].sum(axis=1) / np.sqrt(k / 4)
    y = (z + rng.logistic(size=rows) > 0).astype(int)
    ids = np.arange(rows)
    pd.DataFrame({"id": ids, **{f"a{j}": xa[:, j] for j in range(10)}, "y": y}).to_csv(f"{out}/bank.csv", index=False)
    pd.DataFrame({"id": ids, **{f"p{j}": xp[:, j] for j in range(passive_features)}}).to_csv(
        f"{out}/insurer.csv", index=False)
    job = f"{out}/synthetic.toml"
    with open(job, "w") as f:
        f.write('[job]\nname = "synthetic"\nmodel = "secureboost"\n[evaluation]\ntest_size = 0.2\nseed = 42\n'
                '[parties.bank]\nrole = "active"\ndata = "bank.csv"\nlabel = "y"\n'
                '[parties.insurer]\nrole = "passive"\ndata = "insurer.csv"\n')
    return job


def _spec(args, out: str, scheme: str):
    if args.rows:
        job, name = _synthetic(args.rows, args.passive_features, out), "synthetic-sbt-bench"
    else:
        job, name = str(importlib.resources.files("vfl.datasets") / "jobs" / "credit_lr.toml"), "credit-sbt-bench"
    spec = execute.local_spec(load_job(job))
    return dataclasses.replace(spec, name=name, model="secureboost", output_dir=out, hyperparameters={
        "n_estimators": args.trees, "max_depth": args.depth, "max_bins": args.bins, "learning_rate": 0.3,
        "scheme": scheme, **_sampling(args)})


def _ours(args, scheme: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        spec = _spec(args, out, scheme)
        frames = {p.name: read_table(p.data, p.name, p.id_column) for p in spec.parties}
        outcome = execute.train(spec, frames[spec.active.name], args.parties, verbose=False)
        result = outcome.result
        baseline = centralized_baseline(spec, frames, result)
    return {"rows": result.n_train, "tree_seconds": result.summary.figures["tree_seconds"],
            "auc": result.evaluation.metrics["auc"], "psi_seconds": result.seconds["psi"],
            "baseline_auc": baseline.evaluation.metrics["auc"], "baseline": baseline.model,
            "bytes_sent": outcome.bytes_sent, "passive_features": len(outcome.passives["insurer"].features),
            "phases": {"active": result.summary.figures.get("phases", {}),
                       "passive": getattr(outcome.passives["insurer"], "figures", {}).get("phases", {})},
            "joined": joined_split(spec, frames, result.train_ids, result.test_ids)}


def _unit_costs(scheme: str) -> dict:
    """One core, 2048-bit key of ``scheme``: the operations each phase is made of."""
    import gmpy2
    pk, sk = (generate_ou_keypair if scheme == "ou" else generate_keypair)(2048)
    n2, rng = pk.modulus, np.random.default_rng(0)
    cts = [gmpy2.mpz(int.from_bytes(rng.bytes(pk.ciphertext_bytes), "big")) % n2 for _ in range(64)]
    t0 = time.perf_counter()
    acc = cts[0]
    for _ in range(20):
        for c in cts:
            acc = acc * c % n2
    modmul = (time.perf_counter() - t0) / (20 * len(cts))
    t0 = time.perf_counter()
    for c in cts[:20]:
        gmpy2.powmod(c, 1 << 64, n2)
    square = (time.perf_counter() - t0) / (20 * 64)
    pk.statistical_randomizers(1)
    t0 = time.perf_counter()
    pk.statistical_randomizers(64)
    rerandomize = (time.perf_counter() - t0) / 64
    plain = [gmpy2.mpz(int.from_bytes(rng.bytes(pk.capacity_bits // 8), "big")) for _ in range(64)]
    enc = sk.raw_encrypt_many(plain)
    t0 = time.perf_counter()
    enc = sk.raw_encrypt_many(plain)
    encrypt = (time.perf_counter() - t0) / len(plain)
    t0 = time.perf_counter()
    sk.raw_decrypt_many(enc)
    decrypt = (time.perf_counter() - t0) / len(enc)
    return {"modmul": modmul, "square": square, "rerandomize": rerandomize, "encrypt": encrypt, "decrypt": decrypt}


def _phase_table(phases: dict, trees: int, units: dict, tree_seconds: float) -> list[dict]:
    """Seconds per tree of each phase beside its single-core floor (count × unit cost)."""
    a, p = phases.get("active", {}), phases.get("passive", {})
    a_s, a_n = a.get("seconds", {}), a.get("counts", {})
    p_s, p_n = p.get("seconds", {}), p.get("counts", {})
    rows = [("encryption (active)", a_s.get("encryption", 0), a_n.get("encryption", 0) * units["encrypt"]),
            ("histogram additions (passive)", p_s.get("histogram additions", 0),
             p_n.get("histogram additions", 0) * units["modmul"]),
            ("packing + re-randomization (passive)", p_s.get("packing", 0),
             p_n.get("packed squarings", 0) * units["square"] + p_n.get("ciphertexts sent", 0) * units["rerandomize"]),
            ("decryption (active)", a_s.get("decryption", 0), a_n.get("decryption", 0) * units["decrypt"])]
    out = [{"phase": name, "seconds_per_tree": seconds / trees, "floor_per_tree": floor / trees}
           for name, seconds, floor in rows]
    out.append({"phase": "the rest (communication, splits, waiting)",
                "seconds_per_tree": max(tree_seconds - sum(r["seconds_per_tree"] for r in out), 0.0),
                "floor_per_tree": None})
    return out


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


def _grow_plain(x, y, xt, frac: int, trees: int, depth: int, bins: int) -> np.ndarray:
    """Held-out scores of SecureBoost's trees grown in the clear with ``frac`` fractional bits
    (the same binning, fixed-point g/h and split functions as the federated active)."""
    from vfl.secureboost.binning import bin_columns
    from vfl.secureboost.splits import TreeParams, best_entry, candidate_bins, leaf_value, own_entries
    codes, edges = bin_columns(x, bins)
    nb = [len(e) + 1 for e in edges]
    p = TreeParams(max_depth=depth, min_child_weight=1.0, reg_lambda=1.0, gamma=0.0, frac_bits=frac)
    base = np.log(y.mean() / (1 - y.mean()))
    s, st = np.full(len(y), base), np.full(len(xt), base)
    for _ in range(trees):
        prob = 1 / (1 + np.exp(-s))
        gi = np.rint(np.ldexp((prob - y)[:, None], frac)).astype(np.int64)
        hi = np.rint(np.ldexp((prob * (1 - prob))[:, None], frac)).astype(np.int64)
        node, node_t = np.zeros(len(y), np.int64), np.zeros(len(xt), np.int64)
        for d in range(depth + 1):
            for k in np.unique(node[node >= 0]):
                rows, test = np.flatnonzero(node == k), np.flatnonzero(node_t == k)
                g, h = gi[rows].sum(0), hi[rows].sum(0)
                best = None
                if d < depth and h.sum() * 2.0 ** -frac >= 2 and (h > 0).all() and len(rows) >= 2:
                    for f, gl, hl in own_entries(codes[rows], gi[rows], hi[rows], nb, range(x.shape[1])):
                        found = best_entry(gl, hl, g, h, p)
                        if found is not None and (best is None or found.gain > best[0].gain):
                            best = (found, f)
                if best is None:
                    value = float(leaf_value(g, h, p, 0.3)[0])
                    s[rows] += value
                    st[test] += value
                    node[rows], node_t[test] = -1, -1
                    continue
                found, f = best
                thr = np.inf if found.entry == 0 else edges[f][candidate_bins(codes[rows, f], nb[f])[found.entry - 1]]
                for idx, arr, v in ((rows, node, x[rows, f]), (test, node_t, xt[test, f])):
                    with np.errstate(invalid="ignore"):
                        left = np.where(np.isnan(v), found.default_left, v <= thr)
                    arr[idx] = np.where(left, 2 * k + 1, 2 * k + 2)
            if (node < 0).all():
                break
    return st


def _precision(args) -> dict:
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from vfl import datasets
    tables = []
    for name in ("default_credit", "breast"):
        guest, host = datasets.load_hetero(name)
        joined = guest.merge(host, on="id")
        tables.append((name, joined.drop(columns=["id", "y"]).to_numpy(float), joined["y"].to_numpy()))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(25000, 110))
    z = 0.8 * np.tanh(x[:, :5]).sum(axis=1) + 0.5 * x[:, 10:20].sum(axis=1) / np.sqrt(2.5) \
        + x[:, 20:] @ rng.normal(size=90) * 0.05
    tables.append(("synthetic 25000 × 110", x, (z + rng.logistic(size=len(z)) > 0).astype(int)))
    out = []
    for name, x, y in tables:
        xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=42, stratify=y)
        aucs = {f: roc_auc_score(yte, _grow_plain(xtr, ytr, xte, f, args.trees, args.depth, args.bins))
                for f in (24, 16, 12, 8)}
        out.append({"table": name, "rows": len(xtr), "auc": aucs})
    return {"precision": out, "trees": args.trees, "depth": args.depth, "bins": args.bins}


def run(args: argparse.Namespace) -> dict:
    if args.precision:
        return _precision(args)
    schemes = ("paillier", "ou") if args.scheme == "both" else (args.scheme,)
    runs = {}
    for scheme in schemes:
        ours = _ours(args, scheme)
        units = _unit_costs(scheme)
        ours.update(unit_costs=units, tree_seconds_median=statistics.median(ours["tree_seconds"]),
                    phase_table=_phase_table(ours["phases"], len(ours["tree_seconds"]), units,
                                             statistics.mean(ours["tree_seconds"])))
        runs[scheme] = ours
    ours = runs[schemes[-1]]
    xgb = _xgboost(args, ours["joined"])
    for r in runs.values():
        r.pop("joined")
    per_tree = ours["tree_seconds_median"]
    share = 0.3 if args.goss else args.subsample          # rows whose g, h are encrypted and summed
    phe = _phe(int(ours["rows"] * share), ours["passive_features"], args.depth, args.bins)
    dataset = (f"synthetic, active 10 + passive {args.passive_features} features" if args.rows
               else "default_credit (FATE hetero split)")
    out = {"dataset": dataset, "rows": ours["rows"], "trees": args.trees, "runs": runs,
           "depth": args.depth, "bins": args.bins, "sampling": _sampling(args),
           "ours_scheme": schemes[-1], "ours_tree_seconds": per_tree,
           "xgboost": xgb, "phe": phe, "ratio_vs_phe": phe["tree_seconds_scaled"] / per_tree,
           "slowdown_vs_xgboost": sum(ours["tree_seconds"]) / xgb["seconds"]}
    if len(runs) == 2:
        out["paillier_over_ou"] = runs["paillier"]["tree_seconds_median"] / runs["ou"]["tree_seconds_median"]
    return out


def render(result: dict) -> str:
    if "precision" in result:
        lines = [f"SecureBoost's trees grown in the clear ({result['trees']} trees, depth {result['depth']}, "
                 f"{result['bins']} bins): held-out AUC by fractional bits of g and h (rounded to nearest)"]
        for r in result["precision"]:
            ref = r["auc"][24]
            lines.append(f"  {r['table']:<24} {r['rows']:>6} rows  " + "  ".join(
                f"{f} bits {a:.4f} ({a - ref:+.4f})" for f, a in r["auc"].items()))
        return "\n".join(lines)
    xgb, phe = result["xgboost"], result["phe"]
    lines = [f"hetero SecureBoost, {result['dataset']}, {result['rows']} training rows, 2 parties as processes, "
             f"2048-bit keys, {result['trees']} trees, depth {result['depth']}, {result['bins']} bins"
             + (f", sampling {result['sampling']}" if result.get("sampling") else "")]
    for scheme, ours in result["runs"].items():
        lines += [
            f"  {_SCHEME_NAMES[scheme]}: {ours['tree_seconds_median']:.1f} s per tree (median of "
            f"{', '.join(f'{s:.1f}' for s in ours['tree_seconds'])}); held-out AUC {ours['auc']:.4f} "
            f"(centralized {ours['baseline_auc']:.4f}, {ours['baseline']}); PSI {ours['psi_seconds']:.1f} s; "
            "sent " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in ours["bytes_sent"].items()),
            "    per tree, by phase (floor: operation count × unit cost measured now, one core):",
            *[f"      {r['phase']:<42} {r['seconds_per_tree']:7.2f} s"
              + (f"   floor {r['floor_per_tree']:6.2f} s" if r["floor_per_tree"] is not None else "")
              for r in ours["phase_table"]]]
    if "paillier_over_ou" in result:
        lines.append(f"  Paillier / OU seconds per tree: {result['paillier_over_ou']:.2f}x")
    return "\n".join(lines + [
        f"  plain XGBoost (hist, one thread, same trees/depth/bins): {xgb['seconds']:.2f} s in all, "
        f"AUC {xgb['auc']:.4f}; "
        f"ours ({result['ours_scheme']}) is {result['slowdown_vs_xgboost']:.0f}x slower in total",
        f"  phe, same protocol: {phe['tree_seconds_scaled']:.0f} s per tree (unit costs measured here and scaled; "
        f"encrypt {phe['encrypt_s'] * 1e3:.1f} ms, add {phe['add_s'] * 1e6:.0f} us, "
        f"decrypt {phe['decrypt_s'] * 1e3:.1f} ms); "
        f"ratio {result['ratio_vs_phe']:.1f}x ({result['ours_scheme']})",
    ])


_SCHEME_NAMES = {"paillier": "Paillier", "ou": "Okamoto–Uchiyama"}
