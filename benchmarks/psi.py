"""PSI: this engine against openmined-psi 2.0.6 per core, plus end to end over processes.

Every figure is measured in this run, on the same two sets of N ids with 50% overlap:
- this PSI, both roles in one thread (``workers=1``, i.e. VFL_WORKERS=1): hash, mask, re-mask,
  intersect and align, messages passed in memory;
- openmined-psi (P-256, RAW container, reveal intersection): server setup, client request,
  server response, client intersection, also in one thread;
- the curve primitive: X25519 in libsodium (PyNaCl, what this PSI uses) and in OpenSSL
  (``cryptography``, if installed, for comparison);
- ``--repeats`` rounds (default 3), each timing every side once, in turn, so that a machine
  that slows down or speeds up mid-run affects all sides alike; the best time per side counts;
- optionally (``--e2e-n``) this PSI end to end: two party processes over loopback ZeroMQ,
  all cores, from DataFrames to aligned DataFrames.
"""
from __future__ import annotations

import gc
import os
import platform
import tempfile
import time

import numpy as np
import pandas as pd

from parties.jobs import run_job
from parties.jobs.launcher import LocalCluster
from protocols.psi import ActivePsi, PassivePsi, group
from vfl.psi import align_active


def add_arguments(parser) -> None:
    parser.add_argument("--n", type=int, default=20000, help="ids per side for the per-core comparison")
    parser.add_argument("--e2e-n", type=int, default=0,
                        help="also run N x N end to end over ZeroMQ party processes (e.g. 1000000)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds; each round times every side once, the best round per side counts")
    parser.add_argument("--no-baseline", action="store_true", help="skip openmined-psi")


def make_sets(n: int, seed: int = 7) -> tuple[list[str], list[str]]:
    """Two sets of ``n`` distinct ids sharing ``n // 2`` (statistical data: a seeded Generator)."""
    rng = np.random.default_rng(seed)
    pool = np.unique(rng.integers(0, 2**62, size=2 * n + 64))[:2 * n - n // 2]
    rng.shuffle(pool)
    ids = [f"cust-{v}" for v in pool.tolist()]
    return ids[:n], ids[n - n // 2:]


def run_ours(a: list[str], b: list[str], *, workers: int | None = 1) -> int:
    """Both roles in this thread (``workers=1``: one worker; None: the installed backend);
    returns the intersection size."""
    active = ActivePsi([s.encode() for s in a], ["b"], workers=workers)
    passive = PassivePsi([s.encode() for s in b], workers=workers)
    passive.accept_setup(active.setup())
    sent = list(active.masked_stream())
    remasked = [reply for msg in passive.masked_stream() for reply in active.accept("b", msg)]
    for msg in sent + remasked:
        passive.accept(msg)
    passive.reveal()
    for msg in passive.double_masked_stream():
        active.accept("b", msg)
    outcome, alignments = active.finish()
    passive.accept_alignment(alignments["b"])
    return outcome.size


def run_openmined(a: list[str], b: list[str]) -> int:
    """openmined-psi with the same roles: a is the client (learns), b the server."""
    import private_set_intersection.python as psi
    client = psi.client.CreateWithNewKey(True)
    server = psi.server.CreateWithNewKey(True)
    setup = server.CreateSetupMessage(1e-9, len(a), b, psi.DataStructure.RAW)
    response = server.ProcessRequest(client.CreateRequest(a))
    return len(client.GetIntersection(setup, response))


def _best(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _interleaved_best(sides: dict, rounds: int) -> dict:
    """Best time per side and every round's result, the sides taking turns within each round
    (the order rotating from round to round, garbage collected before each timing)."""
    best = {name: (float("inf"), []) for name in sides}
    names = list(sides)
    for r in range(max(1, rounds)):
        for name in names[r % len(names):] + names[:r % len(names)]:
            gc.collect()
            start = time.perf_counter()
            out = sides[name]()
            secs = time.perf_counter() - start
            best[name] = (min(best[name][0], secs), best[name][1] + [out])
    return best


def primitive_rates(count: int = 4000) -> dict:
    """Scalar multiplications per second on one core, libsodium vs OpenSSL, and the hash rate."""
    salt, scalar = group.new_salt(), group.Scalar.generate()
    items = [f"cust-{i}".encode() for i in range(count)]
    secs, blob = _best(lambda: group.hash_blob(items, salt), 3)
    out = {"hash_to_curve_per_s": count / secs}
    secs, _ = _best(lambda: group.mult_blob(scalar.raw_bytes(), blob), 3)
    out["x25519_libsodium_per_s"] = count / secs
    try:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    except ImportError:
        out["x25519_openssl_per_s"] = None
        return out
    key = X25519PrivateKey.from_private_bytes(scalar.raw_bytes())
    points = [blob[i:i + 32] for i in range(0, len(blob), 32)]
    secs, _ = _best(lambda: [key.exchange(X25519PublicKey.from_public_bytes(p)) for p in points], 3)
    out["x25519_openssl_per_s"] = count / secs
    return out


def run(args) -> dict:
    n = int(args.n)
    a, b = make_sets(n)
    expected = len(set(a) & set(b))
    result = {"n": n, "overlap": expected, "cpu": platform.processor() or platform.machine(),
              "cores": os.cpu_count(), "rounds": max(1, int(args.repeats)),
              "primitives": primitive_rates(min(4000, max(500, n))),
              "backend": group.backend()}
    sides = {"ours": lambda: run_ours(a, b)}
    if not args.no_baseline:
        try:
            import private_set_intersection.python  # noqa: F401  (is the baseline installed?)
            sides["openmined"] = lambda: run_openmined(a, b)
        except ImportError as exc:
            result["openmined"] = {"error": f"openmined-psi not installed ({exc})"}
    for name, (secs, sizes) in _interleaved_best(sides, args.repeats).items():
        size = sizes[0] if len(set(sizes)) == 1 else sizes      # a list: the rounds disagreed
        result[name] = {"seconds": secs, "ids_per_s_per_core": n / secs, "size": size}
    if "seconds" in result.get("openmined", {}):
        result["ratio"] = result["openmined"]["seconds"] / result["ours"]["seconds"]
    result["agree"] = result["ours"]["size"] == expected and \
        result.get("openmined", {}).get("size", expected) == expected
    if args.e2e_n:
        parties = getattr(args, "parties", None)       # `vfl bench psi --compute FILE`: the insurer's [compute]
        result["e2e"] = run_e2e(int(args.e2e_n), compute=parties.compute if parties else None)
    return result


def run_e2e(n: int, *, private: bool = False, timeout: float = 900.0, compute: dict | None = None) -> dict:
    """N x N ids (50% shared) between two party processes over loopback ZeroMQ with CURVE.

    The passive ``insurer`` is a ``vfl serve`` process reading a CSV; the active ``bank``
    runs in this process from a DataFrame. Timed: the job, from JobStart until both
    parties hold aligned rows (CSV read, normalization, hashing, masking, transfer,
    intersection, alignment). Not timed: writing the CSV and starting the cluster.
    """
    rng = np.random.default_rng(11)                      # statistical test data, not secrets
    ids = rng.permutation(np.arange(10**12, 10**12 + 2 * n - n // 2, dtype=np.int64))
    bank = pd.DataFrame({"id": ids[:n], "label": rng.integers(0, 2, n)})
    with tempfile.TemporaryDirectory(prefix="vfl-psi-e2e-") as tmp:
        path = os.path.join(tmp, "insurer.csv")
        pd.DataFrame({"id": ids[n - n // 2:], "x": rng.random(n)}).to_csv(path, index=False)
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        with LocalCluster(["bank", "insurer"], data={"insurer": {"customers": path}}, limits={"recv_timeout": timeout},
                          compute={"insurer": compute} if compute else None) as cluster:
            with cluster.node("bank") as node:
                ready = time.perf_counter()
                job = run_job(node, "psi.passive", {"data": "customers", "id_column": "id"}, ["insurer"],
                              role=lambda t: align_active(t, bank, "id", private=private, progress=False),
                              timeout=timeout)
                done = time.perf_counter()
    aligned = job.result
    return {"n": n, "seconds": done - ready, "startup_seconds": ready - started,
            "size": aligned.report.size, "expected": n // 2, "cores": os.cpu_count(),
            "workers": os.environ.get("VFL_WORKERS", "all cores"),
            "bytes": {p: s["bytes_sent"] + s["bytes_received"] for p, s in job.stats.items()},
            "passive": job.peer_results["insurer"],
            "load_average": [load_before, os.getloadavg()[0]]}     # other work on the machine


def render(r: dict) -> str:
    p = r["primitives"]
    lines = [f"PSI, {r['n']:,} x {r['n']:,} ids, {r['overlap']:,} shared ({r['cores']} cores; per-core figures "
             f"use one worker)",
             f"backend: {r['backend']}",
             "primitive (one core)          per second",
             f"  hash id to curve             {p['hash_to_curve_per_s']:>10,.0f}",
             f"  X25519 libsodium (PyNaCl)    {p['x25519_libsodium_per_s']:>10,.0f}   <- what this PSI uses",
             "  X25519 OpenSSL (cryptography) " + (f"{p['x25519_openssl_per_s']:>9,.0f}"
                                                   if p["x25519_openssl_per_s"] else "  not installed"),
             f"both roles, one core                 seconds      ids/s per core   (best of {r.get('rounds', 1)} "
             "interleaved rounds)",
             _row("this PSI (libsodium)", r["ours"])]
    om = r.get("openmined")
    if om and "seconds" in om:
        lines.append(_row("openmined-psi 2.0.6 (P-256)", om))
        lines.append(f"  ratio (openmined time / ours)  {r['ratio']:.2f}x")
    elif om:
        lines.append(f"  openmined-psi: {om['error']}")
    lines.append(f"  intersection sizes agree with a plain set intersection: {r['agree']}")
    if "e2e" in r:
        lines.extend(_render_e2e(r["e2e"], p))
    return "\n".join(lines)


def _row(label: str, d: dict) -> str:
    return f"  {label:<34}{d['seconds']:>7.2f}   {d['ids_per_s_per_core']:>12,.0f}"


def compute_bound(n: int, primitives: dict) -> float:
    """Seconds of one core one party needs for n own ids and n peer ids: n hashes, 2n mults."""
    return n / primitives["hash_to_curve_per_s"] + 2 * n / primitives["x25519_libsodium_per_s"]


def _render_e2e(e: dict, primitives: dict) -> list[str]:
    head = f"end to end, {e['n']:,} x {e['n']:,} ids, two party processes over ZeroMQ (CURVE)"
    if "error" in e:
        return [head, f"  failed: {e['error']}"]
    mib = sum(e["bytes"].values()) / 2**20
    return [head,
            f"  wall time {e['seconds']:.1f} s on {e['cores']} cores (workers per party: {e['workers']}); "
            f"party start-up {e['startup_seconds']:.1f} s not included",
            f"  intersection {e['size']:,} (expected {e['expected']:,}); {mib:,.1f} MiB exchanged",
            f"  1-min load average before the run: {e['load_average'][0]:.2f} (other work on the "
            f"{e['cores']} cores; during the run this job's own processes add 2-4)",
            f"  compute bound from the primitive rates above: {compute_bound(e['n'], primitives):.0f} s of one "
            f"core per party (both parties run at once, one core each)"]
