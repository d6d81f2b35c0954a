"""The centralized baseline: the same model trained on the joined data with the same split.

Only possible where one machine holds every party's table (``vfl run --local``).
"""
from __future__ import annotations

import json
import pathlib

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vfl.jobs.data import feature_columns
from vfl.jobs.spec import JobSpec
from vfl.metrics import classification_metrics, regression_metrics
from vfl.psi import normalize_ids


def _join(spec: JobSpec, frames: dict):
    joined, columns = None, []
    for party in spec.parties:
        frame = frames[party.name]
        feats = feature_columns(frame, party)
        keep = frame[feats + ([party.label] if party.label else [])].copy()
        keep.columns = [f"{party.name}:{c}" for c in keep.columns]
        keep.index = normalize_ids(frame, party.id_column, party.name)
        columns += [f"{party.name}:{c}" for c in feats]
        joined = keep if joined is None else joined.join(keep, how="inner")
    return joined, columns, f"{spec.active.name}:{spec.active.label}"


def joined_split(spec: JobSpec, frames: dict, output_dir) -> tuple:
    """(x_train, y_train, x_test, y_test) of the joined table with a finished job's split."""
    split = json.loads((pathlib.Path(output_dir) / "split.json").read_text())
    joined, columns, label = _join(spec, frames)
    train, test = joined.loc[split["train_ids"]], joined.loc[split["test_ids"]]
    return (train[columns].to_numpy(float), train[label].to_numpy(), test[columns].to_numpy(float),
            test[label].to_numpy())


def centralized_baseline(spec: JobSpec, frames: dict, split: dict) -> dict:
    """Join on normalized ids, train on the active's training ids, score its held-out ids."""
    joined, columns, label = _join(spec, frames)
    train, test = joined.loc[split["train_ids"]], joined.loc[split["test_ids"]]
    if spec.model.startswith("secureboost"):
        return _tree_baseline(spec, train, test, columns, label, len(joined))
    if spec.task == "classification":
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(train[columns].to_numpy(float), train[label].to_numpy())
        scores = model.decision_function(test[columns].to_numpy(float))
        metrics = classification_metrics(test[label].to_numpy(), scores)
        name = "scikit-learn LogisticRegression (StandardScaler, C=1.0)"
    else:
        model = make_pipeline(StandardScaler(), LinearRegression())
        model.fit(train[columns].to_numpy(float), train[label].to_numpy(float))
        scores = model.predict(test[columns].to_numpy(float))
        metrics = regression_metrics(test[label].to_numpy(float), scores)
        name = "scikit-learn LinearRegression (StandardScaler)"
    return {"model": name, "metrics": metrics, "n_rows": int(len(joined)),
            "_test_scores": (test[label].to_numpy().tolist(), np.asarray(scores).tolist())}


def _tree_baseline(spec: JobSpec, train, test, columns, label, n_rows: int) -> dict:
    """scikit-learn's histogram GBDT with the job's trees, depth, bins, learning rate and L2."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    h = spec.hyperparameters
    params = dict(max_iter=h.get("n_estimators", 10), learning_rate=h.get("learning_rate", 0.3),
                  max_depth=h.get("max_depth", 3), max_bins=min(h.get("max_bins", 32), 255),
                  l2_regularization=h.get("reg_lambda", 1.0), min_samples_leaf=1, early_stopping=False)
    x_train, x_test = train[columns].to_numpy(float), test[columns].to_numpy(float)
    if spec.task == "classification":
        model = HistGradientBoostingClassifier(**params).fit(x_train, train[label].to_numpy())
        scores = model.decision_function(x_test)
        metrics = classification_metrics(test[label].to_numpy(), scores)
        name = "scikit-learn HistGradientBoostingClassifier (same trees, depth, bins, learning rate, L2)"
    else:
        model = HistGradientBoostingRegressor(**params).fit(x_train, train[label].to_numpy(float))
        scores = model.predict(x_test)
        metrics = regression_metrics(test[label].to_numpy(float), scores)
        name = "scikit-learn HistGradientBoostingRegressor (same trees, depth, bins, learning rate, L2)"
    return {"model": name, "metrics": metrics, "n_rows": n_rows,
            "_test_scores": (test[label].to_numpy().tolist(), np.asarray(scores).tolist())}
