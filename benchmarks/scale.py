"""A party's work on its local pool against the same work on a 1- and a 2-worker Dask cluster.

One run, this machine, in interleaved rounds (round r runs every configuration once, in turn),
medians per configuration; the clusters are ``LocalCluster`` s of single-thread worker
processes on loopback with mutual TLS (throwaway certificates), installed as the process's
backend exactly as a party's ``[compute] scheduler`` installs one. The work (sizes at
``--scale 1``):

- **encrypt**: 100,000 values, by the key holder (2048-bit Paillier, CRT);
- **X.T @ [[d]]**: 30,000 × 10 against 30,000 ciphertexts (2048-bit Paillier);
- **SecureBoost tree**: one tree, depth 5, 32 bins, on 20,000 rows × (10 active + 100 passive)
  columns, both parties in this process (their pieces all go to the backend), the default
  scheme (Okamoto–Uchiyama);
- **PSI**: 200,000 × 200,000 ids, half shared, both roles in this process.

Every configuration must give the same results: equal decryptions, products, trees and
intersections (checked). Also measured: the per-piece overhead of each cluster (empty pieces),
and each workload's throughput per worker on the 1-worker cluster (for docs/deployment.md).
On this 2-core machine the 2-worker cluster cannot be faster than the local pool (same cores);
what matters is its overhead.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np

SIZES = {"encrypt": 100_000, "matmul_rows": 30_000, "sbt_rows": 20_000, "sbt_passive": 100, "psi": 200_000}


def add_arguments(parser) -> None:
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3); medians count")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every size by this (e.g. 0.05 for a quick look)")


def _sizes(scale: float) -> dict:
    return {k: max(int(v * scale), 64 if k != "sbt_passive" else 4) for k, v in SIZES.items()}


def _noop(_secret, *_args):
    return []


# -- the work ------------------------------------------------------------------------------------
def _workloads(sizes: dict, keys: tuple) -> dict:
    """name -> (callable returning a comparable result, unit count for throughput)."""
    from benchmarks.psi import run_ours
    from parties.transport.inprocess import InProcessNetwork
    from protocols.paillier import EncryptedVector
    from vfl.secureboost import ActiveSecureBoostClassifier, PassiveSecureBoost
    pk, sk = keys
    rng = np.random.default_rng(0)
    values = rng.normal(size=sizes["encrypt"])
    x = rng.normal(size=(sizes["matmul_rows"], 10))
    d = EncryptedVector.encrypt(sk, rng.normal(size=sizes["matmul_rows"]), workers=1)
    n = sizes["sbt_rows"]
    xa, xp = rng.normal(size=(n, 10)), rng.normal(size=(n, sizes["sbt_passive"]))
    y = (xa[:, :5].sum(1) + xp[:, :10].sum(1) + rng.normal(size=n) > 0).astype(int)
    ids = [f"cust-{i}" for i in range(sizes["psi"] * 3 // 2)]
    ids_a, ids_b = ids[:sizes["psi"]], ids[sizes["psi"] // 2:]

    def encrypt():
        enc = EncryptedVector.encrypt(sk, values)
        return EncryptedVector(pk, enc.ciphertexts[:50], enc.exponent, enc.mag_bits).decrypt(sk, workers=1).tolist()

    def matmul():
        return [int(c) for c in d.matmul(x.T, frac_bits=16).ciphertexts]

    def sbt():
        net = InProcessNetwork(["bank", "insurer"], timeout=600)
        active = ActiveSecureBoostClassifier(n_estimators=1, max_depth=5, max_bins=32, verbose=False)
        passive = PassiveSecureBoost()
        net.run({"bank": lambda t: active.fit(xa, y, transport=t, passives=["insurer"]),
                 "insurer": lambda t: passive.fit(xp, transport=t, active="bank")})
        tree = active.trees_[0]
        return [tree.feature.tolist(), tree.owner.tolist(), np.round(tree.value, 12).tolist(),
                sorted((k, v[0]) for k, v in passive.lookup_.items())]

    def psi():
        return run_ours(ids_a, ids_b, workers=None)

    return {"encrypt": (encrypt, sizes["encrypt"]), "X.T @ [[d]]": (matmul, sizes["matmul_rows"] * 10),
            "SecureBoost tree": (sbt, None), "PSI": (psi, 2 * (len(ids_a) + len(ids_b)))}


# -- configurations --------------------------------------------------------------------------------
class _Config:
    def __init__(self, name: str, cluster=None, files=None):
        self.name, self.cluster, self.files, self.backend = name, cluster, files, None

    def __enter__(self):
        from parties.runtime import compute
        if self.cluster is not None:
            self.backend = compute.install(compute.ComputeConfig(scheduler=self.cluster.scheduler_address,
                                                                 **self.files))
        return self

    def __exit__(self, *exc):
        from parties.runtime import compute
        if self.backend is not None:
            compute.uninstall(self.backend)
        self.backend = None


def _overhead(pieces: int = 200) -> float:
    """Seconds per empty piece through the installed backend (submit to result)."""
    from protocols._workers import current_backend, gather
    backend = current_backend()
    start = time.perf_counter()
    gather([backend.submit(_noop, b"", i) for i in range(pieces)])
    return (time.perf_counter() - start) / pieces


def run(args) -> dict:
    from parties.runtime import compute
    from parties.runtime.dask_backend import loopback_cluster
    from protocols._workers import resolve_workers
    from protocols.paillier import generate_keypair
    sizes = _sizes(args.scale)
    keys = generate_keypair(2048)
    work = _workloads(sizes, keys)
    times: dict = {}
    results: dict = {}
    overhead: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        clusters = []
        try:
            for n in (1, 2):
                os.makedirs(os.path.join(tmp, str(n)))
                clusters.append(loopback_cluster(n, os.path.join(tmp, str(n))))
            configs = [_Config(f"local pool ({resolve_workers()} workers)"),
                       _Config("Dask, 1 worker", *clusters[0]), _Config("Dask, 2 workers", *clusters[1])]
            small = _workloads(_sizes(args.scale * 0.02), keys)
            for config in configs:                       # warm-up: start pools, build key tables
                with config, compute.job_scope():
                    for fn, _ in small.values():
                        fn()
                    if config.cluster is not None:
                        overhead[config.name] = _overhead()
            for _ in range(args.rounds):
                for config in configs:
                    with config, compute.job_scope():
                        for name, (fn, _) in work.items():
                            start = time.perf_counter()
                            out = fn()
                            times.setdefault(name, {}).setdefault(config.name, []).append(time.perf_counter() - start)
                            results.setdefault(name, {}).setdefault(config.name, out)
        finally:
            for cluster, _ in clusters:
                cluster.close(timeout=60)
    names = [c.name for c in configs]
    table = []
    for name, (_, units) in work.items():
        medians = {c: statistics.median(times[name][c]) for c in names}
        local = medians[names[0]]
        row = {"work": name, "seconds": times[name], "median": medians,
               "ratio_to_local": {c: medians[c] / local for c in names[1:]},
               "same_result": all(results[name][c] == results[name][names[0]] for c in names[1:])}
        if units:
            row["per_worker_per_second"] = units / medians[names[1]]
        table.append(row)
    return {"sizes": sizes, "rounds": args.rounds, "configs": names, "table": table,
            "overhead_seconds_per_piece": overhead}


def render(result: dict) -> str:
    names = result["configs"]
    lines = [f"the same work on the local pool and on Dask clusters (TLS, loopback), {result['rounds']} interleaved "
             f"rounds, medians; sizes {result['sizes']}",
             f"  {'work':<18}" + "".join(f"{n:>26}" for n in names) + "   same result"]
    for row in result["table"]:
        cells = [f"{row['median'][names[0]]:>25.2f}s"]
        cells += [f"{row['median'][n]:>14.2f}s ({row['ratio_to_local'][n]:.2f}x)".rjust(26) for n in names[1:]]
        lines.append(f"  {row['work']:<18}" + "".join(cells) + f"   {row['same_result']}")
    lines.append("  per-piece overhead (an empty piece, submit to result): " + ", ".join(
        f"{k} {v * 1e3:.1f} ms" for k, v in result["overhead_seconds_per_piece"].items()))
    lines.append("  one worker's throughput (1-worker cluster): " + ", ".join(
        f"{r['work']} {r['per_worker_per_second']:,.0f}/s" for r in result["table"] if "per_worker_per_second" in r))
    return "\n".join(lines)
