"""The setup both roles of hetero linear/logistic regression agree on, and the passive's guards."""
from __future__ import annotations

import secrets

import numpy as np

from vfl import handshake
from vfl.linear import messages as msg

TASKS = ("logistic", "linear")
PROTOCOLS = ("label_key", "feature_key")     # who holds the Paillier key: docs/hetero_lr.md
SOLVERS = ("lbfgs", "sgd")                   # full-batch L-BFGS (default) or mini-batch SGD
MIN_MASK_BITS = 40


def build_setup(est, task: str, public_key, n_rows: int, train, val, rng, batch_seed: int | None = None,
                feature_privacy=None) -> msg.Setup:
    if batch_seed is None:
        batch_seed = int(rng.integers(2**62)) if est.random_state is not None else secrets.randbits(62)
    full_batch = est.solver == "lbfgs"
    return msg.Setup(public_key=public_key, task=task, n_rows=n_rows, train_index=train.astype(np.int64),
                     val_index=val.astype(np.int64), epochs=est.epochs,
                     batch_size=len(train) if full_batch else min(est.batch_size, len(train)),
                     batch_seed=batch_seed,
                     learning_rate=float(est.learning_rate), lr_schedule=est.lr_schedule,
                     lr_decay=float(est.lr_decay), penalty=est.penalty, alpha=float(est.alpha),
                     residual_frac_bits=int(est.residual_frac_bits), protocol=est.protocol, solver=est.solver,
                     gtol=float(est.gtol),
                     feature_privacy=None if feature_privacy is None else feature_privacy.to_section())


def check_setup(setup: msg.Setup, passive, x: np.ndarray, active: str, feature_noise=None) -> None:
    """The passive's guards, applied before any cryptography starts. ``feature_noise``: the
    feature DP the job request promised this party (the setup must carry the same)."""
    n_features = x.shape[1]
    label_key = setup.protocol == "label_key"
    key_bits = (setup.public_key.n_bits if setup.public_key is not None else None) if label_key else passive.key_bits
    problems = handshake.setup_problems(job_rows=setup.n_rows, my_rows=len(x), rounds=setup.epochs,
                                        max_rounds=passive.max_epochs, unit="epochs", key_bits=key_bits,
                                        allow_small_key=passive.allow_insecure_key_size_for_tests,
                                        key_owner="the job's" if label_key else "this party's own")
    if setup.task not in TASKS:
        problems.append(f"unknown task {setup.task!r}")
    for name, idx in (("train", setup.train_index), ("validation", setup.val_index)):
        if idx.ndim != 1 or (len(idx) and (idx.min() < 0 or idx.max() >= len(x))):
            problems.append(f"{name} row positions are out of range")
        elif len(np.unique(idx)) != len(idx):
            problems.append(f"{name} row positions repeat a row (a batch of copies would reveal it)")
    if len(np.intersect1d(setup.train_index, setup.val_index)):
        problems.append("training and validation rows overlap")
    if len(setup.train_index) < setup.batch_size:
        problems.append(f"{len(setup.train_index)} training rows are fewer than one batch of {setup.batch_size}")
    if setup.batch_size <= n_features:
        problems.append(f"batch size {setup.batch_size} must exceed this party's {n_features} features "
                        "(smaller batches let the gradient reveal features)")
    if setup.solver not in SOLVERS:
        problems.append(f"unknown solver {setup.solver!r}")
    elif setup.solver == "lbfgs" and setup.batch_size != len(setup.train_index):
        problems.append("an L-BFGS job must use every training row in each round")
    if setup.solver == "lbfgs" and setup.penalty == "l1":
        problems.append("the L-BFGS solver takes penalty l2 or none")
    if setup.protocol not in PROTOCOLS:
        problems.append(f"unknown protocol {setup.protocol!r}")
    elif label_key and setup.public_key is None:
        problems.append("no public key in the setup")
    promised = None if feature_noise is None else feature_noise.privacy.to_section()
    if setup.feature_privacy != promised:
        problems.append(f"the setup's feature privacy {setup.feature_privacy} is not the {promised} of the job request")
    elif promised is not None and (setup.solver != "sgd" or setup.task != "logistic"):
        problems.append("feature privacy is for logistic regression with solver sgd")
    if passive.mask_bits < MIN_MASK_BITS:
        problems.append(f"mask_bits must be >= {MIN_MASK_BITS}")
    handshake.refuse(problems, "training", active)
