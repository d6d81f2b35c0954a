"""What each party does in a training job: PSI → split → fit → evaluate → save its own part.

Transport-agnostic: the same functions run over the in-process transport (tests, notebooks) and
over ZeroMQ (``vfl run``, ``vfl serve``).
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import time

import numpy as np
import pandas as pd
from scipy.special import softmax
from sklearn.model_selection import train_test_split

from vfl.errors import DataError
from vfl.jobs.data import feature_columns
from vfl.jobs.messages import EvaluationSplit
from vfl.jobs.models import model_kind
from vfl.jobs.spec import JobSpec, PartySpec
from vfl.metrics import classification_metrics, regression_metrics
from vfl.psi import align_active, align_passive, normalize_ids


def make_active_model(spec: JobSpec, *, verbose: bool = True):
    kind = model_kind(spec.model)
    try:
        model = kind.active(**{**spec.hyperparameters, "verbose": verbose})
    except TypeError as exc:
        raise DataError(f"{spec.source}: [model] {exc}") from None
    kind.check(model)
    return model


def passive_params(spec: JobSpec) -> dict:
    """What the active sends the passives in the job request: the passives' parts of the job, no paths."""
    return {"job": spec.name, "model": spec.model, "psi_private": spec.psi_private,
            "parties": {p.name: p.to_params() for p in spec.passives}}


def _training_summary(model, features: list[str]) -> dict:
    """Curves and timings of either model family, and tree feature importance (own names only)."""
    if hasattr(model, "trees_"):
        importance = {}
        for (party, index), gain in model.feature_importances("gain").items():
            name = features[index] if party == "active" else f"{party}:feature {index}"
            importance[name] = round(gain, 6)
        curves = {"loss_curve": model.loss_curve_, "validation_loss_curve": model.validation_loss_curve_,
                  "loss_name": {"squared": "half squared error"}.get(model.loss_, "log loss"), "loss_unit": "tree"}
        if len(model.loss_curve_) > len(model.trees_):                 # early stopping dropped trees
            curves["kept"] = len(model.trees_)
        return {"trees": len(model.trees_), "tree_seconds": model.tree_seconds_, **curves,
                "feature_importance_gain": dict(sorted(importance.items(), key=lambda kv: -kv[1]))}
    loss = "squared loss" if model._task == "linear" else (
        "Taylor loss" if model.approximation == "taylor" else "log loss")
    return {"loss_curve": model.loss_curve_, "validation_loss_curve": model.validation_loss_curve_,
            "loss_name": loss, "epochs": model.n_epochs_, "epoch_seconds": model.epoch_seconds_}


def _split(ids: list[str], labels, spec: JobSpec) -> tuple[np.ndarray, np.ndarray]:
    """Held-out rows drawn with the job's seed over the rows sorted by id, so the split does not
    depend on the (random) order PSI agreed on: same data and seed, same split."""
    rows = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    if spec.test_size <= 0:
        return rows, rows[:0]
    stratify = labels[rows] if spec.task == "classification" else None
    try:
        train, test = train_test_split(rows, test_size=spec.test_size, random_state=spec.seed, stratify=stratify)
    except ValueError as exc:
        raise DataError(f"cannot hold out {spec.test_size:.0%} of {len(ids)} aligned rows: {exc}") from None
    keep = np.isin(rows, test, invert=True)
    return rows[keep], np.sort(test)       # training rows stay in id order: batches are reproducible


def active_train(transport, spec: JobSpec, frame, *, private_key=None, verbose: bool = True) -> dict:
    """The label party's job. Returns the report (metrics, sizes, seconds, curves)."""
    me = spec.active
    features = feature_columns(frame, me)
    model = make_active_model(spec, verbose=verbose)
    passives = [p.name for p in spec.passives]
    t0 = time.perf_counter()
    with transport.in_phase("psi"):
        aligned = align_active(transport, frame, me.id_column, passives=passives, progress=verbose)
    t_psi = time.perf_counter() - t0
    table = aligned.frame
    if len(table) < 4:
        raise DataError(f"only {len(table)} customers are shared by every party: too few to train on")
    x, y = table[features].to_numpy(float), table[me.label].to_numpy()
    ids = normalize_ids(table, me.id_column, me.name)
    train, test = _split(ids, y, spec)
    with transport.in_phase("train"):
        transport.broadcast(EvaluationSplit(train_index=train.astype(np.int64), test_index=test.astype(np.int64)),
                            passives)
    model.fit(x[train], y[train], transport=transport, passives=passives, private_key=private_key)
    model.feature_names_in_ = features
    t_train = time.perf_counter() - t0 - t_psi
    report = {"job": spec.name, "model": spec.model, "n_intersection": len(table),
              "n_train": int(len(train)), "n_test": int(len(test)), "features": {me.name: features},
              **_training_summary(model, features)}
    if len(test):
        scores = model.decision_function(x[test], transport=transport, passives=passives)
        truth = y[test]
        report["metrics"] = (classification_metrics(truth, scores) if spec.task == "classification"
                             else regression_metrics(truth, scores))
        report["_test_scores"] = (truth.tolist(), scores.tolist())
    report["seconds"] = {"psi": t_psi, "train": t_train, "total": time.perf_counter() - t0}
    out = pathlib.Path(spec.output_dir)
    model.save(out / "model" / f"{me.name}.json")
    (out / "model" / "manifest.json").write_text(json.dumps(
        {"job": spec.name, "model": spec.model, "active": me.name, "passives": passives}))
    ids = pd.Series(ids)
    (out / "split.json").write_text(json.dumps({"train_ids": ids.iloc[train].tolist(),
                                                "test_ids": ids.iloc[test].tolist()}))
    return report


def _my_part(name: str, params: dict) -> PartySpec:
    """This passive's entry of the job, as the active sent it."""
    mine = params["parties"][name]
    return PartySpec(name=name, role="passive", data=None, alias=mine.get("alias"), id_column=mine["id_column"],
                     label=None, features=tuple(mine["features"]) if mine.get("features") else None)


def passive_train(transport, params: dict, frame, *, active: str, model_path, max_epochs: int,
                  allow_insecure_key_size_for_tests: bool = False, verbose: bool = False) -> dict:
    """A feature party's job: align, train its slice, help evaluate, save its slice."""
    party = _my_part(transport.party, params)
    features = feature_columns(frame, party)
    with transport.in_phase("psi"):
        aligned = align_passive(transport, frame, party.id_column, active=active, progress=verbose)
    x = aligned.frame[features].to_numpy(float)
    with transport.in_phase("train"):
        split = transport.recv(active, EvaluationSplit)
    train, test = split.train_index, split.test_index
    every = np.concatenate([train, test])
    if len(every) != len(x) or not np.array_equal(np.sort(every), np.arange(len(x))):
        raise DataError(f"{active} sent a split that is not a partition of the {len(x)} aligned rows")
    kind = model_kind(params.get("model"))
    model = kind.passive(**{kind.passive_cap: max_epochs},
                         allow_insecure_key_size_for_tests=allow_insecure_key_size_for_tests)
    model.fit(x[train], transport=transport, active=active)
    model.feature_names_in_ = features
    if len(test):
        kind.score(model, x[test], transport, active)
    model.save(model_path)
    return {"rows": int(len(x)), "features": features}


def active_predict(transport, spec: JobSpec, frame, model_dir, *, verbose: bool = True) -> dict:
    """Federated prediction: align the new rows, sum every party's partial scores (only here)."""
    me = spec.active
    model = model_kind(spec.model).active.load(pathlib.Path(model_dir) / f"{me.name}.json")
    features = (getattr(model, "feature_names_in_", None) or me.features
                or [c for c in frame.columns if c not in (me.id_column, me.label)])
    feature_columns(frame, dataclasses.replace(me, label=None, features=tuple(features)))
    passives = [p.name for p in spec.passives]
    with transport.in_phase("psi"):
        aligned = align_active(transport, frame, me.id_column, passives=passives, progress=verbose)
    x = aligned.frame[features].to_numpy(float)
    scores = model.decision_function(x, transport=transport, passives=passives)
    out = pd.DataFrame({me.id_column: aligned.frame[me.id_column].to_numpy()})
    if scores.ndim == 2:                              # K classes: a score and a probability per class
        proba = softmax(scores, axis=1)
        for k in range(scores.shape[1]):
            out[f"score_{k}"] = scores[:, k]
        for k in range(scores.shape[1]):
            out[f"probability_{k}"] = proba[:, k]
        out["predicted_class"] = proba.argmax(axis=1)
    else:
        out["score"] = scores
        if spec.task == "classification":
            out["probability"] = 1.0 / (1.0 + np.exp(-scores))
    return {"job": spec.name, "n_scored": int(len(out)), "n_input": int(len(frame)), "predictions": out}


def passive_predict(transport, params: dict, frame, *, active: str, model_path, verbose: bool = False) -> dict:
    party = _my_part(transport.party, params)
    kind = model_kind(params.get("model"))
    model = kind.passive.load(model_path)
    trained_on = getattr(model, "feature_names_in_", None)
    if trained_on:
        party = dataclasses.replace(party, features=tuple(trained_on))
    features = feature_columns(frame, party)
    with transport.in_phase("psi"):
        aligned = align_passive(transport, frame, party.id_column, active=active, progress=verbose)
    rows = kind.score(model, aligned.frame[features].to_numpy(float), transport, active)
    return {"rows": rows}
