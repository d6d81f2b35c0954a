"""A model family that lives outside the engine, loaded as a plugin: it predicts the mean label.

Used by tests only, to show that a family plugs in through its own files: ``plugins =
["toy_family"]`` in a party config, or ``vfl run --plugin toy_family``. The passive takes part in
every step (a handshake, then zeros as its partial scores), so the whole job path is exercised.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.dummy import DummyRegressor

from protocols.messages import Message
from vfl import handshake, registry
from vfl.errors import ProtocolError
from vfl.estimator import Estimator
from vfl.family import DataNeeds, ModelFamily, TrainingSummary
from vfl.model_files import read_model_file, write_model_file
from vfl.validation import Boolean, Integer, Interval, check_features, check_labels

FORMAT = "toy-mean-model"


@dataclasses.dataclass(frozen=True)
class MeanSetup(Message):
    KIND = "toy.setup"
    n_rows: int


@dataclasses.dataclass(frozen=True)
class MeanScoreRequest(Message):
    KIND = "toy.score_request"
    n_rows: int


@dataclasses.dataclass(frozen=True)
class MeanPartialScores(Message):
    KIND = "toy.partial_scores"
    scores: np.ndarray


class ActiveMean(Estimator):
    _fitted_attribute = "mean_"
    _parameter_constraints = {"shrinkage": Interval(0, 1), "verbose": Boolean()}

    def __init__(self, *, shrinkage: float = 0.0, verbose: bool = True):
        self.shrinkage, self.verbose = shrinkage, verbose

    def fit(self, X, y, *, transport, passives, private_key=None):
        self._validate_params()
        x = check_features(X, transport.party, allow_nan=True)
        labels = check_labels(y, len(x), transport.party, "continuous")
        transport.broadcast(MeanSetup(n_rows=len(x)), passives)
        self.passive_features_ = {p: handshake.check_ready(transport.recv(p, handshake.Ready), p) for p in passives}
        self.mean_ = float((1.0 - self.shrinkage) * labels.mean())
        self._set_feature_names(X)
        return self

    def decision_function(self, X, *, transport, passives):
        self._check_fitted()
        x = check_features(self._columns_for(X, transport.party), transport.party, allow_nan=True)
        transport.broadcast(MeanScoreRequest(n_rows=len(x)), passives)
        z = np.full(len(x), self.mean_)
        for p in passives:
            part = transport.recv(p, MeanPartialScores).scores
            if part.shape != z.shape:
                raise ProtocolError(f"{p} sent {part.shape} scores for {len(x)} rows")
            z = z + part
        return z

    def save(self, path):
        self._check_fitted()
        write_model_file(path, {"format": FORMAT, "version": 1, "role": "active", "params": self.get_params(),
                                "mean": self.mean_, "feature_names": getattr(self, "feature_names_in_", None)})

    @classmethod
    def load(cls, path):
        doc = read_model_file(path, format=FORMAT, version=1, role="active")
        model = cls(**doc["params"])
        model.mean_ = doc["mean"]
        if doc["feature_names"]:
            model.feature_names_in_ = doc["feature_names"]
        return model


class PassiveMean(Estimator):
    _fitted_attribute = "n_features_in_"
    _parameter_constraints = {"max_rounds": Integer(1)}

    def __init__(self, *, max_rounds: int = 10):
        self.max_rounds = max_rounds

    def fit(self, X, *, transport, active):
        x = check_features(X, transport.party, allow_nan=True)
        setup = transport.recv(active, MeanSetup)
        handshake.refuse(handshake.setup_problems(job_rows=setup.n_rows, my_rows=len(x), rounds=1,
                                                  max_rounds=self.max_rounds, unit="rounds", key_bits=None,
                                                  allow_small_key=False), "mean", active)
        transport.send(active, handshake.Ready(n_features=x.shape[1]))
        self.n_features_in_ = x.shape[1]
        return self

    def serve_scores(self, X, *, transport, active):
        request = transport.recv(active, MeanScoreRequest)
        transport.send(active, MeanPartialScores(scores=np.zeros(request.n_rows)))
        return request.n_rows

    def save(self, path):
        write_model_file(path, {"format": FORMAT, "version": 1, "role": "passive", "params": self.get_params(),
                                "n_features": self.n_features_in_})

    @classmethod
    def load(cls, path):
        doc = read_model_file(path, format=FORMAT, version=1, role="passive")
        model = cls(**doc["params"])
        model.n_features_in_ = doc["n_features"]
        return model


class MeanPredictorFamily(ModelFamily):
    name = "mean_predictor"
    task = "regression"
    data = DataNeeds(allow_nan=True, label="continuous")
    active_estimator = ActiveMean
    passive_estimator = PassiveMean
    passive_cap = "max_rounds"
    small_key_option = None            # it uses no keys

    def summary(self, model):
        return TrainingSummary(None, {"mean": model.mean_, "passive_features": model.passive_features_})

    def baseline(self, params, x_train, y_train, x_eval):
        mean = DummyRegressor().fit(x_train, y_train)
        return "scikit-learn DummyRegressor (the mean)", (1.0 - params.get("shrinkage", 0.0)) * mean.predict(x_eval)


registry.register(MeanPredictorFamily())
