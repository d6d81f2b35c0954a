"""A passive (feature) party's side of a job, for every model family.

Training reads like the protocol: validate → PSI → split → fit → evaluate → save, in step with
:mod:`vfl.jobs.active`. The request (:class:`~vfl.jobs.spec.PassiveRequest`) comes from the
active party; what this party may do — which columns, how many rounds — comes from its own
config, through ``caps`` and the caller's column policy.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from vfl.checkpoint import Alignment, RunState, alignment_digest
from vfl.errors import DataError, ProtocolError
from vfl.family import PassiveCaps
from vfl.holdout import evaluation_rows
from vfl.jobs.data import CsvTable, aligned_rows, feature_columns, table_ids, table_rows
from vfl.jobs.manifest import digest
from vfl.jobs.messages import EvaluationSplit
from vfl.jobs.results import PassiveResult
from vfl.jobs.resume import agree_as_passive, checkpoint_option
from vfl.jobs.spec import PassiveRequest
from vfl.psi import PsiPolicy, align_passive, normalize_ids


def train(transport, request: PassiveRequest, frame: pd.DataFrame | CsvTable, *, active: str, model_path,
          caps: PassiveCaps, psi: PsiPolicy | None = None, verbose: bool = False,
          state: RunState | None = None) -> PassiveResult:
    """Run this party's side of a training job; saves its model part at ``model_path``.

    ``state``: where this party checkpoints the run (as in :func:`vfl.jobs.active.train`);
    with ``state.resume`` it continues the run from its checkpoints, without a PSI.
    """
    family, party = request.family, request.party
    if request.psi_private:           # a padded table: the passive's own gradient would show the real rows
        raise ProtocolError(f"{active} asks to train on a privately aligned table; this party refuses")
    features = feature_columns(frame, party, family)                                   # validate
    store, round_ = None, 0
    if state is not None and state.resume:                                             # or resume
        alignment, store = state.restore(frame, transport.party)
        with transport.in_phase("resume"):
            round_ = agree_as_passive(transport, active, state.run, alignment, store)
        x = table_rows(frame, alignment.rows, features)
        train_rows, test_rows = alignment.train_rows, alignment.test_rows
    else:
        with transport.in_phase("psi"):                                                # PSI
            aligned = align_passive(transport, table_ids(frame), party.id_column, active=active, progress=verbose,
                                    policy=psi)
        if aligned.report.private:    # whatever the request said: the PSI that ran was the private one
            raise ProtocolError(f"{active} ran a private PSI for a training job; this party refuses")
        x = aligned_rows(frame, aligned, features)
        with transport.in_phase("train"):                                              # split
            split = transport.recv(active, EvaluationSplit)
        train_rows, test_rows = split.train_index, split.test_index
        every = np.concatenate([train_rows, test_rows])
        if len(every) != len(x) or not np.array_equal(np.sort(every), np.arange(len(x))):
            raise DataError(f"{active} sent a split that is not a partition of the {len(x)} aligned rows")
        if request.feature_privacy is not None and len(test_rows) > len(train_rows):
            raise ProtocolError(f"{active} holds out {len(test_rows)} of {len(x)} rows: under feature DP the held-out "
                                "rows are the unprotected ones, and this party lets at most half of them be")
        if state is not None:
            ids = normalize_ids(aligned.frame, party.id_column, transport.party)
            store = state.begin(frame, Alignment(aligned.rows, train_rows, test_rows,
                                                 alignment_digest(ids, train_rows, test_rows)))
    extra = {"sections": request.sections} if family.sections else {}
    if family.job_parties:
        extra["parties"] = [active, *request.passives]
    model = family.passive(caps, **extra)                                              # fit
    noise = {}
    if request.feature_privacy is not None:      # kept with the run's state: a resume adds the same noise
        from vfl.privacy import FeatureNoise
        noise["feature_noise"] = FeatureNoise(request.feature_privacy, None if state is None else state.directory,
                                              reference=x.iloc[test_rows])
    model.fit(x.iloc[train_rows], transport=transport, active=active, **checkpoint_option(family, store, round_),
              **noise)
    if family.predicts:                                                                # evaluate
        model.serve_scores(x.iloc[evaluation_rows(train_rows, test_rows)], transport=transport, active=active)
    model.save(model_path)                                                             # save
    return PassiveResult(rows=len(x), features=features, part_digest=digest(model_path),
                         figures=family.passive_figures(model))


def predict(transport, request: PassiveRequest, frame: pd.DataFrame | CsvTable, *, active: str, model_path,
            psi: PsiPolicy | None = None, verbose: bool = False) -> int:
    """Serve this party's partial scores for the rows it shares with the active; returns their count."""
    family = request.family
    if not family.predicts:
        raise DataError(f"{request.model} trains no scoring model: there is nothing to predict")
    model = family.load_passive(model_path)
    party = request.party
    trained_on = getattr(model, "feature_names_in_", None)
    if trained_on:
        party = dataclasses.replace(party, features=tuple(trained_on))
    features = feature_columns(frame, party, family)
    with transport.in_phase("psi"):
        aligned = align_passive(transport, table_ids(frame), party.id_column, active=active, progress=verbose,
                                policy=psi)
    x = aligned_rows(frame, aligned, features)
    return model.serve_scores(x, transport=transport, active=active)
