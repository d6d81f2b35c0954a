"""Validation of hyperparameters, labels and the setup a passive agrees to."""
from __future__ import annotations

import numpy as np

from protocols.paillier.keys import SECURE_KEY_BITS
from vfl.errors import DataError, ProtocolError
from vfl.secureboost import messages as msg

MAX_DEPTH = 12          # trees are heap-numbered arrays of 2^(depth+1) − 1 nodes
MAX_BINS = 1024
MAX_CLASSES = 16        # 2K slots of (g, h) must fit one plaintext of a 2048-bit key


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_rate(v, *, closed: bool) -> bool:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    return ok and (0.0 < v <= 1.0 if closed else 0.0 < v < 1.0)


def check_hyperparameters(est) -> None:
    checks = [
        (_is_int(est.n_estimators) and est.n_estimators >= 1, f"n_estimators must be an integer >= 1, got {est.n_estimators!r}"),
        (isinstance(est.learning_rate, (int, float)) and est.learning_rate > 0,
         f"learning_rate must be > 0, got {est.learning_rate!r}"),
        (_is_int(est.max_depth) and 1 <= est.max_depth <= MAX_DEPTH,
         f"max_depth must be an integer in 1..{MAX_DEPTH}, got {est.max_depth!r}"),
        (_is_int(est.max_bins) and 2 <= est.max_bins <= MAX_BINS,
         f"max_bins must be an integer in 2..{MAX_BINS}, got {est.max_bins!r}"),
        (isinstance(est.min_child_weight, (int, float)) and est.min_child_weight >= 0,
         f"min_child_weight must be >= 0, got {est.min_child_weight!r}"),
        (isinstance(est.reg_lambda, (int, float)) and est.reg_lambda >= 0, f"reg_lambda must be >= 0, got {est.reg_lambda!r}"),
        (isinstance(est.gamma, (int, float)) and est.gamma >= 0, f"gamma must be >= 0, got {est.gamma!r}"),
        (_is_int(est.frac_bits) and 8 <= est.frac_bits <= 48, f"frac_bits must be an integer in 8..48, got {est.frac_bits!r}"),
        (_is_int(est.first_k_trees_active_only) and 0 <= est.first_k_trees_active_only <= est.n_estimators,
         f"first_k_trees_active_only must be an integer in 0..n_estimators, got {est.first_k_trees_active_only!r}"),
        (_is_rate(est.subsample, closed=True), f"subsample must be in (0, 1], got {est.subsample!r}"),
        (_is_rate(est.colsample_bytree, closed=True), f"colsample_bytree must be in (0, 1], got {est.colsample_bytree!r}"),
        (isinstance(est.goss, bool), f"goss must be true or false, got {est.goss!r}"),
        (_is_rate(est.top_rate, closed=False), f"top_rate must be in (0, 1), got {est.top_rate!r}"),
        (_is_rate(est.other_rate, closed=False), f"other_rate must be in (0, 1), got {est.other_rate!r}"),
        (not est.goss or est.top_rate + est.other_rate <= 1.0,
         f"top_rate + other_rate must be <= 1, got {est.top_rate!r} + {est.other_rate!r}"),
        (not (est.goss and est.subsample < 1.0), "subsample < 1 and goss are two ways to sample rows: choose one"),
        (isinstance(est.early_stopping, bool), f"early_stopping must be true or false, got {est.early_stopping!r}"),
        (_is_rate(est.validation_fraction, closed=False),
         f"validation_fraction must be in (0, 1), got {est.validation_fraction!r}"),
        (_is_int(est.n_iter_no_change) and est.n_iter_no_change >= 1,
         f"n_iter_no_change must be an integer >= 1, got {est.n_iter_no_change!r}"),
        (isinstance(est.tol, (int, float)) and est.tol >= 0, f"tol must be >= 0, got {est.tol!r}"),
        (est.random_state is None or _is_int(est.random_state),
         f"random_state must be an integer or None, got {est.random_state!r}"),
    ]
    bits = getattr(est, "gradient_int_bits", 1)
    if not (_is_int(bits) and 1 <= bits <= 64):
        raise ValueError(f"gradient_int_bits must be an integer in 1..64, got {bits!r}")
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def validate_labels(y, n_rows: int, party: str, loss: str, int_bits: int) -> np.ndarray:
    try:
        labels = np.asarray(y, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(f"{party}: the label column is not numeric") from None
    if labels.shape != (n_rows,):
        raise DataError(f"{party}: {labels.shape[0]} labels for {n_rows} rows")
    if not np.isfinite(labels).all():
        raise DataError(f"{party}: the label column has missing or infinite values")
    if loss == "squared":
        spread = float(np.abs(labels - labels.mean()).max())
        if spread >= 2.0 ** (int_bits - 1):
            raise DataError(f"{party}: labels lie up to {spread:.4g} from their mean, beyond what "
                            f"gradient_int_bits={int_bits} covers (2^{int_bits - 1}): raise it or rescale")
        return labels
    classes = np.unique(labels)
    if not (classes == np.arange(len(classes))).all():
        found = [v for v in classes.tolist() if not (float(v).is_integer() and 0 <= v < len(classes))][:5]
        raise DataError(f"{party}: classification needs labels 0, 1, …, K−1 with every class present; "
                        f"found {found or classes.tolist()[:5]} among {len(classes)} classes")
    if len(classes) < 2:
        raise DataError(f"{party}: the labels hold a single class")
    if len(classes) > MAX_CLASSES:
        raise DataError(f"{party}: {len(classes)} classes; at most {MAX_CLASSES} fit the packed (g, h) slots")
    return labels


MAX_FEATURES = 100_000


def check_ready(ready: msg.Ready, name: str) -> int:
    """A passive's declared feature count (it sizes the column samples)."""
    n = ready.n_features
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_FEATURES:
        raise ProtocolError(f"{name} declared {n!r} features; expected 1..{MAX_FEATURES}")
    return n


def check_slots(n_bits: int, *, n_outputs: int, int_bits: int, frac_bits: int, sample_rows: int) -> None:
    """The 2K packed (g, h) slots of a row, wide enough for the sum of ``sample_rows`` rows,
    must fit one plaintext: checked before the passives are asked (not at the first tree)."""
    max_slot = (1 << (int_bits + frac_bits + 1)) - 1
    slot_bits = (max_slot * sample_rows).bit_length()
    if 2 * n_outputs * slot_bits > n_bits - 2:
        raise ValueError(f"{2 * n_outputs} slots of {slot_bits} bits ({n_outputs} outputs, frac_bits={frac_bits}, "
                         f"{sample_rows} rows per tree) do not fit a {n_bits}-bit key: lower frac_bits or the classes")


def check_setup(setup: msg.Setup, passive, x: np.ndarray, active: str) -> None:
    """The passive's guards, applied before any cryptography starts."""
    problems = []
    if setup.n_rows != len(x):
        problems.append(f"the job has {setup.n_rows} rows but this party holds {len(x)} (tables not aligned?)")
    if not 1 <= setup.max_depth <= MAX_DEPTH:
        problems.append(f"max_depth {setup.max_depth} is outside 1..{MAX_DEPTH}")
    if not 2 <= setup.max_bins <= MAX_BINS:
        problems.append(f"max_bins {setup.max_bins} is outside 2..{MAX_BINS}")
    if not 8 <= setup.frac_bits <= 48:
        problems.append(f"frac_bits {setup.frac_bits} is outside 8..48")
    if not 1 <= setup.n_outputs <= MAX_CLASSES:
        problems.append(f"{setup.n_outputs} outputs per row is outside 1..{MAX_CLASSES}")
    if not 2 <= setup.sample_rows <= setup.n_rows:
        problems.append(f"a sample of {setup.sample_rows} rows per tree is outside 2..{setup.n_rows}")
    if setup.n_estimators > passive.max_estimators:
        problems.append(f"{setup.n_estimators} trees requested but this party serves at most {passive.max_estimators}")
    key_ok = setup.public_key.n_bits in SECURE_KEY_BITS or passive.allow_insecure_key_size_for_tests
    if not key_ok:
        problems.append(f"a {setup.public_key.n_bits}-bit key is below the 2048-bit minimum")
    if problems:
        raise ProtocolError(f"refusing the SecureBoost job from {active}: " + "; ".join(problems))
