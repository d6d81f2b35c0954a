"""The one interface every model family implements, so that jobs never ask which one they hold.

A family is what a job file names in ``[job] model = "..."``: its hyperparameters and their
checks, what it needs of the data, the estimator of each role, how it scores and what it
reports. The job layer (:mod:`vfl.jobs.active`, :mod:`vfl.jobs.passive`) runs every family the
same way — load → validate → PSI → split → fit → evaluate → report — and the registry
(:mod:`vfl.registry`) is the one place that lists them.

Adding a family: a subpackage with its messages, its two role estimators (subclasses of
:class:`vfl.estimator.Estimator` with the methods :class:`ActiveRole` and :class:`PassiveRole`
describe) and a :class:`ModelFamily` subclass, plus one line in :mod:`vfl.registry` (or, from
outside this package, a plugin module that calls :func:`vfl.registry.register`).

Seams for what comes next, each a class attribute with a safe default:
  - ``topology``: "vertical" (one active party with the labels, passives with features). A
    horizontal family (a server and many clients with the same columns) will declare
    "horizontal" and be run by its own flow; the vertical flow refuses it.
  - ``sections``: job-file tables the family reads besides ``[model]`` (Pearson's ``[reveal]``,
    say), validated by :meth:`ModelFamily.check_section` when the job is loaded (and
    again by each passive, which receives them), and handed to :meth:`ModelFamily.active` and
    :meth:`ModelFamily.passive` as ``sections=``.
  - ``job_parties``: True when the passive estimator must know the job's parties (a passive
    then checks the active's setup names exactly the job it accepted, as Pearson does).
  - ``predicts``: False for statistics that train no scoring model (a correlation matrix);
    the flow then skips evaluation and ``vfl predict`` refuses the job.
  - ``checkpoints``: True when both estimators' ``fit`` take ``checkpoint=`` (a
    :class:`vfl.checkpoint.Checkpoint`): they save their state at every round boundary and
    continue from the state it holds, to the same model. A family without it is fitted again
    from the start when a run is resumed (on the recorded rows, without a second PSI).
  - ``label_privacy``: True when a job may set ``[privacy]`` (label DP): the job layer then
    trains the family on randomized labels (:mod:`vfl.privacy`), whatever the family does with
    them. Only families with class labels can offer it.
  - ``gradient_privacy``: True when the active estimator's ``fit`` takes ``gradient_noise=``
    (a :class:`vfl.privacy.GradientNoise`) and noises its label gradients every round before
    any use, reading the labels nowhere else (``[privacy] mechanism = "gradient_noise"``).
  - ``feature_privacy``: True when the active estimator's ``fit`` takes ``feature_privacy=`` (a
    :class:`vfl.privacy.FeaturePrivacy`, sent to the passives in its setup) and the passive's
    ``fit`` takes ``feature_noise=`` (a :class:`vfl.privacy.FeatureNoise`) and noises everything
    of its columns the active receives (``[privacy] feature_epsilon``).
"""
from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar, Protocol

import numpy as np
from scipy.special import expit, softmax

from protocols.paillier import SCHEMES
from vfl.errors import VFLError
from vfl.estimator import Estimator
from vfl.metrics import classification_metrics, regression_metrics


@dataclasses.dataclass(frozen=True)
class DataNeeds:
    """What a family needs of the parties' tables."""

    allow_nan: bool            # missing feature values (empty cells, NaN) accepted
    label: str | None          # "binary", "classes" (0..K-1), "continuous"; None: no label used
    categorical: bool = False  # text (category) columns accepted besides numeric ones
    streams: bool = False      # a passive's estimator takes a table read a chunk at a time
                               # (vfl.jobs.data.ColumnFile) in place of a frame, for tables too big to hold


@dataclasses.dataclass(frozen=True)
class PassiveCaps:
    """What a passive party's config allows a job (its own limits, not the initiator's wishes)."""

    max_rounds: int                       # epochs, trees: whatever one round of the family is
    allow_small_keys: bool = False        # tests only: keys below 2048 bits
    # who may learn statistics of this party's columns (a correlation): None — any party of the
    # job; "initiator"; or a list of party names ([statistics] reveal_to in the party config)
    reveal_to: str | tuple[str, ...] | None = None
    min_features: int = 1                 # the fewest of its features a job may keep ([data.policies])
    share_reasons: bool = False           # name its features in reason codes ([statistics] share_reason_codes)
    schemes: tuple[str, ...] = SCHEMES    # the homomorphic schemes it computes under ([crypto] schemes)


@dataclasses.dataclass(frozen=True)
class Curves:
    """A loss per round, for the report and its plot."""

    loss: list[float]
    validation: list[float]
    name: str                  # "log loss", "Taylor loss", ...
    unit: str                  # "epoch", "tree"
    kept: int | None = None    # early stopping kept the first ``kept`` rounds

    def to_report(self) -> dict:
        out = {"loss_curve": list(self.loss), "validation_loss_curve": list(self.validation),
               "loss_name": self.name, "loss_unit": self.unit}
        if self.kept is not None:
            out["kept"] = self.kept
        return out


# keys of the job report that a family's figures may not use (vfl.report.JobReport writes them)
REPORT_KEYS = frozenset({"job", "model", "n_intersection", "n_train", "n_test", "features", "metrics",
                         "training_metrics", "seconds", "job_id", "run", "resumed_from", "bytes_sent", "passives",
                         "baseline", "notes", "files", "loss_curve", "validation_loss_curve", "loss_name",
                         "loss_unit", "kept", "privacy"})


@dataclasses.dataclass(frozen=True)
class TrainingSummary:
    """A family's section of the job report: its curves and its own figures (plain data)."""

    curves: Curves | None
    figures: dict

    def __post_init__(self):
        clash = sorted(set(self.figures) & REPORT_KEYS)
        if clash:
            raise VFLError(f"a model family's report figures use keys {clash}, which the report itself uses")

    def to_report(self) -> dict:
        return {**(self.curves.to_report() if self.curves else {}), **self.figures}


class ActiveRole(Protocol):
    """The label party's estimator of a family (scikit-learn style, see :mod:`vfl.estimator`)."""

    def fit(self, X, y, *, transport, passives: list[str], private_key=None, checkpoint=None): ...
    def decision_function(self, X, *, transport, passives: list[str]) -> np.ndarray: ...
    def save(self, path) -> None: ...


class PassiveRole(Protocol):
    """A feature party's estimator: it fits and answers scoring requests for its own columns."""

    def fit(self, X, *, transport, active: str, checkpoint=None): ...
    def serve_scores(self, X, *, transport, active: str) -> int: ...
    def save(self, path) -> None: ...


class ModelFamily(abc.ABC):
    """One model family as jobs see it. Subclasses set the class attributes and implement
    :meth:`summary` and :meth:`baseline`; the rest has defaults that follow ``task``."""

    name: ClassVar[str]                     # in job files: [job] model = name
    task: ClassVar[str]                     # "classification" or "regression"
    data: ClassVar[DataNeeds]
    active_estimator: ClassVar[type[Estimator]]
    passive_estimator: ClassVar[type[Estimator]]
    passive_cap: ClassVar[str]              # the passive estimator's parameter its party's config sets
    rounds_param: ClassVar[str | None] = None   # the hyperparameter that counts rounds (epochs, trees)
    topology: ClassVar[str] = "vertical"
    predicts: ClassVar[bool] = True
    checkpoints: ClassVar[bool] = False
    label_privacy: ClassVar[bool] = False   # True: a job may set [privacy] (label DP, vfl.privacy)
    gradient_privacy: ClassVar[bool] = False   # True: its active fit takes gradient_noise= ([privacy] gradient_noise)
    feature_privacy: ClassVar[bool] = False    # True: fits take feature_privacy= / feature_noise= ([privacy] feature_*)
    sections: ClassVar[frozenset[str]] = frozenset()
    job_parties: ClassVar[bool] = False     # True: passive() also gets parties=[active, *passives]
    runtime_params: ClassVar[frozenset[str]] = frozenset({"verbose", "workers"})   # not set by job files
    # the passive estimator's test-only opt-in to small keys (used when it has that parameter)
    small_key_option: ClassVar[str | None] = "allow_insecure_key_size_for_tests"

    # -- job files --------------------------------------------------------------------------
    def hyperparameters(self) -> dict:
        """Every hyperparameter a job file may set, with its default."""
        return {k: v for k, v in self.active_estimator.default_params().items() if k not in self.runtime_params}

    def check_hyperparameters(self, params: dict) -> None:
        """``ValueError`` naming an unknown or invalid hyperparameter (before any cryptography)."""
        known = self.hyperparameters()
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(f"unknown hyperparameters {unknown} for {self.name} (known: {sorted(known)})")
        self.active(params, verbose=False)._validate_params()

    def rounds(self, params: dict) -> int | None:
        """How many rounds a job with ``params`` asks every passive to serve (declared in the
        job request, so a passive can refuse before the PSI); None if the family has no rounds."""
        if self.rounds_param is None:
            return None
        return int({**self.hyperparameters(), **params}[self.rounds_param])

    def check_section(self, name: str, table: dict) -> None:
        """Validate a job-file section this family reads (see ``sections``)."""
        raise ValueError(f"{self.name} reads no [{name}] section")

    def check_parties(self, sections: dict, parties: list[str]) -> None:
        """Checks of the job's sections against its parties (active first), when the job is
        loaded: ``ValueError`` naming what does not fit. None by default."""

    def schemes(self, params: dict) -> tuple[str, ...]:
        """The homomorphic schemes a job with ``params`` may put its key in (declared in the job
        request, so a passive whose config allows fewer refuses before the PSI)."""
        return ("paillier",)

    def check_passive(self, sections: dict, parties: list[str], me: str, caps: PassiveCaps) -> None:
        """A passive's own checks of a job request against its config (``caps``), run before
        the PSI; ``ValueError`` (or a refusal) naming what it will not do. None by default."""

    # -- roles ------------------------------------------------------------------------------
    def active(self, params: dict, *, verbose: bool = True, **sections) -> ActiveRole:
        """The active estimator for a job's ``[model]`` table. A family that declares
        ``sections`` also gets ``sections={name: table}`` (the job's, already checked)."""
        return self.active_estimator(**params, verbose=verbose)

    def passive(self, caps: PassiveCaps, **sections) -> PassiveRole:
        """A passive estimator within this party's caps. A family that declares ``sections``
        also gets ``sections={name: table}`` as the active sent them (checked again here); one
        that sets ``job_parties`` gets ``parties=[active, *passives]``, the job this party accepted."""
        options = {self.passive_cap: caps.max_rounds}
        if caps.allow_small_keys and self.small_key_option in self.passive_estimator._param_names():
            options[self.small_key_option] = True
        if "schemes" in self.passive_estimator._param_names():
            options["schemes"] = caps.schemes
        return self.passive_estimator(**options)

    def load_active(self, path) -> ActiveRole:
        return self.active_estimator.load(path)

    def load_passive(self, path) -> PassiveRole:
        return self.passive_estimator.load(path)

    # -- results ----------------------------------------------------------------------------
    def metrics(self, y_true, scores) -> dict:
        """Figures of merit of raw scores (``decision_function``) against the truth."""
        if self.task == "classification":
            return classification_metrics(y_true, scores)
        return regression_metrics(y_true, scores)

    def training_loss(self, y_true, scores) -> float | None:
        """The family's training loss of raw scores (what it minimizes, without the penalty), to
        put the centralized optimum's beside the federated model's; None: not comparable."""
        return None

    def passive_figures(self, model: PassiveRole) -> dict:
        """Plain figures a fitted passive reports back with its part of the job (seconds per
        phase, say): nothing about its data. None by default."""
        return {}

    def evaluation_figures(self, model: ActiveRole, y_true, scores) -> dict:
        """Figures of the fitted model on the scored rows beyond ``metrics`` (tables, curves as
        plain data) for the report; keys must not clash with the report's. None by default."""
        return {}

    def prediction_columns(self, model: ActiveRole, scores: np.ndarray) -> dict[str, np.ndarray]:
        """The columns ``vfl predict`` writes, given the model that scored (default: :meth:`predictions`)."""
        return self.predictions(scores)

    def predictions(self, scores: np.ndarray) -> dict[str, np.ndarray]:
        """The columns ``vfl predict`` writes for raw scores."""
        if self.task != "classification":
            return {"score": scores}
        if scores.ndim == 1:
            return {"score": scores, "probability": expit(scores)}
        proba = softmax(scores, axis=1)
        return {**{f"score_{k}": scores[:, k] for k in range(scores.shape[1])},
                **{f"probability_{k}": proba[:, k] for k in range(scores.shape[1])},
                "predicted_class": proba.argmax(axis=1)}

    @abc.abstractmethod
    def summary(self, model: ActiveRole) -> TrainingSummary:
        """The report section of a fitted active model (curves, timings, feature importance)."""

    @abc.abstractmethod
    def baseline(self, params: dict, x_train: np.ndarray, y_train: np.ndarray,
                 x_eval: np.ndarray) -> tuple[str, np.ndarray] | None:
        """The centralized model trained on the joined table with the job's hyperparameters:
        its description and its raw scores for ``x_eval`` (None: the family has no baseline).
        A family that declares ``sections`` also gets ``sections=``; one whose data needs
        ``categorical`` gets DataFrames (party-prefixed columns) instead of float arrays."""

    def scikit_scores(self, estimator, x_train, y_train, x_eval) -> np.ndarray:
        """Fit a scikit-learn ``estimator`` and return raw scores of ``x_eval`` as the federated
        model gives them (``decision_function`` for classifiers, ``predict`` for regressors)."""
        fitted = estimator.fit(x_train, y_train)
        return fitted.decision_function(x_eval) if self.task == "classification" else fitted.predict(x_eval)

    def plots(self, report: dict, out_dir) -> dict[str, str]:
        """Extra plots of this family's results (a heatmap, say): name -> path written."""
        return {}
