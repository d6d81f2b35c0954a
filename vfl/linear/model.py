"""Hetero linear and logistic regression estimators, one class per role.

The active (label) party::

    model = ActiveLogisticRegression(epochs=10, batch_size=256).fit(X_bank, y, transport=t, passives=["insurer"])
    proba = model.predict_proba(X_bank_new, transport=t, passives=["insurer"])

Each passive party, at the same time::

    PassiveLogisticRegression(max_epochs=50).fit(X_insurer, transport=t, active="bank")
    PassiveLogisticRegression.load(path).serve_scores(X_insurer_new, transport=t, active="bank")

Fitted attributes end in ``_`` and hold only this party's slice of the model.
"""
from __future__ import annotations

import numpy as np

from protocols.paillier import generate_keypair
from vfl import handshake
from vfl.checkpoint import same_setup
from vfl.errors import DataError, ProtocolError
from vfl.estimator import Estimator
from vfl.holdout import validation_split
from vfl.linear import messages as msg
from vfl.linear.feature_key import FeatureKeyActiveTrainer, FeatureKeyPassiveTrainer
from vfl.linear.optim import PENALTIES, SCHEDULES
from vfl.linear.persist import load_model, save_model
from vfl.linear.setup import PROTOCOLS, SOLVERS, build_setup, check_setup
from vfl.linear.training import FEATURE_INT_BITS, ActiveTrainer, PassiveTrainer
from vfl.privacy import clip_rows
from vfl.validation import Boolean, Integer, Interval, Optional, Options, check_features, check_labels


class _Standardizer:
    """Per-party feature scaling fitted on training rows only (kept in the model file)."""

    @staticmethod
    def fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale == 0] = 1.0
        return mean, scale


def _features(X, transport, n_features: int | None = None) -> np.ndarray:
    """Complete numeric rows: linear models need every value (NaN is refused, naming the column)."""
    return check_features(X, getattr(transport, "party", "active"), allow_nan=False, n_features=n_features,
                          nan_hint="linear models need complete rows: impute them first")


class _ActiveLinear(Estimator):
    _task = "logistic"
    _label_kind = "binary"
    _fitted_attribute = "coef_"
    _parameter_constraints = {
        "learning_rate": Interval(0, None, "neither"), "epochs": Integer(1), "batch_size": Integer(2),
        "lr_schedule": Options(SCHEDULES), "lr_decay": Interval(0), "penalty": Options(PENALTIES),
        "alpha": Interval(0), "early_stopping": Boolean(), "validation_fraction": Interval(0, 1, "neither"),
        "tol": Optional(Interval(0)), "n_iter_no_change": Integer(1), "standardize": Boolean(),
        "random_state": Optional(Integer(0)), "key_bits": Integer(256, 8192),
        "residual_frac_bits": Integer(8, 48), "approximation": Options(("none", "taylor")),
        "protocol": Options(PROTOCOLS), "solver": Options(SOLVERS), "gtol": Interval(0), "verbose": Boolean(),
    }

    def __init__(self, *, solver: str = "lbfgs", learning_rate: float = 0.15, epochs: int = 100,
                 batch_size: int = 512, lr_schedule: str = "inverse", lr_decay: float = 0.05, penalty: str = "l2",
                 alpha: float = 1e-4, gtol: float = 1e-4, early_stopping: bool = False,
                 validation_fraction: float = 0.1, tol: float | None = None, n_iter_no_change: int = 5,
                 standardize: bool = True, random_state: int | None = None, key_bits: int = 2048,
                 residual_frac_bits: int = 24, approximation: str = "none", protocol: str = "label_key",
                 verbose: bool = True):
        self.solver, self.gtol = solver, gtol
        self.learning_rate, self.epochs, self.batch_size = learning_rate, epochs, batch_size
        self.lr_schedule, self.lr_decay, self.penalty, self.alpha = lr_schedule, lr_decay, penalty, alpha
        self.early_stopping, self.validation_fraction = early_stopping, validation_fraction
        self.tol, self.n_iter_no_change, self.standardize = tol, n_iter_no_change, standardize
        self.random_state, self.key_bits, self.residual_frac_bits = random_state, key_bits, residual_frac_bits
        self.approximation, self.protocol, self.verbose = approximation, protocol, verbose

    def _check_params(self) -> None:
        if self.solver == "lbfgs" and self.penalty == "l1":
            raise ValueError('penalty "l1" needs solver "sgd" (L-BFGS takes "l2" or "none")')

    def fit(self, X, y, *, transport, passives: list[str], private_key=None, checkpoint=None, feature_privacy=None):
        """Train with every passive in ``passives`` (they run ``Passive*.fit`` concurrently).

        ``checkpoint`` (:class:`vfl.checkpoint.Checkpoint`): save the state after every
        epoch and, if it holds one, continue from it (the same model as an uninterrupted fit).
        ``feature_privacy`` (:class:`vfl.privacy.FeaturePrivacy`): every passive noises what it
        sends (each passive's ``fit`` must be given the same, as its ``feature_noise``)."""
        self._validate_params()
        if feature_privacy is not None:
            if self._task != "logistic":
                raise ValueError("feature privacy is for logistic regression (its residual is bounded)")
            feature_privacy.check_model(self.get_params())
        x = _features(X, transport)
        labels = check_labels(y, len(x), getattr(transport, "party", "active"), self._label_kind)
        rng = np.random.default_rng(self.random_state)
        state = checkpoint.state if checkpoint is not None else None
        if state is not None:        # the rows and batch order of the fit being continued
            train, val, batch_seed = state["train"], state["val"], int(state["batch_seed"])
        else:
            train, val = validation_split(len(x), early_stopping=self.early_stopping,
                                          fraction=self.validation_fraction, rng=rng)
            batch_seed = None
        self.mean_, self.scale_ = _Standardizer.fit(x[train]) if self.standardize else \
            (np.zeros(x.shape[1]), np.ones(x.shape[1]))
        label_key = self.protocol == "label_key"       # else every passive brings its own key
        if private_key is None and label_key:
            _, private_key = generate_keypair(self.key_bits)
        if label_key:
            transport.register_public_key(private_key.public_key)
        setup = build_setup(self, self._task, private_key.public_key if label_key else None, len(x), train, val, rng,
                            batch_seed, feature_privacy)
        if checkpoint is not None:
            checkpoint.fixed.update(train=train, val=val, batch_seed=setup.batch_seed)
        with transport.in_phase("train"):
            transport.broadcast(setup, passives)
            self.passive_features_ = {p: handshake.check_ready(transport.recv(p, handshake.Ready), p)
                                      for p in passives}
            options = dict(tol=self.tol, n_iter_no_change=self.n_iter_no_change, approximation=self.approximation,
                           verbose=self.verbose, passive_features=self.passive_features_, checkpoint=checkpoint)
            if label_key:
                trainer = ActiveTrainer(transport, list(passives), private_key, setup, self._scale(x), labels,
                                        **options)
            else:
                trainer = FeatureKeyActiveTrainer(transport, list(passives), None, setup, self._scale(x), labels,
                                                  min_key_bits=min(2048, self.key_bits), **options)
            history = trainer.run()
        self.coef_, self.intercept_ = trainer.coef, trainer.intercept
        self.loss_curve_, self.validation_loss_curve_ = history.train_loss, history.val_loss
        self.n_epochs_, self.fit_seconds_ = history.epochs_run, history.seconds
        self.epoch_seconds_ = history.epoch_seconds
        self.n_features_in_ = x.shape[1]
        self._set_feature_names(X)
        return self

    def _scale(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean_) / self.scale_

    def decision_function(self, X, *, transport, passives: list[str]) -> np.ndarray:
        """z = X_a·w_a + b + Σ_p X_p·w_p; each passive scores its own rows (``Passive*.serve_scores``)."""
        self._check_fitted()
        x = _features(self._columns_for(X, getattr(transport, "party", "active")), transport, self.n_features_in_)
        z = self._scale(x) @ self.coef_ + self.intercept_
        with transport.in_phase("predict"):
            transport.broadcast(msg.ScoreRequest(n_rows=len(x)), passives)
            for p in passives:
                part = transport.recv(p, msg.PartialScores).scores
                if part.shape != (len(x),):
                    raise ProtocolError(f"{p} returned {part.shape} scores for {len(x)} rows: are the tables aligned?")
                z = z + part
        return z

    def save(self, path) -> None:
        self._check_fitted()
        save_model(path, role="active", task=self._task, params=self.get_params(),
                   arrays={"coef": self.coef_, "mean": self.mean_, "scale": self.scale_},
                   scalars={"intercept": self.intercept_, "n_epochs": self.n_epochs_,
                            "feature_names": getattr(self, "feature_names_in_", None)})

    @classmethod
    def load(cls, path):
        data = load_model(path, role="active", task=cls._task)
        model = cls(**data["params"])
        model.coef_, model.mean_, model.scale_ = _arrays(data)
        model.intercept_, model.n_epochs_ = data["scalars"]["intercept"], data["scalars"]["n_epochs"]
        model.n_features_in_ = len(model.coef_)
        if data["scalars"].get("feature_names"):
            model.feature_names_in_ = list(data["scalars"]["feature_names"])
        return model


class ActiveLogisticRegression(_ActiveLinear):
    """Label party of hetero logistic regression (Taylor loss, Paillier, no arbiter)."""

    _task = "logistic"

    def predict_proba(self, X, *, transport, passives: list[str]) -> np.ndarray:
        z = self.decision_function(X, transport=transport, passives=passives)
        p = 1.0 / (1.0 + np.exp(-z))
        return np.column_stack([1.0 - p, p])

    def predict(self, X, *, transport, passives: list[str]) -> np.ndarray:
        return (self.decision_function(X, transport=transport, passives=passives) > 0).astype(int)


class ActiveLinearRegression(_ActiveLinear):
    """Label party of hetero linear regression (squared loss)."""

    _task = "linear"
    _label_kind = "continuous"

    def predict(self, X, *, transport, passives: list[str]) -> np.ndarray:
        return self.decision_function(X, transport=transport, passives=passives)


class PassiveLinearModel(Estimator):
    """A feature party of hetero linear/logistic regression. Holds no labels, and no key except
    its own per-job key under ``protocol="feature_key"`` (docs/hetero_lr.md).

    ``max_epochs`` caps how many epochs it will serve in one job; a job asking for more, or with a
    batch not larger than this party's feature count (the gradient would reveal features), is
    refused before any cryptography starts.
    """

    _fitted_attribute = "coef_"
    _parameter_constraints = {
        "max_epochs": Integer(1), "mask_bits": Integer(1, 256), "feature_frac_bits": Integer(8, 32),
        "standardize": Boolean(), "key_bits": Integer(256, 8192), "allow_insecure_key_size_for_tests": Boolean(),
        "verbose": Boolean(),
    }

    def __init__(self, *, max_epochs: int = 100, mask_bits: int = 64, feature_frac_bits: int = 16,
                 standardize: bool = True, key_bits: int = 2048, allow_insecure_key_size_for_tests: bool = False,
                 verbose: bool = False):
        self.max_epochs, self.mask_bits, self.feature_frac_bits = max_epochs, mask_bits, feature_frac_bits
        self.verbose = verbose                # progress bar of the one-time encryption ("feature_key");
        # off by default: a served feature party's stderr is its log
        self.key_bits = key_bits              # its own key, with protocol "feature_key" only
        self.standardize = standardize
        self.allow_insecure_key_size_for_tests = allow_insecure_key_size_for_tests

    def fit(self, X, *, transport, active: str, checkpoint=None, feature_noise=None):
        """Serve the active's fit; ``checkpoint`` as in the active's ``fit`` (the setup the
        active sends must then be the one the checkpoint was saved under). ``feature_noise``
        (:class:`vfl.privacy.FeatureNoise`): the feature DP this party applies to all it sends;
        the active's setup must ask for the same."""
        self._validate_params()
        x = _features(X, transport)
        with transport.in_phase("train"):
            setup = transport.recv(active, msg.Setup)
            check_setup(setup, self, x, active, feature_noise)
            same_setup(checkpoint, setup, active)
            train = setup.train_index
            self.mean_, self.scale_ = _Standardizer.fit(self._reference(x[train], feature_noise, transport)) \
                if self.standardize else (np.zeros(x.shape[1]), np.ones(x.shape[1]))
            transport.send(active, handshake.Ready(n_features=x.shape[1]))
            scaled, options = (x - self.mean_) / self.scale_, dict(mask_bits=self.mask_bits,
                                                                  feature_frac_bits=self.feature_frac_bits,
                                                                  checkpoint=checkpoint, feature_noise=feature_noise)
            if setup.protocol == "feature_key":
                trainer = FeatureKeyPassiveTrainer(transport, active, setup, scaled, key_bits=self.key_bits,
                                                   allow_small_key=self.allow_insecure_key_size_for_tests,
                                                   verbose=self.verbose, **options)
            else:
                trainer = PassiveTrainer(transport, active, setup, scaled, **options)
            self.n_epochs_ = trainer.run()
        self.coef_, self.task_, self.n_features_in_ = trainer.coef, setup.task, x.shape[1]
        self.row_clip_ = None if feature_noise is None else feature_noise.row_clip   # part of the model it trained
        self._set_feature_names(X)
        return self

    @staticmethod
    def _reference(x_train: np.ndarray, feature_noise, transport) -> np.ndarray:
        """The rows whose statistics standardize the columns: the training rows, or under feature
        DP rows it does not protect (the training rows' mean and scale would make every score
        depend on every training row)."""
        if feature_noise is None:
            return x_train
        if feature_noise.reference is None:
            raise ValueError("feature DP standardizes with rows it does not protect: give FeatureNoise a reference "
                             "(the held-out rows), or standardize=False")
        ref = _features(feature_noise.reference, transport, x_train.shape[1])
        if len(ref) < 2:
            raise DataError(f"{getattr(transport, 'party', 'passive')} has {len(ref)} held-out rows to standardize "
                            "its columns with under feature DP; it needs at least 2")
        return ref

    def serve_scores(self, X, *, transport, active: str) -> int:
        """Answer one ``ScoreRequest`` with this party's partial scores; returns the row count."""
        self._check_fitted()
        x = _features(self._columns_for(X, getattr(transport, "party", "passive")), transport, self.n_features_in_)
        with transport.in_phase("predict"):
            transport.send(active, msg.PartialScores(self._requested_rows(x, transport, active) @ self.coef_))
        return len(x)

    def _requested_rows(self, x: np.ndarray, transport, active: str) -> np.ndarray:
        """The active's ``ScoreRequest``, checked against this party's rows ``x``; those rows
        standardized and clipped as in training."""
        request = transport.recv(active, msg.ScoreRequest)
        if request.n_rows != len(x):
            raise ProtocolError(f"{active} asks for {request.n_rows} rows but this party holds {len(x)}: "
                                "align the tables first")
        scaled = np.clip((x - self.mean_) / self.scale_, -2.0 ** FEATURE_INT_BITS, 2.0 ** FEATURE_INT_BITS)
        if getattr(self, "row_clip_", None) is not None:
            scaled = clip_rows(scaled, self.row_clip_)
        return scaled

    def save(self, path) -> None:
        self._check_fitted()
        save_model(path, role="passive", task=self.task_, params=self.get_params(),
                   arrays={"coef": self.coef_, "mean": self.mean_, "scale": self.scale_},
                   scalars={"n_epochs": self.n_epochs_, "feature_names": getattr(self, "feature_names_in_", None),
                            "row_clip": getattr(self, "row_clip_", None)})

    @classmethod
    def load(cls, path):
        data = load_model(path, role="passive", task=None)
        model = cls(**data["params"])
        model.coef_, model.mean_, model.scale_ = _arrays(data)
        model.n_epochs_, model.task_, model.n_features_in_ = data["scalars"]["n_epochs"], data["task"], len(model.coef_)
        model.row_clip_ = data["scalars"].get("row_clip")
        if data["scalars"].get("feature_names"):
            model.feature_names_in_ = list(data["scalars"]["feature_names"])
        return model


class PassiveLogisticRegression(PassiveLinearModel):
    """Feature party of hetero logistic regression."""


class PassiveLinearRegression(PassiveLinearModel):
    """Feature party of hetero linear regression."""


def _arrays(data: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.asarray(data["arrays"][k], float) for k in ("coef", "mean", "scale"))
