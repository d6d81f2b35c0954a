"""The centralized baseline: the same family trained on the joined table with the job's split.

Only possible where one machine holds every party's table (``vfl run --local``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from vfl.jobs.data import feature_columns
from vfl.jobs.results import Baseline, Evaluation, Scores, TrainingResult
from vfl.jobs.spec import JobSpec
from vfl.psi import normalize_ids


def _join(spec: JobSpec, frames: dict):
    """Every party's features (and the label) on the rows whose normalized ids all share."""
    joined, columns = None, []
    for party in spec.parties:
        frame = frames[party.name]
        features = feature_columns(frame, party, spec.family)
        keep = frame[features + ([party.label] if party.label else [])].copy()
        keep.columns = [f"{party.name}:{c}" for c in keep.columns]
        keep.index = normalize_ids(frame, party.id_column, party.name)
        columns += [f"{party.name}:{c}" for c in features]
        joined = keep if joined is None else joined.join(keep, how="inner")
    return joined, columns, f"{spec.active.name}:{spec.active.label}"


def joined_split(spec: JobSpec, frames: dict, train_ids, test_ids) -> tuple:
    """(x_train, y_train, x_test, y_test) of the joined table for a job's split."""
    joined, columns, label = _join(spec, frames)
    train, test = joined.loc[train_ids], joined.loc[test_ids]
    if spec.family.data.categorical:          # tables with text columns: the family reads frames
        return train[columns], train[label].to_numpy(), test[columns], test[label].to_numpy()
    return (train[columns].to_numpy(float), train[label].to_numpy(), test[columns].to_numpy(float),
            test[label].to_numpy())


def centralized_baseline(spec: JobSpec, frames: dict, result: TrainingResult) -> Baseline | None:
    """Train the family's centralized model on the job's training ids; score training and held-out ids."""
    family = spec.family
    if not family.predicts:
        return None
    x_train, y_train, x_test, y_test = joined_split(spec, frames, result.train_ids, result.test_ids)
    every = pd.concat([x_train, x_test]) if isinstance(x_train, pd.DataFrame) else np.concatenate([x_train, x_test])
    made = family.baseline(spec.hyperparameters, x_train, y_train, every,
                           **({"sections": spec.sections} if family.sections else {}))
    if made is None:
        return None
    name, scores = made
    if len(x_test):           # evaluated as the federated model is: on held-out rows, else training rows
        test_scores = scores[len(x_train):]
        evaluation = Evaluation(None, family.metrics(y_test, test_scores), Scores(y_test, test_scores))
    else:
        evaluation = Evaluation(family.metrics(y_train, scores[:len(x_train)]), None, None)
    return Baseline(model=name, n_rows=len(x_train) + len(x_test), evaluation=evaluation,
                    training_loss=family.training_loss(y_train, scores[:len(x_train)]))
