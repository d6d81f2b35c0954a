"""Full-batch L-BFGS for hetero linear/logistic regression (``solver="lbfgs"``, the default).

The weight vector is split between the parties; so are the gradient and the L-BFGS history.
Per iteration k, over every training row (both protocols; no arbiter):

1. **Gram round.** Every party sends the active the dot products of its own parts of the
   vectors ``[g, w, s_1…s_m, y_1…y_m]`` (a small matrix; the active adds its own) and ``max|g|``.
   The gradient-norm stopping rule: stop when ``max|g| ≤ gtol`` over all parties.
2. **Direction.** The active runs the two-loop recursion on the summed Gram matrix ("vector-free"
   L-BFGS: every vector is a combination of that basis) and broadcasts the coefficients; every
   party forms its own part of the direction ``d``.
3. **Line search at the active.** Each passive sends ``u_p = X_p·d_p`` for the training rows. The
   active now has the scores along the whole line, ``z(α) = z + α·X·d``, so it evaluates the loss
   and its derivative at any step α in plaintext and runs a strong-Wolfe line search (scipy's)
   with no further round. It broadcasts the step α; every party moves ``w += α·d``.
4. **Gradient round.** The residuals at the new point give every party its gradient, through
   the job's protocol exactly as one full-batch SGD step (label key: [[d]] and masked gradients;
   feature key: [[Σ d_i·X_i]] under the passive's key). ``s = α·d`` and ``y = g_new − g_old``
   join each party's history.

Every party saves its part (weights, gradient, history, iteration) after each iteration
(:mod:`vfl.checkpoint`); a resumed run continues from the last iteration every party holds, to
the same model. One iteration costs one protocol round on every row — what one epoch of SGD costs — plus the
scores along the direction. What it lets each party learn beyond SGD is in docs/hetero_lr.md:
the active learns the passives' parts of the Gram matrices and ``X_p·d_p``; every party learns
the step sizes.

The objective is the mean loss plus ``alpha/2·‖w‖²`` (the intercept is not penalized), which is
scikit-learn's ``C = 1 / (alpha · n_train)`` with the same standardization.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
from scipy.optimize import line_search

from vfl.errors import DataError, ProtocolError
from vfl.linear import messages as msg
from vfl.progress import progress

HISTORY = 10                 # pairs (s, y) kept: the m of L-BFGS
MAX_LINE_SEARCH = 30


def basis_size(pairs: int) -> int:
    return 2 + 2 * pairs


def gram(vectors: list[np.ndarray]) -> np.ndarray:
    """Dot products of this party's parts of the basis vectors."""
    stacked = np.vstack(vectors) if vectors else np.zeros((0, 0))
    return stacked @ stacked.T


def direction_coefficients(g: np.ndarray, pairs: int) -> np.ndarray:
    """The two-loop recursion on the Gram matrix ``g`` of ``[grad, w, s_1…s_m, y_1…y_m]``:
    coefficients c with ``d = Σ c_j v_j = −H·grad`` (H the L-BFGS inverse-Hessian estimate).
    Pairs without positive curvature (``s·y ≤ 0`` over all parties) are left out."""
    size = basis_size(pairs)

    def unit(j):
        e = np.zeros(size)
        e[j] = 1.0
        return e

    s = [unit(2 + i) for i in range(pairs)]
    y = [unit(2 + pairs + i) for i in range(pairs)]
    good = [i for i in range(pairs) if float(s[i] @ g @ y[i]) > 1e-12 * max(float(y[i] @ g @ y[i]), 1e-300)]
    q = unit(0)
    a = {}
    for i in reversed(good):
        a[i] = float(s[i] @ g @ q) / float(y[i] @ g @ s[i])
        q = q - a[i] * y[i]
    last = good[-1] if good else None
    gamma = float(s[last] @ g @ y[last]) / float(y[last] @ g @ y[last]) if last is not None else 1.0
    r = gamma * q
    for i in good:
        b = float(y[i] @ g @ r) / float(y[i] @ g @ s[i])
        r = r + (a[i] - b) * s[i]
    return -r


@dataclasses.dataclass
class PartyState:
    """One party's part of the optimization: weights, gradient and history."""

    w: np.ndarray
    g: np.ndarray | None = None
    s: list = dataclasses.field(default_factory=list)
    y: list = dataclasses.field(default_factory=list)
    d: np.ndarray | None = None

    def basis(self) -> list[np.ndarray]:
        return [self.g, self.w, *self.s, *self.y]

    def direction(self, coefs: np.ndarray) -> np.ndarray:
        basis = self.basis()
        if len(coefs) != len(basis):
            raise ProtocolError(f"a direction of {len(coefs)} coefficients for a basis of {len(basis)} vectors")
        self.d = sum(c * v for c, v in zip(coefs, basis))
        return self.d

    def step(self, alpha: float, new_gradient) -> None:
        """Move by α·d, then take the gradient there (a callable: the protocol's round). Every
        party keeps the same last :data:`HISTORY` pairs; the active skips bad ones globally."""
        s = alpha * self.d
        self.w = self.w + s
        g_new = new_gradient(self.w)
        self.s.append(s)
        self.y.append(g_new - self.g)
        if len(self.s) > HISTORY:
            self.s.pop(0)
            self.y.pop(0)
        self.g = g_new


def save(state: PartyState, checkpoint, iteration: int, **extra) -> None:
    """This party's part of the optimization after ``iteration`` iterations (a resume replays
    from there: the stopping decisions depend only on what is saved)."""
    if checkpoint is not None:
        checkpoint.save(iteration, {"lbfgs": {"w": state.w, "g": state.g, "s": list(state.s), "y": list(state.y),
                                              "iteration": iteration}, **extra})


def restore(state: PartyState, checkpoint) -> dict | None:
    """Fill ``state`` from the checkpoint the run resumes at; None for a fresh start."""
    saved = checkpoint.state if checkpoint is not None else None
    if not saved or "lbfgs" not in saved:
        return None
    part = saved["lbfgs"]
    state.w, state.g = np.asarray(part["w"], float), np.asarray(part["g"], float)
    state.s = [np.asarray(v, float) for v in part["s"]]
    state.y = [np.asarray(v, float) for v in part["y"]]
    return {**saved, "iteration": int(part["iteration"])}


class LbfgsActive:
    """The label party's side: it owns the loop, the line search and the stopping rule."""

    def __init__(self, trainer, *, gtol: float, max_iter: int):
        self.tr, self.gtol, self.max_iter = trainer, gtol, max_iter
        cfg = trainer.cfg
        self.rows = cfg.train_index
        self.penalized = cfg.penalty == "l2"
        self.alpha = float(cfg.alpha) if self.penalized else 0.0
        x = trainer.x[self.rows]
        self.x = np.hstack([x, np.ones((len(self.rows), 1))])          # the intercept is the last weight
        self.state = PartyState(np.zeros(self.x.shape[1]))
        self.iterations = 0
        self.restored = restore(self.state, trainer.checkpoint)
        if self.restored is not None:
            h = trainer.history
            h.train_loss, h.val_loss = list(self.restored["train_loss"]), list(self.restored["val_loss"])
            h.epoch_seconds, h.epochs_run = list(self.restored["epoch_seconds"]), self.restored["iteration"]
            self.iterations = self.restored["iteration"]

    def _save(self, z: np.ndarray) -> None:
        """Also the scores z, as this run computed them (along the steps): recomputing them from
        the weights on resume would round differently, and the model must be the same bit for bit."""
        h = self.tr.history
        save(self.state, self.tr.checkpoint, self.iterations, train_loss=h.train_loss, val_loss=h.val_loss,
             epoch_seconds=h.epoch_seconds, scores=z)

    # -- the objective along the training rows -----------------------------------------------
    def _penalty_mask(self) -> np.ndarray:
        mask = np.ones(self.x.shape[1])
        mask[-1] = 0.0
        return mask

    def _own_gradient(self, d: np.ndarray) -> np.ndarray:
        return self.x.T @ d / len(self.rows) + self.alpha * self.state.w * self._penalty_mask()

    def run(self):
        tr, history, start = self.tr, self.tr.history, time.perf_counter()
        passives = tr.passives
        if self.restored is None:
            z = self.x @ self.state.w + self._passive_scores(self.rows)
            d = tr._residual(z, self.rows)
            self.state.g = self._own_gradient(d)
            tr._send_gradients(self.rows, d)
        else:                                           # a resumed run holds the scores and gradient
            z = np.asarray(self.restored["scores"], float)
        bar = progress(range(self.iterations, self.max_iter), desc="hetero LR (L-BFGS)", disable=not tr.verbose,
                       initial=self.iterations, total=self.max_iter)
        for k in bar:
            iteration_start = time.perf_counter()
            pairs = len(self.state.s)
            grams, grad_max = self._collect_grams(pairs)
            theirs, basis = sum(grams.values()), self.state.basis()
            total = theirs + gram(basis)
            penalized = theirs + gram([v[:-1] for v in basis])        # without the intercept (unpenalized)
            if grad_max <= self.gtol:
                tr.t.broadcast(msg.LbfgsDirection(iteration=k, coefs=np.zeros(0), stop=True), passives)
                break
            coefs = direction_coefficients(total, pairs)
            if not float(coefs @ total[:, 0]) < 0:        # not a descent direction (rounding): −g
                coefs = np.zeros_like(coefs)
                coefs[0] = -1.0
            tr.t.broadcast(msg.LbfgsDirection(iteration=k, coefs=coefs, stop=False), passives)
            xd = self.x @ self.state.direction(coefs) + self._passive_scores(self.rows)
            alpha, z_new = self._line_search(z, xd, coefs, penalized)
            tr.t.broadcast(msg.LbfgsStep(iteration=k, step=alpha), passives)
            if alpha == 0.0:                                # no decrease possible at this precision
                break
            z = z_new
            d = tr._residual(z, self.rows)
            self.state.step(alpha, lambda _w: self._own_gradient(d))
            tr._send_gradients(self.rows, d)
            history.train_loss.append(float(tr._loss(z, self.rows)))
            if len(tr.cfg.val_index):
                val = tr.cfg.val_index
                own = tr.x[val] @ self.state.w[:-1] + self.state.w[-1]
                history.val_loss.append(tr._loss(own + self._passive_scores(val), val))
            history.epoch_seconds.append(time.perf_counter() - iteration_start)
            history.epochs_run = self.iterations = k + 1
            self._save(z)
            bar.set_postfix(loss=f"{history.train_loss[-1]:.5f}")
        self._check_separable()
        tr.coef, tr.intercept = self.state.w[:-1].copy(), float(self.state.w[-1])
        history.seconds = time.perf_counter() - start
        return history

    def _check_separable(self) -> None:
        """Without a penalty the log-loss has no minimum on separable classes: the loss runs to 0
        and the weights to infinity. A fit that got there is refused rather than reported."""
        h = self.tr.history
        if self.tr.cfg.task != "logistic" or self.penalized or not h.train_loss:
            return
        if h.train_loss[-1] < 1e-3 or float(np.max(np.abs(self.state.w))) > 1e3:
            raise DataError("the classes are (almost) separable on the training rows: without a penalty the "
                            "log-loss has no minimum (the weights grow without bound); set penalty = \"l2\"")

    def _passive_scores(self, rows) -> np.ndarray:
        return self.tr._scores_of_passives(rows)

    def _collect_grams(self, pairs: int) -> tuple[dict, float]:
        size, grams = basis_size(pairs), {}
        grad_max = float(np.max(np.abs(self.state.g)))
        for p in self.tr.passives:
            m = self.tr.t.recv(p, msg.LbfgsGram)
            if m.gram.shape != (size, size) or not np.all(np.isfinite(m.gram)) or not np.isfinite(m.grad_max):
                raise ProtocolError(f"{p} sent a Gram matrix of shape {m.gram.shape}; expected {(size, size)}")
            grams[p] = m.gram
            grad_max = max(grad_max, float(m.grad_max))
        return grams, grad_max

    def _line_search(self, z, xd, coefs, penalized_gram) -> tuple[float, np.ndarray]:
        """Strong-Wolfe search for the step along d, all at the active: the loss from the scores
        z + α·X·d, the penalty from the Gram matrix (w·w, w·d, d·d)."""
        tr, rows = self.tr, self.rows
        ww = float(penalized_gram[1, 1])
        wd = float(coefs @ penalized_gram[:, 1])
        dd = float(coefs @ penalized_gram @ coefs)
        lam, n = self.alpha, len(rows)

        def phi(a):
            a = float(np.ravel(a)[0])
            return tr._loss(z + a * xd, rows) + 0.5 * lam * (ww + 2 * a * wd + a * a * dd)

        def dphi(a):
            a = float(np.ravel(a)[0])
            residual = tr._residual(z + a * xd, rows)
            return np.array([float(residual @ xd) / n + lam * (wd + a * dd)])

        f0, g0 = phi(0.0), dphi(0.0)
        if g0[0] >= 0:
            return 0.0, z
        found = line_search(phi, dphi, np.zeros(1), np.ones(1), gfk=g0, old_fval=f0, maxiter=MAX_LINE_SEARCH)
        alpha = found[0]
        if alpha is None:                                   # backtracking Armijo as a fallback
            alpha = 1.0
            while alpha > 1e-12 and phi(alpha) > f0 + 1e-4 * alpha * g0[0]:
                alpha *= 0.5
            if alpha <= 1e-12:
                return 0.0, z
        return float(alpha), z + float(alpha) * xd


class LbfgsPassive:
    """A feature party's side: it follows the active's iterations on its own part of the weights."""

    def __init__(self, trainer, *, max_iter: int):
        self.tr, self.max_iter = trainer, max_iter
        cfg = trainer.cfg
        self.rows = cfg.train_index
        self.penalized = cfg.penalty == "l2"
        self.alpha = float(cfg.alpha) if self.penalized else 0.0
        self.state = PartyState(np.zeros(trainer.x.shape[1]))
        self.restored = restore(self.state, trainer.checkpoint)
        self.iterations = self.restored["iteration"] if self.restored is not None else 0

    def _gradient(self, w: np.ndarray) -> np.ndarray:
        return self.tr._gradient(self.rows) + self.alpha * w

    def run(self) -> int:
        tr, active = self.tr, self.tr.active
        x = tr.x[self.rows]
        if self.restored is None:
            tr.t.send(active, msg.PartialScores(x @ self.state.w))
            self.state.g = self._gradient(self.state.w)
        for k in range(self.iterations, self.max_iter):
            tr.t.send(active, msg.LbfgsGram(gram=gram(self.state.basis()),
                                            grad_max=float(np.max(np.abs(self.state.g)))))
            direction = tr.t.recv(active, msg.LbfgsDirection)
            if direction.iteration != k:
                raise ProtocolError(f"{active} sent iteration {direction.iteration}'s direction during iteration {k}")
            if direction.stop:
                break
            coefs = np.asarray(direction.coefs, dtype=float)
            if not np.all(np.isfinite(coefs)):
                raise ProtocolError(f"{active} sent a direction that is not finite")
            tr.t.send(active, msg.PartialScores(x @ self.state.direction(coefs)))
            step = tr.t.recv(active, msg.LbfgsStep)
            if step.iteration != k or not np.isfinite(step.step) or step.step < 0:
                raise ProtocolError(f"{active} sent a step that is not a finite, non-negative size for iteration {k}")
            if step.step == 0.0:
                break
            self.state.step(float(step.step), self._gradient)
            if len(tr.cfg.val_index):
                tr.t.send(active, msg.PartialScores(tr.x[tr.cfg.val_index] @ self.state.w))
            self.iterations = k + 1
            save(self.state, tr.checkpoint, self.iterations)
        tr.coef = self.state.w.copy()
        return self.iterations
