"""Hetero LR on default-credit over real party processes, against the same protocol on phe.

Ours: the bundled 2-party default-credit job on all 30000 rows, 2048-bit keys, each party its own
process on loopback with CURVE; seconds per epoch as measured by the active party's training
loop. ``--protocol label_key`` (default): the label party's key, [[d]] per batch. phe: the same
cryptographic steps of one batch (encrypt the residuals, X_pᵀ·[[d]], mask, decrypt) computed with
python-paillier on a subsample of rows in this process, scaled linearly to an epoch (per-row work
× rows + per-batch work × batches). ``--protocol feature_key``: the passive encrypts its features
once under its own key (reported apart, as one-time setup), then per batch the active computes
Σ d_i·[[x_i]]; phe does the same with one ciphertext per feature value (it cannot pack): per row
and feature one ciphertext × float and one addition, per batch and feature one decryption. Both
phe figures pay no communication, which favours phe.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.resources
import secrets
import statistics
import tempfile
import time

import numpy as np

from parties.jobs import execute
from protocols.paillier import generate_keypair
from protocols.paillier.interop import to_phe_private, to_phe_public
from vfl.jobs.data import read_table
from vfl.jobs.spec import load_job


def add_arguments(parser) -> None:
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the federated run (default 2)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--phe-rows", type=int, default=128, help="rows of the phe subsample")
    parser.add_argument("--protocol", choices=("label_key", "feature_key"), default="label_key",
                        help="who holds the Paillier key (docs/hetero_lr.md)")


def _ours(args) -> dict:
    job = importlib.resources.files("vfl.datasets") / "jobs" / "credit_lr.toml"
    spec = execute.local_spec(load_job(str(job)))
    with tempfile.TemporaryDirectory() as out:
        spec = dataclasses.replace(spec, test_size=0.0, output_dir=out, hyperparameters={
            **spec.hyperparameters, "solver": "sgd", "epochs": args.epochs, "batch_size": args.batch_size,
            "protocol": args.protocol})     # an SGD epoch: the unit phe is measured in (an L-BFGS iteration costs one)
        frame = read_table(spec.active.data, spec.active.name, spec.active.id_column)
        outcome = execute.train(spec, frame, args.parties, verbose=False)
    result, figures = outcome.result, outcome.result.summary.figures
    return {"rows": result.n_train, "passive_features": len(outcome.passives["insurer"].features),
            "epoch_seconds": figures["epoch_seconds"], "psi_seconds": result.seconds["psi"],
            "setup_seconds": result.seconds["train"] - sum(figures["epoch_seconds"]),
            "bytes_sent": outcome.bytes_sent}


def _phe_fixture(rows: int, features: int):
    """A phe key pair (ours, converted) and a seeded residual vector and feature matrix."""
    pk, sk = generate_keypair(2048)
    ppub = to_phe_public(pk)
    rng = np.random.default_rng(0)
    return ppub, to_phe_private(sk, ppub), rng.normal(size=rows) * 0.3, rng.normal(size=(rows, features))


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _phe(rows: int, features: int, batches: int, total_rows: int) -> dict:
    ppub, ppriv, d, x = _phe_fixture(rows, features)
    enc, t_enc = _timed(lambda: [ppub.encrypt(float(v)) for v in d])
    grads, t_mat = _timed(lambda: [sum((enc[i] * float(x[i, j]) for i in range(1, rows)), enc[0] * float(x[0, j]))
                                   for j in range(features)])
    plain, t_batch = _timed(lambda: [ppriv.decrypt(g + secrets.randbits(64)) for g in grads])
    per_row = (t_enc + t_mat) / rows
    return {"rows_measured": rows, "encrypt_s_per_row": t_enc / rows, "matmul_s_per_row": t_mat / rows,
            "mask_decrypt_s_per_batch": t_batch, "epoch_seconds_scaled": per_row * total_rows + t_batch * batches,
            "checked": len(plain) == features}


def _phe_feature_key(rows: int, features: int, batches: int, total_rows: int) -> dict:
    ppub, ppriv, d, x = _phe_fixture(rows, features)
    enc, t_enc = _timed(lambda: [[ppub.encrypt(float(v)) for v in row] for row in x])
    grads, t_mat = _timed(lambda: [sum((enc[i][j] * float(d[i]) for i in range(1, rows)), enc[0][j] * float(d[0]))
                                   for j in range(features)])
    plain, t_batch = _timed(lambda: [ppriv.decrypt(g) for g in grads])
    return {"rows_measured": rows, "encrypt_s_per_row": t_enc / rows, "matmul_s_per_row": t_mat / rows,
            "decrypt_s_per_batch": t_batch, "setup_seconds_scaled": t_enc / rows * total_rows,
            "epoch_seconds_scaled": t_mat / rows * total_rows + t_batch * batches, "checked": len(plain) == features}


def run(args: argparse.Namespace) -> dict:
    ours = _ours(args)
    epoch = statistics.median(ours["epoch_seconds"])
    batches = -(-ours["rows"] // args.batch_size)
    measure = _phe_feature_key if args.protocol == "feature_key" else _phe
    phe = measure(args.phe_rows, ours["passive_features"], batches, ours["rows"])
    return {"dataset": "default_credit (FATE hetero split)", "rows": ours["rows"], "key_bits": 2048,
            "batch_size": args.batch_size, "protocol": args.protocol, "ours": ours, "ours_epoch_seconds": epoch,
            "phe": phe, "ratio": phe["epoch_seconds_scaled"] / epoch}


def render(result: dict) -> str:
    ours, phe = result["ours"], result["phe"]
    feature_key = result.get("protocol") == "feature_key"
    setup = (f"; one-time setup {ours['setup_seconds']:.1f} s (the passive encrypts its features), phe "
             f"{phe['setup_seconds_scaled']:.0f} s") if feature_key else ""
    return "\n".join([
        f"hetero LR, {result['dataset']}, {result['rows']} rows, 2 parties as processes, "
        f"{result['key_bits']}-bit Paillier, batch {result['batch_size']}, "
        f"protocol {result.get('protocol', 'label_key')}",
        f"  ours: {result['ours_epoch_seconds']:.1f} s per epoch (median of "
        f"{', '.join(f'{s:.1f}' for s in ours['epoch_seconds'])}); PSI {ours['psi_seconds']:.1f} s{setup}",
        f"  phe, same protocol: {phe['epoch_seconds_scaled']:.0f} s per epoch (measured on {phe['rows_measured']} "
        f"rows and scaled; encrypt {phe['encrypt_s_per_row'] * 1e3:.1f} ms/row, "
        f"{'Σ d·[[x]]' if feature_key else 'X^T[[d]]'} {phe['matmul_s_per_row'] * 1e3:.1f} ms/row, no communication)",
        f"  ratio: {result['ratio']:.1f}x",
        "  bytes sent: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in ours["bytes_sent"].items()),
    ])
