"""The round loop of hetero linear/logistic regression (the label party holds the key).

Per mini-batch B (both sides derive B from a shared seed; no arbiter):

1. Each passive p sends its partial scores z_p = X_p[B]·w_p.
2. The active computes z = X_a[B]·w_a + b + Σ z_p and the residual: the exact logistic gradient
   d = σ(z) − y (y ∈ {0, 1}; it holds z in the clear anyway), or with ``approximation="taylor"``
   d = ¼z − ½y' (y' ∈ {−1, +1}), or d = z − y (squared loss). It encrypts [[d]] with its own key,
   sends it to every passive and updates w_a, b with its own plaintext gradient.
3. Each passive computes [[g_p]] = X_p[B]ᵀ·[[d]] (one multi-exponentiation per feature), adds a
   mask r_p uniform in [0, 2^(M+λ)) (M bounds |g_p|), packs, re-randomizes and sends it.
4. The active decrypts g_p + r_p and returns it; the passive removes r_p, divides by |B| and
   updates w_p.

What each party learns is tabulated in docs/hetero_lr.md.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
from scipy.special import expit

from protocols.masking import random_masks
from protocols.paillier import EncryptedVector, PackedEncryptedVector
from protocols.paillier.encoding import decode_floats
from protocols.paillier.vector import prefetch_randomizers
from vfl.errors import ProtocolError
from vfl.linear import messages as msg
from vfl.linear.optim import apply_update, learning_rate_at, logistic_loss, taylor_logistic_loss
from vfl.progress import progress

RESIDUAL_INT_BITS = 20          # |d| < 2^20: a residual beyond that means the model diverged
FEATURE_INT_BITS = 6            # passives clip standardized features to ±2^6 = 64 standard deviations


@dataclasses.dataclass
class History:
    train_loss: list = dataclasses.field(default_factory=list)
    val_loss: list = dataclasses.field(default_factory=list)
    epoch_seconds: list = dataclasses.field(default_factory=list)
    epochs_run: int = 0
    seconds: float = 0.0


def epoch_batches(n_train: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The batches of one epoch: a permutation both sides derive from (seed, epoch)."""
    order = np.random.default_rng([seed, epoch]).permutation(n_train)
    batches = [order[i:i + batch_size] for i in range(0, n_train, batch_size)]
    if len(batches) > 1 and len(batches[-1]) < batch_size:
        # A short tail joins the previous batch: no batch is ever smaller than batch_size, the
        # size every passive checked against its feature count.
        batches[-2:] = [np.concatenate(batches[-2:])]
    return batches


class ActiveTrainer:
    """The label party's side of the round loop."""

    def __init__(self, transport, passives: list[str], private_key, setup: msg.Setup, x: np.ndarray,
                 y: np.ndarray, *, tol: float, n_iter_no_change: int, approximation: str = "none",
                 verbose: bool = True, passive_features: dict | None = None, checkpoint=None):
        self.t, self.passives, self.sk, self.cfg = transport, passives, private_key, setup
        self.passive_features = passive_features or {}      # from their Ready messages
        self.x, self.y = x, y
        self.tol, self.patience, self.verbose = tol, n_iter_no_change, verbose
        self.taylor = approximation == "taylor"
        self.coef = np.zeros(x.shape[1])
        self.intercept = 0.0
        self.history = History()
        self.checkpoint = checkpoint        # vfl.checkpoint.Checkpoint: where to start, where to save
        self._best, self._stale, self._start, self._stopped = np.inf, 0, 0, False
        state = checkpoint.state if checkpoint is not None else None
        if state is not None and "lbfgs" not in state:      # continue after the epochs it holds (SGD)
            self.coef, self.intercept = np.asarray(state["coef"], float), float(state["intercept"])
            self.history = History(list(state["train_loss"]), list(state["val_loss"]), list(state["epoch_seconds"]),
                                   int(state["epochs_run"]))
            self._best, self._stale, self._stopped = float(state["best"]), int(state["stale"]), bool(state["stopped"])
            self._start = self.history.epochs_run

    def _save(self, stopped: bool) -> None:
        if self.checkpoint is not None:
            h = self.history
            self.checkpoint.save(h.epochs_run, {
                "coef": self.coef, "intercept": self.intercept, "train_loss": h.train_loss, "val_loss": h.val_loss,
                "epoch_seconds": h.epoch_seconds, "epochs_run": h.epochs_run, "best": self._best,
                "stale": self._stale, "stopped": stopped})

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return self.x[rows] @ self.coef + self.intercept + self._scores_of_passives(rows)

    def _scores_of_passives(self, rows: np.ndarray) -> np.ndarray:
        """Σ_p X_p[rows]·w_p, one PartialScores message from each passive."""
        z = np.zeros(len(rows))
        for p in self.passives:
            part = self.t.recv(p, msg.PartialScores).scores
            if part.shape != (len(rows),):
                raise ProtocolError(f"{p} sent {part.shape} partial scores for {len(rows)} rows")
            z = z + part
        return z

    def _loss(self, z: np.ndarray, rows: np.ndarray) -> float:
        y = self.y[rows]
        if self.cfg.task != "logistic":
            return float(0.5 * np.mean((z - y) ** 2))
        if self.taylor:
            return taylor_logistic_loss(z, 2.0 * y - 1.0)
        return logistic_loss(z, y)

    def _residual(self, z: np.ndarray, rows: np.ndarray) -> np.ndarray:
        y = self.y[rows]
        if self.cfg.task != "logistic":
            d = z - y
        elif self.taylor:
            d = 0.25 * z - 0.5 * (2.0 * y - 1.0)
        else:
            d = expit(z) - y
        return d

    def _batch(self, rows: np.ndarray, lr: float, randomizers, next_size: int) -> tuple[float, object]:
        z = self._scores(rows)
        d = self._residual(z, rows)
        upcoming = self._send_gradients(rows, d, randomizers, next_size,
                                        own_update=lambda: self._own_update(rows, d, lr))
        return self._loss(z, rows), upcoming

    def _send_gradients(self, rows: np.ndarray, d: np.ndarray, randomizers=None, next_size: int = 0,
                        own_update=None):
        """One gradient round: every passive gets X_p[rows]ᵀ·d (masked; the active decrypts and
        returns it). Returns the randomizers being made for the next round (``next_size``)."""
        cfg = self.cfg
        enc = EncryptedVector.encrypt(self.sk, d, frac_bits=cfg.residual_frac_bits, int_bits=RESIDUAL_INT_BITS,
                                      randomizers=randomizers.result() if randomizers is not None else None)
        self.t.broadcast(msg.Residual(enc), self.passives)
        # The next batch's randomizers do not depend on its residuals: make them while the
        # passives compute their gradients.
        upcoming = self._prefetch(next_size) if next_size else None
        if own_update is not None:
            own_update()
        for p in self.passives:
            masked = self.t.recv(p, msg.MaskedGradient).gradient
            expected = self.passive_features.get(p)
            if expected is not None and len(masked) != expected:     # decrypt no more than a gradient
                raise ProtocolError(f"{p} sent a masked gradient of {len(masked)} values for its {expected} features")
            values = masked.decrypt_ints(self.sk)
            self.t.send(p, msg.DecryptedMaskedGradient(tuple(str(v) for v in values)))
        return upcoming

    def _own_update(self, rows: np.ndarray, d: np.ndarray, lr: float) -> None:
        """The active's own weights and intercept, from its plaintext gradient."""
        grad = self.x[rows].T @ d / len(rows)
        self.coef = apply_update(self.coef, grad, lr, self.cfg.penalty, self.cfg.alpha)
        self.intercept -= lr * float(d.mean())

    def _prefetch(self, count: int):
        return prefetch_randomizers(self.sk, count)

    def run(self) -> History:
        if self.cfg.solver == "lbfgs":
            from vfl.linear.lbfgs import LbfgsActive
            return LbfgsActive(self, gtol=self.cfg.gtol, max_iter=self.cfg.epochs).run()
        cfg, start = self.cfg, time.perf_counter()
        best, stale = self._best, self._stale
        epochs = range(self._start, cfg.epochs) if not self._stopped else range(0)
        bar = progress(epochs, desc="hetero LR epochs", disable=not self.verbose, initial=self._start,
                       total=cfg.epochs)
        for epoch in bar:
            lr = learning_rate_at(cfg.learning_rate, cfg.lr_schedule, cfg.lr_decay, epoch)
            losses, sizes, epoch_start = [], [], time.perf_counter()
            batches = epoch_batches(len(cfg.train_index), cfg.batch_size, cfg.batch_seed, epoch)
            pending = self._prefetch(len(batches[0]))
            for i, rows in enumerate(batches):
                next_size = len(batches[i + 1]) if i + 1 < len(batches) else 0
                loss, pending = self._batch(cfg.train_index[rows], lr, pending, next_size)
                losses.append(loss)
                sizes.append(len(rows))
            self.history.epoch_seconds.append(time.perf_counter() - epoch_start)
            self.history.train_loss.append(float(np.average(losses, weights=sizes)))
            monitored = self.history.train_loss[-1]
            if len(cfg.val_index):
                monitored = self._loss(self._scores(cfg.val_index), cfg.val_index)
                self.history.val_loss.append(monitored)
            stale = 0 if monitored < best - (self.tol or 0.0) else stale + 1
            best = min(best, monitored)
            stop = stale >= self.patience and (self.tol is not None or bool(len(cfg.val_index)))
            self.t.broadcast(msg.EpochEnd(epoch=epoch, stop=stop), self.passives)
            bar.set_postfix(loss=f"{monitored:.4f}")
            self.history.epochs_run = epoch + 1
            self._best, self._stale = best, stale
            self._save(stop)
            if stop:
                break
        self.history.seconds = time.perf_counter() - start
        return self.history


class PassiveTrainer:
    """A feature party's side of the round loop. It never sees labels, d, or the active's model."""

    def __init__(self, transport, active: str, setup: msg.Setup, x: np.ndarray, *, mask_bits: int,
                 feature_frac_bits: int, checkpoint=None, feature_noise=None):
        self.t, self.active, self.cfg = transport, active, setup
        limit = float(2 ** FEATURE_INT_BITS)     # the declared bound of every feature the gradient uses
        self.x = np.clip(x, -limit, limit)
        self.noise = feature_noise               # vfl.privacy.FeatureNoise: feature DP on all it sends
        if feature_noise is not None:
            feature_noise.start(setup.epochs, x.shape[1], feature_frac_bits)
            self.x = feature_noise.clip_rows(self.x)
        self.mask_bits, self.frac_bits = mask_bits, feature_frac_bits
        self.coef = np.zeros(x.shape[1])
        self.epochs_run = 0
        self.checkpoint, self._stopped = checkpoint, False
        state = checkpoint.state if checkpoint is not None else None
        if state is not None and "lbfgs" not in state:   # continue after the epochs it holds (SGD)
            self.coef, self.epochs_run = np.asarray(state["coef"], float), int(state["epochs_run"])
            self._stopped = bool(state["stopped"])

    def _batch(self, rows: np.ndarray, lr: float, noise=None) -> None:
        """One batch; ``noise``: its (score noise, gradient noise, epoch, batch) under feature DP."""
        self.t.send(self.active, msg.PartialScores(self._scores(rows, None if noise is None else noise[0])))
        grad = self._gradient(rows)
        if noise is not None:           # the gradient sum, noised before this party's weights use it
            step = self.noise.gradient_step
            steps = np.rint(grad * len(rows) / step).astype(np.int64) + noise[1]
            try:
                self.noise.record(noise[2], noise[3], steps)
            except ValueError as exc:
                raise ProtocolError(f"{self.active}: {exc}") from None
            grad = steps * step / len(rows)
        self.coef = apply_update(self.coef, grad, lr, self.cfg.penalty, self.cfg.alpha)
        if noise is not None:
            self.coef = self.noise.project(self.coef)

    def _scores(self, rows: np.ndarray, noise=None) -> np.ndarray:
        z = self.x[rows] @ self.coef
        return z if noise is None else self.noise.release(z, noise, self.noise.score_step)

    def _epoch_noise(self, epoch: int, batches: list[np.ndarray]):
        """Epoch ``epoch``'s noise under feature DP (drawn once, kept with the run): per batch
        (its rows' scores, its gradient), then the validation rows' scores; or None."""
        if self.noise is None:
            return None, None
        sizes, d, n_val = [len(b) for b in batches], self.x.shape[1], len(self.cfg.val_index)
        units = self.noise.draw(epoch, sum(sizes) + len(batches) * d + n_val)
        ends = np.cumsum(sizes)
        scores = np.split(units[:ends[-1]], ends[:-1])
        grads = units[ends[-1]:ends[-1] + len(batches) * d].reshape(len(batches), d)
        return [(z, g, epoch, k) for k, (z, g) in enumerate(zip(scores, grads))], units[ends[-1] + len(batches) * d:]

    def _gradient(self, rows: np.ndarray) -> np.ndarray:
        """One gradient round: X_p[rows]ᵀ·d / |rows| through the masked exchange with the active."""
        enc = self._residual(len(rows))
        grad = enc.matmul(self.x[rows].T, frac_bits=self.frac_bits,
                          scalar_bits=FEATURE_INT_BITS + 1 + self.frac_bits)
        bound = grad.mag_bits + self.mask_bits
        masks = random_masks(len(grad), bound)
        packed = PackedEncryptedVector.from_vector(grad.add_raw(masks, bound))
        self.t.send(self.active, msg.MaskedGradient(packed))
        values = self.t.recv(self.active, msg.DecryptedMaskedGradient).values
        if len(values) != len(masks):
            raise ProtocolError(f"{self.active} returned {len(values)} gradient values, expected {len(masks)}")
        try:
            unmasked = [int(v) - r for v, r in zip(values, masks)]
        except (TypeError, ValueError):
            raise ProtocolError(f"{self.active} returned a malformed gradient") from None
        limit = 1 << grad.mag_bits
        if any(not -limit < g < limit for g in unmasked):
            raise ProtocolError(f"{self.active} returned a gradient outside its possible range")
        return decode_floats(unmasked, grad.exponent) / len(rows)

    def _residual(self, batch_rows: int):
        """The batch's [[d]], checked against what the setup promised (key, scale, bound)."""
        enc = self.t.recv(self.active, msg.Residual).residual
        cfg = self.cfg
        if enc.public_key != cfg.public_key:
            raise ProtocolError(f"{self.active} sent a residual under another key than the job's")
        if len(enc) != batch_rows:
            raise ProtocolError(f"{self.active} sent a residual of length {len(enc)} for a batch of {batch_rows}")
        if enc.exponent != cfg.residual_frac_bits or enc.mag_bits != cfg.residual_frac_bits + RESIDUAL_INT_BITS:
            raise ProtocolError(f"{self.active} sent a residual with scale {enc.exponent}/{enc.mag_bits} bits, "
                                f"not the {cfg.residual_frac_bits}/{cfg.residual_frac_bits + RESIDUAL_INT_BITS} "
                                "the job set")
        return enc

    def run(self) -> int:
        cfg = self.cfg
        if cfg.solver == "lbfgs":
            from vfl.linear.lbfgs import LbfgsPassive
            return LbfgsPassive(self, max_iter=cfg.epochs).run()
        for epoch in range(self.epochs_run, cfg.epochs if not self._stopped else 0):
            lr = learning_rate_at(cfg.learning_rate, cfg.lr_schedule, cfg.lr_decay, epoch)
            batches = epoch_batches(len(cfg.train_index), cfg.batch_size, cfg.batch_seed, epoch)
            noise, val_noise = self._epoch_noise(epoch, batches)
            for k, rows in enumerate(batches):
                self._batch(cfg.train_index[rows], lr, None if noise is None else noise[k])
            if len(cfg.val_index):
                self.t.send(self.active, msg.PartialScores(self._scores(cfg.val_index, val_noise)))
            end = self.t.recv(self.active, msg.EpochEnd)
            self.epochs_run = epoch + 1
            if end.epoch != epoch:
                raise ProtocolError(f"{self.active} ended epoch {end.epoch} while this party is in epoch {epoch}")
            if self.checkpoint is not None:
                self.checkpoint.save(self.epochs_run, {"coef": self.coef, "epochs_run": self.epochs_run,
                                                       "stopped": end.stop})
            if end.stop:
                break
        return self.epochs_run
