"""The centralized baseline: the same model trained on the joined data with the same split.

Only possible where one machine holds every party's table (``vfl run --local``).
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vfl.jobs.data import feature_columns
from vfl.jobs.spec import JobSpec
from vfl.metrics import classification_metrics, regression_metrics
from vfl.psi import normalize_ids


def centralized_baseline(spec: JobSpec, frames: dict, split: dict) -> dict:
    """Join on normalized ids, train on the active's training ids, score its held-out ids."""
    joined = None
    columns = []
    for party in spec.parties:
        frame = frames[party.name]
        feats = feature_columns(frame, party)
        keep = frame[feats + ([party.label] if party.label else [])].copy()
        keep.columns = [f"{party.name}:{c}" for c in keep.columns]
        keep.index = normalize_ids(frame, party.id_column, party.name)
        columns += [f"{party.name}:{c}" for c in feats]
        joined = keep if joined is None else joined.join(keep, how="inner")
    label = f"{spec.active.name}:{spec.active.label}"
    train, test = joined.loc[split["train_ids"]], joined.loc[split["test_ids"]]
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
