"""Paillier engine against python-paillier (phe): same key, same process, ratios.

Every figure is measured in this run: phe one value per call on one core; this engine on one
worker (VFL_WORKERS=1) and on all workers. ``X.T @ [[d]]`` for phe runs on a row subsample and is
scaled linearly to the full matrix (its cost is linear in rows), which the report states.
"""
from __future__ import annotations

import os
import platform
import secrets
import time

import gmpy2
import numpy as np

from protocols._workers import resolve_workers
from protocols.paillier import EncryptedVector, PackedEncryptedVector, generate_keypair
from protocols.paillier.interop import to_phe_private, to_phe_public
from protocols.paillier.parallel import warm_up

SIZES = {  # values per measurement: ours, phe
    "full": dict(enc=2000, dec=400, phe=120, rows=30000, cols=10, phe_rows=300, add=20000),
    "quick": dict(enc=300, dec=60, phe=20, rows=2000, cols=4, phe_rows=40, add=2000),
}


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test, not for figures)")
    parser.add_argument("--key-bits", type=int, default=2048, choices=(2048, 3072))


REPEATS = 3     # best of three: other processes on the machine only ever slow a run down


def _rate(count: int, fn, repeats: int = REPEATS) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return count / best, out


def modmul_rate(n_bits: int = 4096, count: int = 20000) -> float:
    """Modular multiplications per second at ``n_bits`` (the bound for everything else)."""
    mod = gmpy2.mpz(secrets.randbits(n_bits)) | (gmpy2.mpz(1) << (n_bits - 1)) | 1  # odd, full size
    a = [gmpy2.mpz(secrets.randbits(n_bits)) % mod for _ in range(200)]
    pairs = [(a[i % 200], a[(i * 7 + 1) % 200]) for i in range(count)]
    rate, _ = _rate(count, lambda: [x * y % mod for x, y in pairs])
    return rate


def _phe_rates(pk, sk, sz, rng) -> dict:
    ppub = to_phe_public(pk)
    ppriv = to_phe_private(sk, ppub)
    vals = rng.normal(size=sz["phe"]).tolist()
    enc, cts = _rate(len(vals), lambda: [ppub.encrypt(v) for v in vals])  # phe obfuscates on encrypt
    dec, _ = _rate(len(cts), lambda: [ppriv.decrypt(c) for c in cts])
    add, _ = _rate(len(cts) * 10, lambda: [a + b for _ in range(10) for a, b in zip(cts, cts[::-1])])
    mul, _ = _rate(len(cts), lambda: [c * v for c, v in zip(cts, vals)])
    rows, cols = sz["phe_rows"], sz["cols"]
    x = rng.normal(size=(rows, cols))
    d = [ppub.encrypt(v) for v in rng.normal(size=rows).tolist()]

    def matvec():
        return [sum((d[i] * float(x[i, j]) for i in range(1, rows)), d[0] * float(x[0, j])) for j in range(cols)]
    secs_sub = _timed(matvec)
    return {"encrypt": enc, "decrypt": dec, "add": add, "mul_scalar": mul,
            "xtd_seconds": secs_sub * sz["rows"] / rows, "xtd_measured_rows": rows}


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _our_rates(pk, sk, sz, rng, workers: int) -> dict:
    vals = rng.normal(size=sz["enc"])
    enc_pub, _ = _rate(len(vals), lambda: EncryptedVector.encrypt(pk, vals, workers=workers))
    enc_crt, ev = _rate(len(vals), lambda: EncryptedVector.encrypt(sk, vals, workers=workers))
    enc_packed, _ = _rate(len(vals), lambda: PackedEncryptedVector.encrypt(sk, vals, workers=workers))
    small = ev[:sz["dec"]]
    dec, _ = _rate(len(small), lambda: small.decrypt(sk, workers=workers))
    # Packing after computation: a typical sum-of-products result, compressed, then decrypted.
    summed = small * 3 + small
    pack_rate, packed = _rate(len(summed), lambda: PackedEncryptedVector.from_vector(summed, workers=workers))
    dec_packed, _ = _rate(len(summed), lambda: packed.decrypt(sk, workers=workers))
    big = EncryptedVector.concat([ev] * max(sz["add"] // len(ev), 1))
    add, _ = _rate(len(big), lambda: big + big)
    mul, _ = _rate(len(small), lambda: small.mul(vals[:len(small)], workers=workers))
    packed_values = PackedEncryptedVector.encrypt(sk, rng.normal(size=sz["add"] // 4), sum_terms=8, workers=workers)
    add_packed, _ = _rate(len(packed_values) * 10,
                          lambda: [packed_values + packed_values for _ in range(10)])
    return {"encrypt_public": enc_pub, "encrypt_keyholder": enc_crt, "encrypt_packed_per_value": enc_packed,
            "decrypt": dec, "decrypt_packed_per_value": dec_packed,
            "pack_then_decrypt_per_value": 1 / (1 / pack_rate + 1 / dec_packed),
            "slots_per_ciphertext": packed.slots, "add": add, "add_packed_per_value": add_packed,
            "mul_scalar": mul}



def run(args) -> dict:
    sz = SIZES["quick" if args.quick else "full"]
    rng = np.random.default_rng(2026)
    all_workers = resolve_workers()
    t0 = time.perf_counter()
    pk, sk = generate_keypair(args.key_bits)
    keygen = time.perf_counter() - t0
    setup = {"keygen_s": keygen, "public_table_s": _timed(pk.table), "keyholder_table_s": _timed(sk.crt_table)}
    if all_workers > 1:
        setup["worker_warmup_s"] = _timed(lambda: (warm_up(sk, all_workers), warm_up(pk, all_workers)))
    bound = modmul_rate(2 * args.key_bits)
    phe = _phe_rates(pk, sk, sz, rng)
    result = {"machine": _machine(), "key_bits": args.key_bits, "setup": setup,
              "modmul_per_s": bound, "phe": phe, "ours": {}, "sizes": sz}
    x = rng.normal(size=(sz["rows"], sz["cols"]))
    d = EncryptedVector.encrypt(sk, rng.normal(size=sz["rows"]) * 0.5, workers=all_workers)
    for label, workers in (("1", 1), ("all", all_workers)):
        if label == "all" and all_workers == 1:
            continue
        ours = _our_rates(pk, sk, sz, rng, workers)
        ours["xtd_seconds"] = _timed(lambda: d.matmul(x.T, workers=workers))
        ours["workers"] = workers
        result["ours"][label] = ours
    result["ratios"] = ratios(result)
    return result


def ratios(result: dict) -> dict:
    phe, out = result["phe"], {}
    pairs = {"encrypt_public": "encrypt", "encrypt_keyholder": "encrypt", "encrypt_packed_per_value": "encrypt",
             "decrypt": "decrypt", "decrypt_packed_per_value": "decrypt", "pack_then_decrypt_per_value": "decrypt",
             "add": "add", "add_packed_per_value": "add", "mul_scalar": "mul_scalar"}
    for label, ours in result["ours"].items():
        r = {k: ours[k] / phe[v] for k, v in pairs.items()}
        r["xtd"] = phe["xtd_seconds"] / ours["xtd_seconds"]
        out[label] = r
    return out


def _machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "gmpy2": gmpy2.version()}


ROWS = [("encrypt (public key, fixed-base DJN)", "encrypt_public", "encrypt"),
        ("encrypt (key holder, CRT)", "encrypt_keyholder", "encrypt"),
        ("encrypt per value (packed)", "encrypt_packed_per_value", "encrypt"),
        ("decrypt per ciphertext", "decrypt", "decrypt"),
        ("decrypt per value (packed)", "decrypt_packed_per_value", "decrypt"),
        ("pack + decrypt per value", "pack_then_decrypt_per_value", "decrypt"),
        ("ciphertext + ciphertext", "add", "add"),
        ("ciphertext + ciphertext per value (packed)", "add_packed_per_value", "add"),
        ("ciphertext x scalar", "mul_scalar", "mul_scalar")]


def render(result: dict) -> str:
    sz, phe = result["sizes"], result["phe"]
    labels = list(result["ours"])
    head = f"{'operation (ops/s)':44} {'phe':>9}" + "".join(
        f" {'ours ' + str(result['ours'][name]['workers']) + 'w':>11} {'ratio':>7}" for name in labels)
    lines = [f"Paillier {result['key_bits']}-bit, machine {result['machine']}", head, "-" * len(head)]
    for title, key, phe_key in ROWS:
        row = f"{title:44} {phe[phe_key]:9.0f}"
        for name in labels:
            row += f" {result['ours'][name][key]:11.0f} {result['ratios'][name][key]:6.1f}x"
        lines.append(row)
    row = f"{'X.T @ [[d]] %dx%d (seconds)' % (sz['rows'], sz['cols']):44} {phe['xtd_seconds']:9.1f}"
    for name in labels:
        row += f" {result['ours'][name]['xtd_seconds']:11.2f} {result['ratios'][name]['xtd']:6.1f}x"
    lines.append(row)
    one = result["ours"][labels[0]]
    lines += ["",
              f"phe X.T @ [[d]] measured on {phe['xtd_measured_rows']} rows and scaled linearly to {sz['rows']}.",
              f"packing: {one['slots_per_ciphertext']} values per ciphertext after compression.",
              f"modmul bound: {result['modmul_per_s']:.0f} {2 * result['key_bits']}-bit modmuls/s; key-holder "
              f"encryption costs {result['modmul_per_s'] / one['encrypt_keyholder']:.0f} modmul-equivalents, "
              f"X.T @ [[d]] {result['modmul_per_s'] * one['xtd_seconds'] / (sz['rows'] * sz['cols']):.1f} "
              "per matrix entry.",
              "setup: " + ", ".join(f"{k} {v:.2f}" for k, v in result["setup"].items())]
    return "\n".join(lines)
