"""The active (label) party's side of a job, for every model family.

Training reads like the protocol: load → validate → PSI → split → fit → evaluate → save. The
same functions run over the in-process transport (tests, notebooks) and over ZeroMQ
(``vfl run``); each passive runs :mod:`vfl.jobs.passive` at the same time.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import time

import numpy as np
import pandas as pd

from vfl.checkpoint import Alignment, RunState, alignment_digest
from vfl.errors import DataError
from vfl.family import ModelFamily
from vfl.files import write_private
from vfl.holdout import evaluation_rows, evaluation_split
from vfl.jobs.data import feature_columns
from vfl.jobs.manifest import Manifest, digest
from vfl.jobs.messages import EvaluationSplit
from vfl.jobs.results import Evaluation, PredictionResult, Scores, TrainingResult
from vfl.jobs.resume import agree_as_active, checkpoint_option
from vfl.jobs.spec import JobSpec
from vfl.psi import align_active, normalize_ids

MIN_SHARED_ROWS = 4


def train(transport, spec: JobSpec, frame: pd.DataFrame, *, private_key=None, verbose: bool = True,
          state: RunState | None = None, spend=None) -> TrainingResult:
    """Run the job's training as its active party; writes the model part and the split.

    ``state``: where this party checkpoints the run (none: no checkpoints). With
    ``state.resume`` the run continues from its checkpoints — no PSI, the parties agree on the
    last round every one of them holds (:mod:`vfl.jobs.resume`) — to the same model.
    ``spend()``: with label DP, called just before the labels are released; it records the ε
    spent in this party's ledger (or raises to refuse) and returns what the report states of it.
    """
    family, me, passives = spec.family, spec.active, [p.name for p in spec.passives]
    features = feature_columns(frame, me, family)                                     # validate
    start, resuming, store = time.perf_counter(), state is not None and state.resume, None
    if resuming:                                                                      # or resume
        alignment, store = state.restore(frame, me.name)
        with transport.in_phase("resume"):
            round_ = agree_as_active(transport, passives, state.run, alignment, store)
        table = frame.iloc[alignment.rows].reset_index(drop=True)
    else:
        with transport.in_phase("psi"):                                               # PSI
            aligned = align_active(transport, frame, me.id_column, passives=passives, progress=verbose)
        table, round_ = aligned.frame, 0
    t_psi = time.perf_counter() - start
    if len(table) < MIN_SHARED_ROWS:
        raise DataError(f"only {len(table)} customers are shared by every party: too few to train on")
    x, y = table[features], table[me.label].to_numpy() if me.label else None
    ids = normalize_ids(table, me.id_column, me.name)
    if not resuming:                                                                  # split
        train_rows, test_rows = evaluation_split(ids, y, test_size=spec.test_size, seed=spec.seed,   # by label:
                                                 stratify=family.task == "classification" and spec.privacy is None)
        with transport.in_phase("train"):
            transport.broadcast(EvaluationSplit(train_index=train_rows.astype(np.int64),
                                                test_index=test_rows.astype(np.int64)), passives)
        if state is not None:
            store = state.begin(frame, Alignment(aligned.rows, train_rows, test_rows,
                                                 alignment_digest(ids, train_rows, test_rows)))
    else:
        train_rows, test_rows = alignment.train_rows, alignment.test_rows
    y_fit, privacy, noise = None if y is None else y[train_rows], None, {}
    if spec.privacy is not None and y is not None:                                    # label DP
        n_classes = int(np.max(y)) + 1
        ledger = spend() if spend is not None else None
        if spec.privacy.randomizes_labels:
            y_fit = _released_labels(spec, y_fit, n_classes, x.iloc[train_rows], state, resuming)
            privacy = spec.privacy.report(n_classes, len(train_rows))
        else:
            noise["gradient_noise"] = spec.privacy.gradient_noise(
                family.rounds(spec.hyperparameters), 1 if n_classes <= 2 else n_classes,
                directory=None if state is None else state.directory)
            privacy = spec.privacy.report(n_classes, len(train_rows), noise["gradient_noise"])
        privacy = {**privacy, **({"ledger": ledger} if ledger else {})}
    if spec.feature_privacy is not None:                                              # feature DP
        noise["feature_privacy"] = spec.feature_privacy
        privacy = {**(privacy or {}), "features": spec.feature_privacy.report(family.rounds(spec.hyperparameters))}
    extra = {"sections": spec.sections} if family.sections else {}
    model = family.active(spec.hyperparameters, verbose=verbose, **extra)                 # fit
    model.fit(x.iloc[train_rows], y_fit, transport=transport, passives=passives,
              private_key=private_key, **checkpoint_option(family, store, round_), **noise)
    t_train = time.perf_counter() - start - t_psi
    evaluation = (_evaluate(family, model, x, y, train_rows, test_rows, transport, passives)    # evaluate
                  if family.predicts else None)
    ids = pd.Series(ids)
    result = TrainingResult(job=spec.name, model=spec.model, n_intersection=len(table),
                            train_ids=ids.iloc[train_rows].tolist(), test_ids=ids.iloc[test_rows].tolist(),
                            features={me.name: features}, summary=family.summary(model), evaluation=evaluation,
                            seconds={"psi": t_psi, "train": t_train, "total": time.perf_counter() - start},
                            run=state.run if state is not None else getattr(transport, "job", None),
                            resumed_from=round_ if resuming else None, privacy=privacy)
    return dataclasses.replace(result, part_digest=_save(spec, model, result))        # save


LABELS_FILE = "released_labels.json"     # in a run's state: the labels label DP released, drawn once


def _released_labels(spec: JobSpec, y_train, n_classes: int, x_train, state: RunState | None,
                     resuming: bool) -> np.ndarray:
    """The training labels after ``spec.privacy``'s mechanism. A checkpointed run keeps them
    with its state and a resumed run reuses them: drawing again would release the labels twice
    (spending ε twice)."""
    path = None if state is None else pathlib.Path(state.directory) / LABELS_FILE
    if resuming:
        try:
            released = np.asarray(json.loads(path.read_text())["labels"], dtype=np.int64)
        except (OSError, ValueError, KeyError, TypeError):
            raise DataError(f"run {state.run}'s state holds no released labels ({path}): it cannot be resumed "
                            "without drawing them again, which would spend ε twice; start a new run") from None
        if released.shape != (len(y_train),):
            raise DataError(f"run {state.run}'s released labels are {len(released)}, not {len(y_train)}")
        return released.astype(np.asarray(y_train).dtype)
    released = spec.privacy.randomize(np.asarray(y_train), n_classes, x_train)
    if path is not None:
        write_private(path, json.dumps({"labels": released.tolist()}))
    return released.astype(np.asarray(y_train).dtype)


def _evaluate(family: ModelFamily, model, x: pd.DataFrame, y, train_rows, test_rows, transport,
              passives) -> Evaluation:
    """Score the held-out rows in one federated round; without any, the training rows (the
    passives serve the same rows: :func:`vfl.holdout.evaluation_rows`)."""
    rows = evaluation_rows(train_rows, test_rows)
    scores = model.decision_function(x.iloc[rows], transport=transport, passives=passives)
    figures = family.evaluation_figures(model, y[rows], scores)
    if not len(test_rows):
        return Evaluation(family.metrics(y[rows], scores), None, None, figures)
    return Evaluation(None, family.metrics(y[rows], scores), Scores(y[rows], scores), figures)


def _save(spec: JobSpec, model, result: TrainingResult) -> str:
    """This party's model part and the split (ids only); returns the part's digest. The manifest
    that ties every party's part to the run is written when the job has ended
    (:func:`write_manifest`), once the passives have reported theirs."""
    out = pathlib.Path(spec.output_dir)
    part = out / "model" / f"{spec.active.name}.json"
    model.save(part)
    write_private(out / "split.json", json.dumps({"train_ids": result.train_ids, "test_ids": result.test_ids}))
    return digest(part)


def write_manifest(spec: JobSpec, result: TrainingResult, passive_digests: dict[str, str | None]) -> Manifest:
    """``model/manifest.json``: the run, and the digest of every party's part."""
    manifest = Manifest(job=spec.name, model=spec.model, active=spec.active.name,
                        passives=[p.name for p in spec.passives], run=result.run,
                        parts={spec.active.name: result.part_digest, **passive_digests})
    manifest.write(pathlib.Path(spec.output_dir) / "model")
    return manifest


def predict(transport, spec: JobSpec, frame: pd.DataFrame, model_dir, *, verbose: bool = True) -> PredictionResult:
    """Federated scoring of ``frame``'s rows: align by PSI, sum every party's partial scores (only here)."""
    family, me, passives = spec.family, spec.active, [p.name for p in spec.passives]
    if not family.predicts:
        raise DataError(f"{spec.model} trains no scoring model: there is nothing to predict")
    model = family.load_active(pathlib.Path(model_dir) / f"{me.name}.json")
    names = (getattr(model, "feature_names_in_", None) or me.features
             or [c for c in frame.columns if c not in (me.id_column, me.label)])
    features = feature_columns(frame, dataclasses.replace(me, label=None, features=tuple(names)), family)
    with transport.in_phase("psi"):
        aligned = align_active(transport, frame, me.id_column, passives=passives, progress=verbose).frame
    scores = model.decision_function(aligned[features], transport=transport, passives=passives)
    out = pd.DataFrame({me.id_column: aligned[me.id_column].to_numpy(), **family.prediction_columns(model, scores)})
    return PredictionResult(job=spec.name, n_input=len(frame), predictions=out)
