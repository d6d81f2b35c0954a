"""The secret-sharing engine against the same protocols on python-paillier (phe), per core.

Dealer-free Beaver triples among two parties in one process, one worker (``workers=1``): the
two parties' threads take turns on one core, so count / seconds is a per-core rate of the whole
generation (both parties' work). phe does the same steps the way FATE's SPDZ does them (each
party encrypts its share with ``phe``; the peer multiplies homomorphically, adds a mask,
re-randomizes; the owner decrypts), one value per call, on a subsample that the report names and
scales linearly. Online Beaver products use dealt triples (the online phase does not depend on
where triples come from). Pearson runs a real job over party processes (``vfl run --local``).
The published anchors are quoted for context, not measured here.
"""
from __future__ import annotations

import os
import secrets
import tempfile
import time

import numpy as np

from protocols.mpc.ring import RING_BITS, encode, random_ring, share
from protocols.mpc.triples import TripleShape, TrustedDealer
from protocols.paillier import generate_keypair
from protocols.paillier.interop import to_phe_private, to_phe_public

SIZES = {
    "full": dict(elementwise=1000, phe_elementwise=40, m=10000, k=20, n=1, phe_rows=20, online=200_000,
                 pearson="default_credit", ot_elementwise=30000),
    "quick": dict(elementwise=60, phe_elementwise=6, m=400, k=20, n=1, phe_rows=4, online=20_000, pearson="breast",
                  ot_elementwise=2000),
}

ANCHORS = [  # published, other hardware: 32 vCPU per party, 100 Mbps, 50 ms latency
    "SecretFlow: 10^8 multiplications — Cheetah (2 parties, no dealer) 3836 s, semi2k with a trusted party 522 s",
    "SecretFlow: SS-SGD LR 800k x 1500 per party — Cheetah 1245 s, semi2k 694 s",
    "FATE: SPDZ triples from Paillier without a dealer, 2 parties only",
]


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test, not for figures)")
    parser.add_argument("--no-pearson", action="store_true", help="skip the Pearson job over processes")
    parser.add_argument("--sslr", action="store_true", help="also train SS logistic regression on the Pearson "
                        "dataset's shared rows (2 parties in process) beside scikit-learn's optimum")
    parser.add_argument("--sslr-iterations", type=int, default=10, help="with --sslr")


def _two_party(fn_by_party: dict) -> dict:
    from parties.transport.inprocess import InProcessNetwork
    return InProcessNetwork(list(fn_by_party), timeout=3600).run(fn_by_party)


def ours_triples(shape: TripleShape, count: int, keys: dict, source: str = "paillier") -> float:
    """Seconds for ``count`` dealer-free triples of ``shape`` (both parties, one worker), their
    from ``source`` ("paillier" or "ot")."""
    from vfl.mpc import MpcSession

    def role(name):
        def run(t):
            s = MpcSession(t, list(keys), private_key=keys[name], workers=1, triples=source)
            s.private_key                       # noqa: B018 - the key exists before timing
            start = time.perf_counter()
            s.generate_triples(shape, count)
            return time.perf_counter() - start
        return run
    out = _two_party({p: role(p) for p in keys})
    return max(out.values())


def _phe_cross(ppub_j, ppriv_j, xs_j: list[int], ys_i: list[int]) -> list[int]:
    """One cross term the phe way: j encrypts its values, i multiplies, masks and re-randomizes,
    j decrypts. Returns j's shares (i's are the negated masks)."""
    cts = [ppub_j.encrypt(int(v)) for v in xs_j]                       # phe obfuscates on encrypt
    replies = []
    for c, y in zip(cts, ys_i):
        r = secrets.randbits(RING_BITS * 2 + 64)
        out = c * int(y) + r
        out.obfuscate()
        replies.append(out)
    return [ppriv_j.decrypt(c) % (1 << RING_BITS) for c in replies]


def phe_elementwise_seconds(count: int, keys: dict) -> float:
    """Seconds per elementwise triple with phe (two cross terms), measured on ``count``."""
    (p0, k0), (p1, k1) = keys.items()
    pub = {p0: to_phe_public(k0.public_key), p1: to_phe_public(k1.public_key)}
    priv = {p0: to_phe_private(k0, pub[p0]), p1: to_phe_private(k1, pub[p1])}
    a = {p: random_ring(count).tolist() for p in keys}
    b = {p: random_ring(count).tolist() for p in keys}
    start = time.perf_counter()
    _phe_cross(pub[p1], priv[p1], b[p1], a[p0])      # a_0·b_1: party 1 holds the key
    _phe_cross(pub[p0], priv[p0], b[p0], a[p1])      # a_1·b_0
    return (time.perf_counter() - start) / count


def phe_matrix_seconds(m: int, k: int, n: int, rows: int, keys: dict) -> float:
    """Seconds for an m×k by k×n triple with phe, FATE's way (Enc(b_j), then a_i @ Enc(b_j) per
    row, masked, re-randomized, decrypted), measured on ``rows`` rows and scaled to ``m``."""
    (p0, k0), (p1, k1) = keys.items()
    total = 0.0
    for holder in (k1, k0):                           # the two cross terms
        ppub = to_phe_public(holder.public_key)
        ppriv = to_phe_private(holder, ppub)
        bj = random_ring((k, n)).tolist()
        ai = random_ring((rows, k)).tolist()
        start = time.perf_counter()
        enc = [[ppub.encrypt(int(v)) for v in row] for row in bj]
        for i in range(rows):
            for j in range(n):
                acc = enc[0][j] * int(ai[i][0])
                for r in range(1, k):
                    acc = acc + enc[r][j] * int(ai[i][r])
                acc = acc + secrets.randbits(2 * RING_BITS + 5 + 64)
                acc.obfuscate()
                ppriv.decrypt(acc)
        total += time.perf_counter() - start
    return total * m / rows


def ot_triples(count: int, keys: dict) -> dict:
    """Dealer-free elementwise triples from OT extension (protocols/mpc/ot.py), through the
    session over the in-process transport like the Paillier ones, base OTs included; the bytes
    that cross are counted from the messages' sizes."""
    from protocols.mpc.ot import KAPPA, _Stream
    from vfl.mpc import OLE_CHUNK
    seconds = ours_triples(TripleShape("elementwise", count), 1, keys, source="ot")
    chunks = [min(OLE_CHUNK, count - lo) for lo in range(0, count, OLE_CHUNK)]
    sent = 2 * sum(KAPPA * _Stream.bytes_for(64 * n) + 8 * 64 * n for n in chunks) + 2 * (1 + KAPPA) * 32
    return {"count": count, "seconds": seconds, "per_s": count / seconds, "bytes_per_triple": sent / count}


def online_mults(count: int) -> float:
    """Beaver multiplications per second, online only (2 parties, in process, dealt triples)."""
    from vfl.mpc import MpcSession
    shape = TripleShape("elementwise", count)
    dealt = TrustedDealer(2).deal(shape)
    x, y = share(encode(np.ones(count)), 2), share(encode(np.full(count, 2.0)), 2)

    def role(i):
        def run(t):
            s = MpcSession(t, ["p0", "p1"], workers=1)
            s.triples.add(dealt[i])
            start = time.perf_counter()
            s.truncate(s.multiply(x[i], y[i], tag="m"), 16, tag="t")
            return time.perf_counter() - start
        return run
    out = _two_party({"p0": role(0), "p1": role(1)})
    return count / max(out.values())


def sslr_fit(dataset: str, iterations: int, alpha: float = 1e-4) -> dict:
    """SS logistic regression (vfl/sslr.py) on every shared row of ``dataset``, both parties in
    this process (in-process transport, 2048-bit keys), against scikit-learn's optimum of the same
    objective on the joined table: training loss, AUC on those rows, seconds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from vfl import datasets
    from vfl.mpc import MpcSession
    from vfl.sslr import fit_shared
    guest, host = datasets.load_hetero(dataset)
    guest, host = (f.assign(id=f["id"].astype(str)).set_index("id") for f in (guest, host))
    ids = guest.index.intersection(host.index)
    y = guest.loc[ids, "y"].to_numpy(float)
    blocks = {"bank": guest.loc[ids].drop(columns="y").to_numpy(float), "lab": host.loc[ids].to_numpy(float)}
    blocks = {k: (v - v.mean(0)) / v.std(0) for k, v in blocks.items()}
    dims = {k: v.shape[1] for k, v in blocks.items()}

    def role(name):
        def run(t):
            start = time.perf_counter()
            fit = fit_shared(MpcSession(t, ["bank", "lab"], workers=1), blocks[name], y if name == "bank" else None,
                             dims, alpha=alpha, iterations=iterations)
            return fit, time.perf_counter() - start
        return run
    out = _two_party({p: role(p) for p in ("bank", "lab")})
    x = np.hstack([blocks["bank"], blocks["lab"]])
    z = x @ np.concatenate([out["bank"][0].coef, out["lab"][0].coef]) + out["bank"][0].intercept
    reference = LogisticRegression(C=1 / (alpha * len(y)), max_iter=10000, tol=1e-10).fit(x, y)
    zs = reference.decision_function(x)

    def loss(scores):
        return float(np.mean(np.logaddexp(0, scores) - y * scores))
    return {"dataset": dataset, "rows": len(y), "columns": dims, "iterations": iterations, "alpha": alpha,
            "seconds": max(s for _, s in out.values()), "loss": loss(z), "sklearn_loss": loss(zs),
            "offline_s": max(f.timing["offline"] for f, _ in out.values()),
            "setup_s": max(f.timing["setup"] for f, _ in out.values()),
            "online_s_per_iteration": max(sum(f.timing["online"]) for f, _ in out.values()) / iterations,
            "auc": float(roc_auc_score(y, z)), "sklearn_auc": float(roc_auc_score(y, zs)),
            "triples": out["bank"][0].triples}


def pearson_job(dataset: str) -> dict:
    """A Pearson job over party processes (`vfl run --local`): its report's seconds."""
    from parties.commands.run import run_job_file
    from vfl import datasets
    with tempfile.TemporaryDirectory() as tmp:
        job = os.path.join(tmp, "job.toml")
        with open(job, "w") as f:
            f.write(f"""[job]\nname = "bench-pearson"\nmodel = "pearson"\noutput_dir = "{tmp}/out"\n
[parties.bank]\nrole = "active"\ndata = "{datasets.path(dataset + '_hetero_guest')}"\nlabel = "y"\n
[parties.insurer]\nrole = "passive"\ndata = "{datasets.path(dataset + '_hetero_host')}"\n""")
        start = time.perf_counter()
        report = run_job_file(job, local=True, verbose=False)
        wall = time.perf_counter() - start
    return {"dataset": dataset, "rows": report["n_intersection"], "psi_s": report["seconds"]["psi"],
            "correlation_s": report["seconds"]["train"], "job_total_s": report["seconds"]["total"],
            "wall_with_process_start_s": wall, "features": len(report["correlation"]["features"])}


def run(args) -> dict:
    sz = SIZES["quick" if args.quick else "full"]
    keys = {p: generate_keypair(2048)[1] for p in ("p0", "p1")}
    result = {"sizes": sz, "key_bits": 2048, "cores": os.cpu_count()}
    e_shape = TripleShape("elementwise", sz["elementwise"])
    ours_e = ours_triples(e_shape, 1, keys)
    phe_e = phe_elementwise_seconds(sz["phe_elementwise"], keys)
    result["elementwise"] = {"ours_per_s": sz["elementwise"] / ours_e, "phe_per_s": 1 / phe_e,
                             "ratio": phe_e * sz["elementwise"] / ours_e, "phe_measured": sz["phe_elementwise"]}
    m_shape = TripleShape("matrix", sz["m"], sz["k"], sz["n"])
    ours_m = ours_triples(m_shape, 1, keys)
    phe_m = phe_matrix_seconds(sz["m"], sz["k"], sz["n"], sz["phe_rows"], keys)
    result["matrix"] = {"shape": [sz["m"], sz["k"], sz["n"]], "ours_s": ours_m, "phe_s": phe_m,
                        "ratio": phe_m / ours_m, "phe_measured_rows": sz["phe_rows"]}
    result["ot"] = ot_triples(sz["ot_elementwise"], keys)
    result["ot"]["matrix_s"] = ours_triples(m_shape, 1, keys, source="ot")
    result["ot"]["matrix_ratio_to_phe"] = phe_m / result["ot"]["matrix_s"]
    result["ot"]["ratio_to_phe"] = result["ot"]["per_s"] * phe_e
    result["ot"]["ratio_to_paillier"] = result["ot"]["per_s"] / result["elementwise"]["ours_per_s"]
    result["online_mults_per_s"] = online_mults(sz["online"])
    if not args.no_pearson:
        result["pearson"] = pearson_job(sz["pearson"])
    if getattr(args, "sslr", False):
        result["sslr"] = sslr_fit(sz["pearson"], args.sslr_iterations)
    result["anchors"] = ANCHORS
    return result


def render(result: dict) -> str:
    e, m = result["elementwise"], result["matrix"]
    (rows, inner, cols) = m["shape"]
    lines = [f"Secret sharing over Z_2^64, dealer-free triples from Paillier {result['key_bits']}-bit or from OT "
             "extension; one core for both parties (ours) and for phe",
             f"{'':46} {'phe':>12} {'ours':>12} {'ratio':>7}",
             f"{'elementwise triples per second':46} {e['phe_per_s']:12.1f} {e['ours_per_s']:12.1f} "
             f"{e['ratio']:6.1f}x",
             f"{f'matrix triple {rows}x{inner} by {inner}x{cols} (seconds)':46} {m['phe_s']:12.1f} "
             f"{m['ours_s']:12.1f} {m['ratio']:6.1f}x",
             *([f"{'elementwise triples per second, OT extension':46} {e['phe_per_s']:12.1f} "
                f"{result['ot']['per_s']:12.1f} {result['ot']['ratio_to_phe']:6.0f}x  "
                f"({result['ot']['ratio_to_paillier']:.0f}x ours from Paillier; {result['ot']['count']} triples, "
                f"{result['ot']['bytes_per_triple'] / 1024:.1f} KiB per triple cross)"]
               if "ot" in result else []),
             *([f"{f'matrix triple {rows}x{inner} by {inner}x{cols}, OT extension (s)':46} {m['phe_s']:12.1f} "
                f"{result['ot']['matrix_s']:12.1f} {result['ot']['matrix_ratio_to_phe']:6.0f}x  "
                f"({m['ours_s'] / result['ot']['matrix_s']:.0f}x ours from Paillier)"]
               if "matrix_s" in result.get("ot", {}) else []),
             f"{'online Beaver multiplications per second':46} {'':>12} {result['online_mults_per_s']:12.0f}",
             "",
             f"phe measured on {e['phe_measured']} elementwise triples and {m['phe_measured_rows']} matrix rows "
             "(scaled linearly: its cost is linear in them)."]
    if "pearson" in result:
        p = result["pearson"]
        lines += [f"Pearson, {p['dataset']} ({p['rows']} rows, {p['features']} columns, 2 parties over processes): "
                  f"PSI {p['psi_s']:.1f} s + correlation {p['correlation_s']:.1f} s = {p['job_total_s']:.1f} s "
                  f"({p['wall_with_process_start_s']:.1f} s with process start)"]
    if "sslr" in result:
        r = result["sslr"]
        lines += [f"SS logistic regression, {r['dataset']} ({r['rows']} rows, 2 parties in process, {r['iterations']} "
                  f"iterations, alpha {r['alpha']:g}): {r['seconds']:.1f} s (offline {r['offline_s']:.1f} s, curvature "
                  f"{r['setup_s']:.1f} s, online {r['online_s_per_iteration']:.3f} s per iteration); "
                  f"training loss {r['loss']:.6f} "
                  f"(scikit-learn {r['sklearn_loss']:.6f}), AUC {r['auc']:.5f} (scikit-learn {r['sklearn_auc']:.5f})"]
    lines += ["", "Published anchors (not measured here):", *("  " + a for a in result["anchors"])]
    return "\n".join(lines)
