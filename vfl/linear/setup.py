"""Validation of inputs and hyperparameters, and the setup both roles agree on."""
from __future__ import annotations

import secrets

import numpy as np

from protocols.paillier.keys import SECURE_KEY_BITS
from vfl.errors import DataError, ProtocolError
from vfl.linear import messages as msg
from vfl.linear.optim import PENALTIES, SCHEDULES

TASKS = ("logistic", "linear")
PROTOCOLS = ("label_key", "feature_key")     # who holds the Paillier key: docs/hetero_lr.md
MIN_MASK_BITS = 40


def validate_features(X, party: str, n_features: int | None = None) -> np.ndarray:
    """A finite 2-D float array; errors name the party and the offending column."""
    names = list(X.columns) if hasattr(X, "columns") else None
    try:
        x = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        bad = _first_non_numeric(X) if names else "?"
        raise DataError(f"{party}: feature column {bad!r} is not numeric") from None
    if x.ndim != 2 or x.shape[0] == 0:
        raise DataError(f"{party}: features must be a non-empty 2-D table, got shape {x.shape}")
    finite = np.isfinite(x)
    if not finite.all():
        col = int(np.flatnonzero(~finite.all(axis=0))[0])
        raise DataError(f"{party}: feature column {names[col] if names else col!r} has missing or infinite values")
    if n_features is not None and x.shape[1] != n_features:
        raise DataError(f"{party}: the model was fitted on {n_features} features, got {x.shape[1]}")
    return x


def _first_non_numeric(df) -> str:
    for col in df.columns:
        try:
            np.asarray(df[col], dtype=np.float64)
        except (TypeError, ValueError):
            return col
    return "?"


def validate_labels(y, n_rows: int, party: str, task: str) -> np.ndarray:
    labels = np.asarray(y, dtype=np.float64).reshape(-1)
    if labels.shape != (n_rows,):
        raise DataError(f"{party}: {labels.shape[0]} labels for {n_rows} rows")
    if not np.isfinite(labels).all():
        raise DataError(f"{party}: the label column has missing or infinite values")
    if task == "logistic" and not np.isin(labels, (0.0, 1.0)).all():
        found = sorted(set(np.unique(labels).tolist()) - {0.0, 1.0})[:5]
        raise DataError(f"{party}: logistic regression needs labels 0/1, found {found}")
    return labels


def check_hyperparameters(est) -> None:
    checks = [
        (est.learning_rate > 0, f"learning_rate must be > 0, got {est.learning_rate}"),
        (isinstance(est.epochs, int) and est.epochs >= 1, f"epochs must be an integer >= 1, got {est.epochs}"),
        (isinstance(est.batch_size, int) and est.batch_size >= 2, f"batch_size must be an integer >= 2, got {est.batch_size}"),
        (est.lr_schedule in SCHEDULES, f"lr_schedule must be one of {SCHEDULES}, got {est.lr_schedule!r}"),
        (est.penalty in PENALTIES, f"penalty must be one of {PENALTIES}, got {est.penalty!r}"),
        (est.alpha >= 0, f"alpha must be >= 0, got {est.alpha}"),
        (8 <= est.residual_frac_bits <= 48, f"residual_frac_bits must be in 8..48, got {est.residual_frac_bits}"),
        (est.approximation in ("none", "taylor"), f"approximation must be 'none' or 'taylor', got {est.approximation!r}"),
        (getattr(est, "protocol", "label_key") in PROTOCOLS,
         f"protocol must be one of {PROTOCOLS}, got {getattr(est, 'protocol', None)!r}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def build_setup(est, task: str, public_key, n_rows: int, train, val, rng) -> msg.Setup:
    check_hyperparameters(est)
    return msg.Setup(public_key=public_key, task=task, n_rows=n_rows, train_index=train.astype(np.int64),
                     val_index=val.astype(np.int64), epochs=est.epochs, batch_size=min(est.batch_size, len(train)),
                     batch_seed=int(rng.integers(2**62)) if est.random_state is not None else secrets.randbits(62),
                     learning_rate=float(est.learning_rate), lr_schedule=est.lr_schedule,
                     lr_decay=float(est.lr_decay), penalty=est.penalty, alpha=float(est.alpha),
                     residual_frac_bits=int(est.residual_frac_bits), protocol=est.protocol)


def check_setup(setup: msg.Setup, passive, x: np.ndarray, active: str) -> None:
    """The passive's guards, applied before any cryptography starts."""
    n_features = x.shape[1]
    problems = []
    if setup.task not in TASKS:
        problems.append(f"unknown task {setup.task!r}")
    if setup.n_rows != len(x):
        problems.append(f"the job has {setup.n_rows} rows but this party holds {len(x)} (tables not aligned?)")
    for name, idx in (("train", setup.train_index), ("validation", setup.val_index)):
        if idx.ndim != 1 or (len(idx) and (idx.min() < 0 or idx.max() >= len(x))):
            problems.append(f"{name} row positions are out of range")
        elif len(np.unique(idx)) != len(idx):
            problems.append(f"{name} row positions repeat a row (a batch of copies would reveal it)")
    if len(np.intersect1d(setup.train_index, setup.val_index)):
        problems.append("training and validation rows overlap")
    if len(setup.train_index) < setup.batch_size:
        problems.append(f"{len(setup.train_index)} training rows are fewer than one batch of {setup.batch_size}")
    if setup.epochs > passive.max_epochs:
        problems.append(f"{setup.epochs} epochs requested but this party serves at most {passive.max_epochs}")
    if setup.batch_size <= n_features:
        problems.append(f"batch size {setup.batch_size} must exceed this party's {n_features} features "
                        "(smaller batches let the gradient reveal features)")
    if setup.protocol not in PROTOCOLS:
        problems.append(f"unknown protocol {setup.protocol!r}")
    elif setup.protocol == "label_key":
        if setup.public_key is None:
            problems.append("no public key in the setup")
        elif setup.public_key.n_bits not in SECURE_KEY_BITS and not passive.allow_insecure_key_size_for_tests:
            problems.append(f"a {setup.public_key.n_bits}-bit key is below the 2048-bit minimum")
    elif passive.key_bits not in SECURE_KEY_BITS and not passive.allow_insecure_key_size_for_tests:
        problems.append(f"this party's own key of {passive.key_bits} bits is below the 2048-bit minimum")
    if passive.mask_bits < MIN_MASK_BITS:
        problems.append(f"mask_bits must be >= {MIN_MASK_BITS}")
    if problems:
        raise ProtocolError(f"refusing the training job from {active}: " + "; ".join(problems))
