"""Two attacks on hetero logistic regression (:mod:`vfl.linear`), one per role, either protocol.

**The passive infers labels from its gradients** (:func:`label_inference`). What an LR passive
holds after a run: its own columns (standardized, as it trains on them), the rows of every batch
(both sides derive them from the shared seed) and, per batch B, the gradient X_p[B]ᵀ·d it
unmasks (``label_key``) or decrypts (``feature_key``), d = σ(z) − y the batch's residuals
(:func:`recording_passive_gradients` keeps them). Each batch is n_features linear equations in
its |B| residuals; a row is in one batch per epoch, and its residual keeps its sign (d < 0 iff
y = 1). The attacker solves every batch of every epoch at once for one residual d̂ per row
(damped sparse least squares; determined once epochs × n_features ≥ the batch size). Given the
labels of a few rows (``known_share``), it fits a logistic regression on

- **baseline**: its own columns only, what it could do without the protocol;
- **attack**: its own columns plus −d̂.

Both are scored by AUC on the training rows it did not know; the leak is attack − baseline.
``residual_auc`` is −d̂ alone, which needs no known label at all.

**The active reconstructs the passive's features from its partial scores**
(:func:`feature_reconstruction`). The active receives z = X_p[B]·w_p for every batch of every
epoch (SGD), w_p moving after every batch, and knows the rows of every batch: each row is scored
once per epoch, under another w_p. The passive standardizes its columns, so every z is affine in
its raw values: z = x·v + c. The attacker's auxiliary knowledge: the passive's raw values of
``known_share`` of the scored rows, and at least 2·(n_features + 1) of them (customers of both,
a public register). It

1. fits (v, c) at knots spread evenly over the run, linear in between, to the known rows'
   scores (as many knots per epoch as leave :data:`KNOT_ROWS` known scores per unknown);
2. estimates every other row as E[x | its scores]: a Gaussian prior (centred on the baseline's
   guess below, the known rows' covariance), the scores linear in x through step 1's (v, c),
   noise step 1's misfit per epoch.

Scored by R² per feature on the rows it did not know, averaged over features. **Baseline**, the
best guess without protocol output: per feature the better of the mean (R² 0) and a ridge
regression of that column on the active's own columns fitted on the known rows (the better one
picked with the truth: a baseline if anything too strong). The leak is attack − baseline.
"""
from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import lsqr
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from vfl.linear import messages as msg
from vfl.linear.feature_key import FeatureKeyPassiveTrainer
from vfl.linear.training import PassiveTrainer, epoch_batches

KNOT_ROWS = 3           # known scores per unknown of (v, c) between two knots


@dataclasses.dataclass
class PassiveView:
    """What an LR passive holds after a run: ``x`` the matrix it trained on (the job's training
    rows, standardized and clipped), ``steps`` one (row positions in ``x``, X_p[rows]ᵀ·d) per
    gradient round, in order."""
    x: np.ndarray
    steps: list = dataclasses.field(default_factory=list)


@contextlib.contextmanager
def recording_passive_gradients():
    """Within the block, every LR passive trainer (either protocol, SGD or L-BFGS) also keeps the
    gradients it computes for itself: yields {party name: :class:`PassiveView`}, filled as the
    run goes. Nothing the trainers send or compute changes."""
    views: dict[str, PassiveView] = {}
    originals = {cls: cls.__dict__["_gradient"] for cls in (PassiveTrainer, FeatureKeyPassiveTrainer)}

    def recorded(original):
        def _gradient(self, rows):
            gradient = original(self, rows)
            view = views.setdefault(self.t.party, PassiveView(self.x))
            view.steps.append((np.array(rows), gradient * len(rows)))      # X_p[rows]ᵀ·d, before / |B|
            return gradient
        return _gradient

    for cls, original in originals.items():
        setattr(cls, "_gradient", recorded(original))
    try:
        yield views
    finally:
        for cls, original in originals.items():
            setattr(cls, "_gradient", original)


def _known_rows(y: np.ndarray, share: float, rng) -> np.ndarray:
    """``share`` of the rows of each class, at least one of each (the attacker's pick)."""
    known = np.zeros(len(y), bool)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        known[rng.choice(rows, size=max(1, int(round(share * len(rows)))), replace=False)] = True
    return known


def residual_estimates(view: PassiveView, *, damp: float = 1e-3) -> np.ndarray:
    """One residual d̂ per row of ``view.x`` with X_p[B]ᵀ·d̂[B] = X_p[B]ᵀ·d for every recorded
    batch B, by damped least squares (rows in no batch get 0)."""
    if not view.steps:
        raise ValueError("the passive recorded no gradient: nothing to attack")
    x = np.asarray(view.x, dtype=np.float64)
    n, k = x.shape
    rows = np.concatenate([np.asarray(r) for r, _ in view.steps])
    sizes = np.array([len(r) for r, _ in view.steps])
    step = np.repeat(np.arange(len(sizes)), sizes)
    # equation (batch s, feature j) holds x[i, j] for every row i of batch s
    a = sp.csr_matrix((x[rows].ravel(), ((step[:, None] * k + np.arange(k)).ravel(), np.repeat(rows, k))),
                      shape=(len(sizes) * k, n))
    b = np.concatenate([np.asarray(g, dtype=np.float64) for _, g in view.steps])
    return lsqr(a, b, damp=damp, atol=1e-10, btol=1e-10, iter_lim=20 * n)[0]


def label_inference(view: PassiveView, y_true, *, known_share: float = 0.01, seed: int = 0) -> dict:
    """The passive's attack above on one run: ``view`` from :func:`recording_passive_gradients`,
    ``y_true`` the true labels of ``view.x``'s rows (for scoring only)."""
    y = np.asarray(y_true).astype(int)
    x = np.asarray(view.x, dtype=np.float64)
    if len(y) != len(x):
        raise ValueError(f"{len(x)} rows in the passive's view, {len(y)} labels")
    score = -residual_estimates(view)                              # d < 0 iff y = 1
    trained = np.zeros(len(y), bool)
    for rows, _ in view.steps:
        trained[rows] = True
    rng = np.random.default_rng(seed)                              # the attacker's pick, not a secret
    known = np.flatnonzero(trained)[_known_rows(y[trained], known_share, rng)]
    scored = trained.copy()
    scored[known] = False
    own = StandardScaler().fit_transform(x)
    both = np.column_stack([own, StandardScaler().fit_transform(score[:, None])])
    out = {"known_rows": int(len(known)), "rows_scored": int(scored.sum()), "known_share": known_share,
           "batches": len(view.steps), "residual_auc": float(roc_auc_score(y[scored], score[scored]))}
    for name, features in (("baseline", own), ("attack", both)):
        model = LogisticRegression(C=1.0, max_iter=2000).fit(features[known], y[known])
        out[f"{name}_auc"] = float(roc_auc_score(y[scored], model.predict_proba(features[scored])[:, 1]))
    out["gain"] = out["attack_auc"] - out["baseline_auc"]
    return out


@dataclasses.dataclass
class ScoreObservations:
    """The active's view of one passive's SGD training, one entry per (row, scoring): the row,
    its partial score, the epoch and where in it (0: its start, 1: its end)."""
    rows: np.ndarray
    z: np.ndarray
    epoch: np.ndarray
    frac: np.ndarray
    epochs: int


def score_observations(received, setup: msg.Setup, passive: str) -> ScoreObservations:
    """The partial scores ``passive`` sent while training, from the messages the active received
    (``received``: (sender, message) pairs) and the setup it sent (it knows the batches)."""
    if setup.solver != "sgd":
        raise ValueError(f"feature reconstruction reads mini-batch SGD's partial scores; this run used the "
                         f"{setup.solver!r} solver")
    scores = [m.scores for s, m in received if s == passive and isinstance(m, msg.PartialScores)]
    train, val = np.asarray(setup.train_index), np.asarray(setup.val_index)
    parts, at, epochs = [], 0, 0
    for epoch in range(setup.epochs):
        batches = epoch_batches(len(train), setup.batch_size, setup.batch_seed, epoch)
        need = len(batches) + (1 if len(val) else 0)
        if at + need > len(scores):
            break                                                  # stopped early (what follows: evaluation)
        parts += [(train[b], scores[at + j], epoch, j / len(batches)) for j, b in enumerate(batches)]
        if len(val):
            parts.append((val, scores[at + len(batches)], epoch, 1.0))
        if any(len(r) != len(z) for r, z, _, _ in parts[-need:]):
            raise ValueError(f"{passive}'s partial scores in epoch {epoch} do not follow this setup's batches")
        at, epochs = at + need, epoch + 1
    if not parts:
        raise ValueError(f"no partial scores of a whole epoch from {passive} among those received")
    sizes = [len(r) for r, _, _, _ in parts]
    return ScoreObservations(rows=np.concatenate([r for r, _, _, _ in parts]),
                             z=np.concatenate([np.asarray(z, np.float64) for _, z, _, _ in parts]),
                             epoch=np.repeat([e for _, _, e, _ in parts], sizes),
                             frac=np.repeat([f for _, _, _, f in parts], sizes), epochs=epochs)


def feature_reconstruction(received, setup: msg.Setup, passive_x, *, passive: str, active_x=None,
                           known_share: float = 0.01, seed: int = 0) -> dict:
    """The active's attack above on one run: ``received`` what the active received ((sender,
    message) pairs), ``setup`` the setup it sent, ``passive_x`` the passive's raw columns of the
    job's training rows (the known rows' values, and the truth for scoring), ``active_x`` the
    active's own columns of the same rows (for the baseline)."""
    truth = np.asarray(passive_x, dtype=np.float64)
    if truth.ndim != 2 or len(truth) != setup.n_rows:
        raise ValueError(f"the passive's columns hold {len(truth)} rows, the setup {setup.n_rows}")
    obs = score_observations(received, setup, passive)
    n, k = truth.shape
    seen = np.unique(obs.rows)
    count = max(int(round(known_share * len(seen))), 2 * (k + 1))
    if count >= len(seen):
        raise ValueError(f"{len(seen)} rows scored: too few to know {count} of them and reconstruct the others")
    rng = np.random.default_rng(seed)                              # the attacker's pick, not a secret
    known = np.zeros(n, bool)
    known[rng.choice(seen, size=count, replace=False)] = True
    scored = np.zeros(n, bool)
    scored[seen] = True
    scored &= ~known
    # 1. (v, c) at knots spread evenly over the run, linear in between, from the known rows' scores
    batches = len(epoch_batches(len(setup.train_index), setup.batch_size, setup.batch_seed, 0))
    epochs, per_epoch = obs.epochs, min(batches, max(1, count // (KNOT_ROWS * (k + 1))))
    time = (obs.epoch + obs.frac) * per_epoch
    left = np.minimum(np.floor(time).astype(int), epochs * per_epoch - 1)
    f = time - left
    mine = known[obs.rows]
    xk = np.column_stack([truth[obs.rows[mine]], np.ones(mine.sum())])
    design = np.zeros((mine.sum(), (epochs * per_epoch + 1) * (k + 1)))
    at, cols = np.arange(mine.sum())[:, None], np.arange(k + 1)
    design[at, left[mine][:, None] * (k + 1) + cols] = (1 - f[mine])[:, None] * xk
    design[at, (left[mine][:, None] + 1) * (k + 1) + cols] = f[mine][:, None] * xk
    knots = np.linalg.lstsq(design, obs.z[mine], rcond=None)[0].reshape(-1, k + 1)
    v = (1 - f)[:, None] * knots[left] + f[:, None] * knots[left + 1]
    misfit = (obs.z[mine] - design @ knots.ravel()) ** 2 * len(design) / max(len(design) - design.shape[1], 1)
    floor = 1e-6 * float(np.var(obs.z)) + 1e-300
    noise = np.maximum(_per_epoch(misfit, obs.epoch[mine], epochs), floor)[obs.epoch]
    # 2. every other row: E[x | its scores], the prior centred on the guess without them
    guess = np.broadcast_to(truth[known].mean(axis=0), (int(scored.sum()), k))
    if active_x is not None:
        own = StandardScaler().fit_transform(np.asarray(active_x, dtype=np.float64))
        ridge = RidgeCV(alphas=np.logspace(-2, 5, 15), alpha_per_target=True).fit(own[known], truth[known])
        guess = ridge.predict(own[scored])
    cov = np.cov(truth[known], rowvar=False).reshape(k, k)
    cov = 0.9 * cov + 0.1 * np.diag(np.diag(cov)) + 1e-9 * np.eye(k)     # shrunk: few known rows
    attack = _r2(truth[scored], _posterior_means(obs, v, noise, guess, cov, np.flatnonzero(scored)))
    baseline = np.maximum(_r2(truth[scored], guess), 0.0) if active_x is not None else np.zeros_like(attack)
    return {"known_rows": int(count), "rows_scored": int(scored.sum()), "known_share": known_share,
            "epochs": epochs, "knots_per_epoch": per_epoch, "baseline_r2": float(np.mean(baseline)),
            "attack_r2": float(np.mean(attack)), "gain": float(np.mean(attack) - np.mean(baseline)),
            "attack_r2_per_feature": attack.tolist(), "baseline_r2_per_feature": baseline.tolist()}


def _posterior_means(obs: ScoreObservations, v: np.ndarray, noise: np.ndarray, mean: np.ndarray,
                     cov: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """E[x | its scores] for each of ``rows``: z = x·v[:k] + v[k] + ε, ε ~ N(0, noise),
    x ~ N(mean, cov); ``v`` and ``noise`` one per observation, ``mean`` one per row."""
    k = mean.shape[1]
    out = np.empty((len(rows), k))
    order = np.argsort(obs.rows, kind="stable")
    counts = np.bincount(obs.rows, minlength=int(max(obs.rows.max(), rows.max())) + 1)
    starts = np.concatenate([[0], np.cumsum(counts)])
    for t in np.unique(counts[rows]):                               # rows with t scores, together
        group = np.flatnonzero(counts[rows] == t)
        idx = order[starts[rows[group]][:, None] + np.arange(t)]   # (rows, t) observations
        a = v[idx, :k]                                             # (rows, t, k)
        r = obs.z[idx] - v[idx, k] - (a @ mean[group][:, :, None])[:, :, 0]
        g = a @ cov @ a.transpose(0, 2, 1) + noise[idx][:, :, None] * np.eye(t)
        out[group] = mean[group] + ((cov @ a.transpose(0, 2, 1)) @ np.linalg.solve(g, r[:, :, None]))[:, :, 0]
    return out


def _per_epoch(values: np.ndarray, epoch: np.ndarray, epochs: int) -> np.ndarray:
    """The mean of ``values`` in each epoch (0 in an epoch without any)."""
    return np.bincount(epoch, weights=values, minlength=epochs) / np.maximum(np.bincount(epoch, minlength=epochs), 1)


def _r2(truth: np.ndarray, guess: np.ndarray) -> np.ndarray:
    """R² per column (constant columns left out)."""
    spread = ((truth - truth.mean(axis=0)) ** 2).sum(axis=0)
    varies = spread > 0
    return 1 - ((truth - guess) ** 2).sum(axis=0)[varies] / spread[varies]
