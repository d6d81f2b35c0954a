"""SecureBoost's hyperparameter rules, its slot-capacity check and the setup a passive agrees to."""
from __future__ import annotations

import numpy as np

from protocols.paillier import SCHEMES, generate_keypair, generate_ou_keypair
from protocols.paillier.ou import ou_capacity_bits
from vfl import handshake
from vfl.secureboost import messages as msg
from vfl.validation import MAX_CLASSES, Boolean, Integer, Interval, Optional, Options

MAX_DEPTH = 12          # trees are heap-numbered arrays of 2^(depth+1) − 1 nodes
MAX_BINS = 1024
RATE_OPEN, RATE = Interval(0, 1, "neither"), Interval(0, 1, "right")

PARAMETER_CONSTRAINTS = {
    "n_estimators": Integer(1), "learning_rate": Interval(0, None, "neither"), "max_depth": Integer(1, MAX_DEPTH),
    "max_bins": Integer(2, MAX_BINS), "min_child_weight": Interval(0), "reg_lambda": Interval(0),
    "gamma": Interval(0), "subsample": RATE, "colsample_bytree": RATE, "goss": Boolean(), "top_rate": RATE_OPEN,
    "other_rate": RATE_OPEN, "early_stopping": Boolean(), "validation_fraction": RATE_OPEN,
    "n_iter_no_change": Integer(1), "tol": Interval(0), "first_k_trees_active_only": Integer(0),
    "random_state": Optional(Integer(0)), "frac_bits": Integer(8, 48), "key_bits": Integer(256, 8192),
    "verbose": Boolean(), "workers": Optional(Integer(1)), "gradient_int_bits": Integer(1, 64),
    "scheme": Options(("auto", *SCHEMES)),
}


def check_combined(est) -> None:
    """The rules that tie several hyperparameters together."""
    if est.first_k_trees_active_only > est.n_estimators:
        raise ValueError(f"first_k_trees_active_only must be at most n_estimators ({est.n_estimators}), "
                         f"got {est.first_k_trees_active_only!r}")
    if est.goss and est.top_rate + est.other_rate > 1.0:
        raise ValueError(f"top_rate + other_rate must be <= 1, got {est.top_rate!r} + {est.other_rate!r}")
    if est.goss and est.subsample < 1.0:
        raise ValueError("subsample < 1 and goss are two ways to sample rows: choose one")


def slot_bits(*, int_bits: int, frac_bits: int, sample_rows: int) -> int:
    """Bits of one packed g or h slot: ``g + 2^m`` (m = int_bits + frac_bits) summed over
    ``sample_rows`` rows (as ``PackedEncryptedVector.encrypt`` sizes it)."""
    return (((1 << (int_bits + frac_bits + 1)) - 1) * sample_rows).bit_length()


def row_bits(*, n_outputs: int, int_bits: int, frac_bits: int, sample_rows: int) -> int:
    """Bits of one row's 2K packed (g, h) slots, each wide enough for a sum of ``sample_rows``."""
    return 2 * n_outputs * slot_bits(int_bits=int_bits, frac_bits=frac_bits, sample_rows=sample_rows)


def compressed_slots(public_key, bits: int, width: int) -> int:
    """Slots per ciphertext of the passives' compressed histograms: as many whole entries of
    ``width`` slots of ``bits`` bits as the key's plaintext holds (``compress``'s default)."""
    return max(public_key.capacity_bits // bits // width, 1) * width


def capacity_bits(scheme: str, key_bits: int) -> int:
    """Plaintext bits a packed ciphertext holds: n − 2 for Paillier, p − 66 for OU (616 of 2048)."""
    return ou_capacity_bits(key_bits) if scheme == "ou" else key_bits - 2


def new_key(scheme: str, key_bits: int, bits_per_row: int):
    """The job's fresh private key. ``auto``: Okamoto–Uchiyama when a row's slots fit its
    plaintext (cheaper at every step, docs/secureboost.md), else Paillier (3x the room)."""
    if scheme == "auto":
        scheme = "ou" if bits_per_row <= capacity_bits("ou", key_bits) else "paillier"
    return (generate_ou_keypair if scheme == "ou" else generate_keypair)(key_bits)[1]


def check_slots(public_key, *, n_outputs: int, int_bits: int, frac_bits: int, sample_rows: int) -> None:
    """The 2K packed (g, h) slots of a row, wide enough for the sum of ``sample_rows`` rows,
    must fit one plaintext: checked before the passives are asked (not at the first tree)."""
    bits = row_bits(n_outputs=n_outputs, int_bits=int_bits, frac_bits=frac_bits, sample_rows=sample_rows)
    if bits > public_key.capacity_bits:
        hint = "scheme='paillier' (3x the room), " if public_key.scheme == "ou" else ""
        raise ValueError(f"{2 * n_outputs} slots of {bits // (2 * n_outputs)} bits ({n_outputs} outputs, "
                         f"frac_bits={frac_bits}, {sample_rows} rows per tree) do not fit a {public_key.n_bits}-bit "
                         f"{public_key.scheme} key's {public_key.capacity_bits}-bit plaintext: use {hint}"
                         "a lower frac_bits or fewer classes")


def check_setup(setup: msg.Setup, passive, x: np.ndarray, active: str) -> None:
    """The passive's guards, applied before any cryptography starts."""
    problems = handshake.setup_problems(job_rows=setup.n_rows, my_rows=len(x), rounds=setup.n_estimators,
                                        max_rounds=passive.max_estimators, unit="trees",
                                        key_bits=setup.public_key.n_bits,
                                        allow_small_key=passive.allow_insecure_key_size_for_tests)
    if not 1 <= setup.max_depth <= MAX_DEPTH:
        problems.append(f"max_depth {setup.max_depth} is outside 1..{MAX_DEPTH}")
    if not 2 <= setup.max_bins <= MAX_BINS:
        problems.append(f"max_bins {setup.max_bins} is outside 2..{MAX_BINS}")
    if setup.public_key.scheme not in passive.schemes:
        problems.append(f"the job's key is {setup.public_key.scheme}, but this party accepts only "
                        f"{', '.join(passive.schemes)}")
    if not 8 <= setup.frac_bits <= 48:
        problems.append(f"frac_bits {setup.frac_bits} is outside 8..48")
    if not 1 <= setup.n_outputs <= MAX_CLASSES:
        problems.append(f"{setup.n_outputs} outputs per row is outside 1..{MAX_CLASSES}")
    if not 2 <= setup.sample_rows <= setup.n_rows:
        problems.append(f"a sample of {setup.sample_rows} rows per tree is outside 2..{setup.n_rows}")
    handshake.refuse(problems, "SecureBoost", active)
