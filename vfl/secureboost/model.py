"""Hetero SecureBoost estimators, one class per role.

The active (label) party::

    model = ActiveSecureBoostClassifier(n_estimators=10, max_depth=3).fit(
        X_bank, y, transport=t, passives=["insurer"])
    proba = model.predict_proba(X_bank_new, transport=t, passives=["insurer"])

Each passive party, at the same time::

    PassiveSecureBoost().fit(X_insurer, transport=t, active="bank")
    PassiveSecureBoost.load(path).serve_scores(X_insurer_new, transport=t, active="bank")

Fitted attributes end in ``_`` and hold only this party's part: the active keeps the tree
structure, the leaf weights and its own thresholds; a passive keeps a lookup table
(tree, node) → (feature, threshold, default direction) for the nodes it owns.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, softmax

from protocols.paillier import SCHEMES
from vfl import handshake
from vfl.checkpoint import same_setup
from vfl.errors import DataError, ProtocolError
from vfl.estimator import Estimator
from vfl.holdout import validation_split
from vfl.secureboost import messages as msg
from vfl.secureboost.active import LOGISTIC_INT_BITS, ActiveTrainer, Boosting, Tree
from vfl.secureboost.binning import bin_blocks, bin_columns
from vfl.secureboost.losses import base_score, n_outputs
from vfl.secureboost.passive import PassiveTrainer, go_left
from vfl.secureboost.persist import finite_or_none, load_model, none_to, save_model
from vfl.secureboost.sampling import Sampling
from vfl.secureboost.setup import (
    PARAMETER_CONSTRAINTS,
    check_combined,
    check_setup,
    check_slots,
    new_key,
    row_bits,
)
from vfl.secureboost.splits import TreeParams
from vfl.validation import Boolean, Integer, Optional, Options, check_features, check_labels

ROUTE_ROWS = 1 << 16             # rows routed at a time when serving scores (a multiple of 8)


def _streamed(X) -> bool:
    """A table read a chunk at a time (:class:`vfl.jobs.data.ColumnFile`), not a frame or array."""
    return hasattr(X, "blocks") and not isinstance(X, (pd.DataFrame, np.ndarray))


def _features(X, transport, n_features: int | None = None) -> np.ndarray:
    """Numeric columns; NaN means missing (every split learns where missing values go)."""
    return check_features(X, getattr(transport, "party", "?"), allow_nan=True, n_features=n_features)


class _ActiveSecureBoost(Estimator):
    _losses: tuple = ("logistic",)
    _fitted_attribute = "trees_"
    _parameter_constraints = PARAMETER_CONSTRAINTS

    def __init__(self, *, n_estimators: int = 10, learning_rate: float = 0.3, max_depth: int = 3,
                 max_bins: int = 32, min_child_weight: float = 1.0, reg_lambda: float = 1.0,
                 gamma: float = 0.0, subsample: float = 1.0, colsample_bytree: float = 1.0,
                 goss: bool = False, top_rate: float = 0.2, other_rate: float = 0.1,
                 early_stopping: bool = False, validation_fraction: float = 0.1, n_iter_no_change: int = 5,
                 tol: float = 1e-7, first_k_trees_active_only: int = 0, random_state: int | None = None,
                 frac_bits: int = 24, key_bits: int = 2048, scheme: str = "auto", verbose: bool = True,
                 workers: int | None = None):
        self.n_estimators, self.learning_rate, self.max_depth = n_estimators, learning_rate, max_depth
        self.max_bins, self.min_child_weight, self.reg_lambda = max_bins, min_child_weight, reg_lambda
        self.gamma, self.subsample, self.colsample_bytree = gamma, subsample, colsample_bytree
        self.goss, self.top_rate, self.other_rate = goss, top_rate, other_rate
        self.early_stopping, self.validation_fraction = early_stopping, validation_fraction
        self.n_iter_no_change, self.tol = n_iter_no_change, tol
        self.first_k_trees_active_only, self.random_state = first_k_trees_active_only, random_state
        self.frac_bits, self.key_bits, self.scheme = frac_bits, key_bits, scheme
        self.verbose, self.workers = verbose, workers

    def _check_params(self) -> None:
        check_combined(self)

    def _tree_params(self) -> TreeParams:
        return TreeParams(max_depth=self.max_depth, min_child_weight=float(self.min_child_weight),
                          reg_lambda=float(self.reg_lambda), gamma=float(self.gamma), frac_bits=self.frac_bits)

    def _boosting(self, loss: str, k: int, noise=None) -> Boosting:
        sampling = Sampling(subsample=float(self.subsample), colsample_bytree=float(self.colsample_bytree),
                            goss=bool(self.goss), top_rate=float(self.top_rate), other_rate=float(self.other_rate))
        int_bits, bound = self._int_bits(), 0.0
        if noise is not None:                # |g + noise| ≤ 1 + 10σ but once in ~10²³ draws; clipped there
            bound = 1.0 + 10.0 * noise.sigma
            int_bits = max(int_bits, int(np.ceil(np.log2(bound))) + 1)
        return Boosting(n_estimators=self.n_estimators, learning_rate=float(self.learning_rate), loss=loss,
                        int_bits=int_bits, n_outputs=k, active_only_trees=self.first_k_trees_active_only,
                        sampling=sampling, n_iter_no_change=self.n_iter_no_change, tol=float(self.tol),
                        noise=noise, noise_bound=bound)

    def fit(self, X, y, *, transport, passives: list[str], private_key=None, checkpoint=None, gradient_noise=None):
        """Train with every passive in ``passives`` (they run ``PassiveSecureBoost.fit`` concurrently).

        ``checkpoint`` (:class:`vfl.checkpoint.Checkpoint`): save the state after every tree
        and, if it holds one, continue from it (the same trees as an uninterrupted fit).
        ``gradient_noise`` (:class:`vfl.privacy.GradientNoise`): label DP on the gradients — every
        tree's g is noised before any use, the starting score is 0 (it would read the labels) and
        there is no early stopping (it would choose the tree count from true labels)."""
        self._validate_params()
        x = _features(X, transport)
        labels, n_classes = self._labels(y, len(x), getattr(transport, "party", "active"))
        self.loss_ = self._losses[0] if n_classes <= 2 else self._losses[-1]
        k = n_outputs(self.loss_, n_classes)
        codes, edges = bin_columns(x, self.max_bins)
        rng = np.random.default_rng(self.random_state)
        state = checkpoint.state if checkpoint is not None else None
        if state is not None:        # the rows of the fit being continued (the generator's state follows)
            train, val = state["train"], state["val"]
        else:
            train, val = validation_split(len(x), early_stopping=bool(self.early_stopping) and gradient_noise is None,
                                          fraction=self.validation_fraction, rng=rng)
        if checkpoint is not None:
            checkpoint.fixed.update(train=train, val=val)
        self.base_score_ = (base_score(self.loss_, labels[train], n_classes) if gradient_noise is None
                            else 0.0 if k == 1 else [0.0] * k)
        boosting = self._boosting(self.loss_, k, gradient_noise)
        sample_rows = boosting.sampling.sample_size(len(train))
        slots = dict(n_outputs=k, frac_bits=self.frac_bits, sample_rows=sample_rows,
                     int_bits=boosting.int_bits + boosting.sampling.goss_extra_bits)
        if private_key is None:
            private_key = new_key(self.scheme, self.key_bits, row_bits(**slots))
        elif self.scheme != "auto" and private_key.public_key.scheme != self.scheme:
            raise ValueError(f"scheme={self.scheme!r} but the key given is {private_key.public_key.scheme}")
        check_slots(private_key.public_key, **slots)
        self.scheme_ = private_key.public_key.scheme
        transport.register_public_key(private_key.public_key)
        setup = msg.Setup(public_key=private_key.public_key, n_rows=len(x), n_estimators=self.n_estimators,
                          max_depth=self.max_depth, max_bins=self.max_bins, frac_bits=self.frac_bits, n_outputs=k,
                          sample_rows=sample_rows)
        with transport.in_phase("train"):
            transport.broadcast(setup, passives)
            self.passive_features_ = {p: handshake.check_ready(transport.recv(p, handshake.Ready), p) for p in passives}
            trainer = ActiveTrainer(transport, list(passives), private_key, self._tree_params(), x, codes, edges,
                                    labels, boosting, passive_features=self.passive_features_,
                                    rng=rng, train_rows=train, val_rows=val, verbose=self.verbose,
                                    workers=self.workers, checkpoint=checkpoint)
            self.trees_ = trainer.run(self.base_score_)
        self.passives_, self.n_features_in_ = list(passives), x.shape[1]
        self.tree_seconds_, self.n_estimators_ = trainer.tree_seconds, len(self.trees_)
        self.phases_ = trainer.phases.to_report()
        self.loss_curve_, self.validation_loss_curve_ = trainer.train_loss, trainer.val_loss
        self._set_feature_names(X)
        return self

    def _labels(self, y, n_rows: int, party: str) -> tuple[np.ndarray, int]:
        """Validated labels and the class count (0 for regression)."""
        raise NotImplementedError

    def _int_bits(self) -> int:
        return LOGISTIC_INT_BITS

    # -- prediction --------------------------------------------------------------------------
    def decision_function(self, X, *, transport, passives: list[str]) -> np.ndarray:
        """Raw scores: log-odds (n,), or per-class scores (n, K) for softmax. One round: every
        passive evaluates all its nodes on all rows."""
        self._check_fitted()
        x = _features(self._columns_for(X, getattr(transport, "party", "active")), transport, self.n_features_in_)
        if sorted(passives) != sorted(self.passives_):
            raise ValueError(f"the model was trained with passives {self.passives_}, got {list(passives)}")
        with transport.in_phase("predict"):
            transport.broadcast(msg.RouteRequest(n_rows=len(x)), self.passives_)
            routes = {p: self._routes(transport, name, len(x)) for p, name in enumerate(self.passives_, start=1)}
        base = np.asarray(self.base_score_, float)
        z = np.tile(base, (len(x), 1)) if base.ndim else np.full(len(x), float(base))
        for t, tree in enumerate(self.trees_):
            z += walk(tree, t, x, routes)
        return z

    def _routes(self, transport, name: str, n_rows: int) -> dict:
        m = transport.recv(name, msg.Routes)
        nodes, bits = np.asarray(m.nodes, np.int64).reshape(-1, 2), np.asarray(m.bits, np.uint8)
        if bits.shape != (len(nodes), -(-n_rows // 8)):
            raise ProtocolError(f"{name} sent routes of shape {bits.shape} for {len(nodes)} nodes and {n_rows} rows")
        flags = np.unpackbits(bits, axis=1, count=n_rows).astype(bool) if len(nodes) else bits
        return {(int(t), int(k)): flags[i] for i, (t, k) in enumerate(nodes.tolist())}

    def feature_importances(self, kind: str = "gain") -> dict:
        """Per party and feature: total split gain (``"gain"``) or split count (``"split"``).
        Passive features are the passive's own column indices (the active learns them)."""
        self._check_fitted()
        if kind not in ("gain", "split"):
            raise ValueError(f"kind must be 'gain' or 'split', got {kind!r}")
        names = ["active", *self.passives_]
        out: dict = {}
        for tree in self.trees_:
            for k in np.flatnonzero(tree.owner >= 0):
                key = (names[tree.owner[k]], int(tree.feature[k]))
                out[key] = out.get(key, 0.0) + (float(tree.gain[k]) if kind == "gain" else 1.0)
        return out

    # -- model files -------------------------------------------------------------------------
    def save(self, path) -> None:
        self._check_fitted()
        trees = [{"owner": t.owner.tolist(), "feature": t.feature.tolist(), "threshold": finite_or_none(t.threshold),
                  "default_left": t.default_left.tolist(), "value": t.value.tolist(), "gain": t.gain.tolist()}
                 for t in self.trees_]
        save_model(path, role="active", params={**self.get_params(), "loss": self.loss_},
                   body={"base_score": self.base_score_, "passives": self.passives_,
                         "n_features": self.n_features_in_, "trees": trees,
                         "feature_names": _names(self)})

    @classmethod
    def load(cls, path):
        doc = load_model(path, role="active")
        loss = doc["params"].get("loss", cls._losses[0])
        if loss not in cls._losses:
            raise ValueError(f"{path} holds a {loss} model, not a {' or '.join(cls._losses)} one")
        params = {k: v for k, v in doc["params"].items() if k != "loss"}
        model, body = cls(**params), doc["model"]
        model.loss_ = loss
        try:
            model.trees_ = [Tree(owner=np.asarray(t["owner"], int), feature=np.asarray(t["feature"], int),
                                 threshold=none_to(t["threshold"], np.nan),
                                 default_left=np.asarray(t["default_left"], bool),
                                 value=np.asarray(t["value"], float), gain=np.asarray(t["gain"], float))
                            for t in body["trees"]]
            for t in model.trees_:      # a null threshold of an active node means +inf
                t.threshold[(t.owner == 0) & np.isnan(t.threshold)] = np.inf
            base = body["base_score"]
            model.base_score_ = [float(v) for v in base] if isinstance(base, list) else float(base)
            model.passives_, model.n_estimators_ = list(body["passives"]), len(model.trees_)
            model.n_features_in_ = int(body["n_features"])
            _set_names(model, body)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path} is malformed: {exc}") from None
        outputs = np.shape(model.base_score_)
        if any(t.value.shape[1:] != outputs for t in model.trees_):
            raise ValueError(f"{path} is malformed: leaf values do not match {outputs or 'one'} output(s)")
        if loss != "squared":
            model.classes_ = np.arange(outputs[0] if outputs else 2)
        return model


class ActiveSecureBoostClassifier(_ActiveSecureBoost):
    """Label party of hetero SecureBoost, classification with labels 0, 1, …, K − 1.

    Two classes: logistic loss, one score per row. K > 2 classes: softmax loss with one
    multi-output tree per round (a K-vector in every leaf), see docs/secureboost.md.
    """

    _losses = ("logistic", "softmax")

    def __init__(self, *, frac_bits: int = 12, **kwargs):
        # |g| ≤ 1 and h ≤ ¼ here: 12 fractional bits move the trees' held-out AUC by at most
        # 0.002 from 24 bits on the tables measured (docs/secureboost.md), in 12 fewer bits per
        # slot: cheaper packing, fewer ciphertexts to decrypt. Regression keeps 24 (its
        # gradients are in the labels' units)
        super().__init__(frac_bits=frac_bits, **kwargs)

    def _labels(self, y, n_rows: int, party: str) -> tuple[np.ndarray, int]:
        labels = check_labels(y, n_rows, party, "classes")
        self.classes_ = np.arange(int(labels.max()) + 1)
        return labels, len(self.classes_)

    def predict_proba(self, X, *, transport, passives: list[str]) -> np.ndarray:
        z = self.decision_function(X, transport=transport, passives=passives)
        if z.ndim == 2:
            return softmax(z, axis=1)
        p = expit(z)
        return np.column_stack([1.0 - p, p])

    def predict(self, X, *, transport, passives: list[str]) -> np.ndarray:
        z = self.decision_function(X, transport=transport, passives=passives)
        return z.argmax(axis=1) if z.ndim == 2 else (z > 0).astype(int)


class ActiveSecureBoostRegressor(_ActiveSecureBoost):
    """Label party of hetero SecureBoost, regression (squared loss, h = 1).

    ``gradient_int_bits`` declares |g| = |score − y| < 2^bits; it is public (it sizes the
    packed slots the passives see), so it is a parameter, not derived from the labels.
    """

    _losses = ("squared",)

    def __init__(self, *, gradient_int_bits: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.gradient_int_bits = gradient_int_bits

    def _labels(self, y, n_rows: int, party: str) -> tuple[np.ndarray, int]:
        labels = check_labels(y, n_rows, party, "continuous")
        spread = float(np.abs(labels - labels.mean()).max())
        if spread >= 2.0 ** (self.gradient_int_bits - 1):
            raise DataError(f"{party}: labels lie up to {spread:.4g} from their mean, beyond what gradient_int_bits="
                            f"{self.gradient_int_bits} covers (2^{self.gradient_int_bits - 1}): raise it or rescale")
        return labels, 0

    def _int_bits(self) -> int:
        return self.gradient_int_bits

    def predict(self, X, *, transport, passives: list[str]) -> np.ndarray:
        return self.decision_function(X, transport=transport, passives=passives)


def _names(model) -> list | None:
    """Column names a job attached as ``feature_names_in_`` (kept in the model file)."""
    names = getattr(model, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else None


def _set_names(model, body: dict) -> None:
    if body.get("feature_names"):
        model.feature_names_in_ = list(body["feature_names"])


def walk(tree: Tree, t: int, x: np.ndarray, routes: dict) -> np.ndarray:
    """Leaf values of ``tree`` for every row; passive nodes follow that passive's route bits."""
    node = np.zeros(len(x), np.int64)
    for _ in range(len(tree.owner).bit_length()):
        for k in np.unique(node).tolist():
            owner = int(tree.owner[k])
            if owner < 0:
                continue
            rows = np.flatnonzero(node == k)
            if owner == 0:
                left = go_left(x[rows, tree.feature[k]], tree.threshold[k], bool(tree.default_left[k]))
            else:
                flags = routes[owner].get((t, k))
                if flags is None:
                    raise ProtocolError(f"passive #{owner} sent no route for tree {t} node {k}")
                left = flags[rows]
            node[rows] = np.where(left, 2 * k + 1, 2 * k + 2)
    return tree.value[node]


class PassiveSecureBoost(Estimator):
    """A feature party of hetero SecureBoost. Holds no labels and no key.

    ``max_estimators`` caps how many trees it will help build in one job (each tree reveals
    node row partitions to it and histogram sums to the active).
    """

    _fitted_attribute = "lookup_"
    _parameter_constraints = {"max_estimators": Integer(1), "allow_insecure_key_size_for_tests": Boolean(),
                              "workers": Optional(Integer(1)), "schemes": Options(SCHEMES, many=True)}

    def __init__(self, *, max_estimators: int = 500, allow_insecure_key_size_for_tests: bool = False,
                 workers: int | None = None, schemes: tuple = SCHEMES):
        self.max_estimators, self.schemes = max_estimators, schemes
        self.allow_insecure_key_size_for_tests = allow_insecure_key_size_for_tests
        self.workers = workers

    def fit(self, X, *, transport, active: str, checkpoint=None):
        """Serve the active's fit; ``checkpoint`` as in the active's ``fit`` (the setup the
        active sends must then be the one the checkpoint was saved under). ``X``: a frame or
        array, or a :class:`vfl.jobs.data.ColumnFile` (a table read a chunk at a time, binned
        in two passes without holding it: :func:`~vfl.secureboost.binning.bin_blocks`)."""
        self._validate_params()
        streamed = _streamed(X)
        x = X if streamed else _features(X, transport)
        with transport.in_phase("train"):
            setup = transport.recv(active, msg.Setup)
            check_setup(setup, self, x, active)
            same_setup(checkpoint, setup, active)
            transport.send(active, handshake.Ready(n_features=x.shape[1]))   # binning overlaps its g/h encryption
            codes, edges = bin_blocks(x, setup.max_bins) if streamed else bin_columns(x, setup.max_bins)
            trainer = PassiveTrainer(transport, active, setup, codes, edges, max_trees=self.max_estimators,
                                     workers=self.workers, checkpoint=checkpoint)
            self.n_trees_ = trainer.run()
        self.phases_ = trainer.phases.to_report()
        self.lookup_, self.n_features_in_ = trainer.lookup, x.shape[1]
        self._set_feature_names(X)
        if streamed:
            self.feature_names_in_ = list(X.columns)
        return self

    def serve_scores(self, X, *, transport, active: str) -> int:
        """Answer one ``RouteRequest``: a bit per (owned node, row). Returns the row count. A
        :class:`~vfl.jobs.data.ColumnFile` is read for the columns the trees use only."""
        self._check_fitted()
        party = getattr(transport, "party", "passive")
        keys = sorted(self.lookup_)
        used = sorted({self.lookup_[k][0] for k in keys})
        if _streamed(X):                                 # by name, as a frame is (_columns_for)
            names = getattr(self, "feature_names_in_", None) or list(X.columns)
            missing = [n for n in names if n not in X.columns]
            if len(names) != self.n_features_in_ or missing:
                raise DataError(f"{party}: the model was fitted on columns {names}; the table lacks {missing}")
            n, values = len(X), X[[names[f] for f in used]].to_numpy() if used else None
            column = {f: values[:, j] for j, f in enumerate(used)}
        else:
            x = _features(self._columns_for(X, party), transport, self.n_features_in_)
            n, column = len(x), {f: x[:, f] for f in used}
        with transport.in_phase("predict"):
            request = transport.recv(active, msg.RouteRequest)
            if request.n_rows != n:
                raise ProtocolError(f"{active} asks for {request.n_rows} rows but this party holds {n}: "
                                    "align the tables first")
            bits = np.zeros((len(keys), (n + 7) // 8), np.uint8)
            for start in range(0, n, ROUTE_ROWS):          # row blocks: never a bool per (node, row) of them all
                stop = min(n, start + ROUTE_ROWS)
                flags = np.array([go_left(column[f][start:stop], thr, dl)
                                  for f, thr, dl in (self.lookup_[k] for k in keys)], bool)
                bits[:, start // 8:(stop + 7) // 8] = np.packbits(flags.reshape(len(keys), stop - start), axis=1)
            transport.send(active, msg.Routes(nodes=np.asarray(keys, np.int64).reshape(-1, 2), bits=bits))
        return n

    def save(self, path) -> None:
        self._check_fitted()
        table = [[t, k, f, thr if np.isfinite(thr) else None, bool(dl)]
                 for (t, k), (f, thr, dl) in sorted(self.lookup_.items())]
        save_model(path, role="passive", params=self.get_params(),
                   body={"lookup": table, "n_features": self.n_features_in_, "n_trees": self.n_trees_,
                         "feature_names": _names(self)})

    @classmethod
    def load(cls, path):
        doc = load_model(path, role="passive")
        model, body = cls(**doc["params"]), doc["model"]
        try:
            model.lookup_ = {(int(t), int(k)): (int(f), np.inf if thr is None else float(thr), bool(dl))
                             for t, k, f, thr, dl in body["lookup"]}
            model.n_features_in_, model.n_trees_ = int(body["n_features"]), int(body["n_trees"])
            _set_names(model, body)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path} is malformed: {exc}") from None
        return model
