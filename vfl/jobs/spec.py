"""Job files (TOML): who takes part, whose data, which model. Validated before any cryptography.

Format (docs/jobs.md has the full reference)::

    [job]
    name = "breast-lr"
    model = "logistic_regression"         # linear_regression, secureboost, secureboost_regression
    output_dir = "runs/breast-lr"         # report, plots, model parts; relative to the working directory

    [evaluation]                          # optional held-out split, stratified for classifiers
    test_size = 0.2
    seed = 42

    [model]                               # hyperparameters of the model (see docs/jobs.md)
    epochs = 40
    batch_size = 64

    [psi]
    private = false                       # true: passives learn only their alignment

    [parties.bank]
    role = "active"
    data = "bank.csv"                     # a path: the active party's own file
    id_column = "id"
    label = "y"

    [parties.insurer]
    role = "passive"
    data = "insurer.csv"                  # a path, used only by `vfl run --local`
    alias = "insurer_2024"                # the data alias a deployed `vfl serve` party offers
    id_column = "id"
"""
from __future__ import annotations

import dataclasses
import pathlib

import tomllib

from vfl.errors import VFLError

MODELS = {"logistic_regression": "classification", "linear_regression": "regression",
          "secureboost": "classification", "secureboost_regression": "regression"}
ROLES = ("active", "passive")
LR_HYPERPARAMETERS = {"learning_rate", "epochs", "batch_size", "lr_schedule", "lr_decay", "penalty", "alpha",
                      "early_stopping", "validation_fraction", "tol", "n_iter_no_change", "standardize",
                      "random_state", "key_bits", "residual_frac_bits", "approximation", "protocol"}
SBT_HYPERPARAMETERS = {"n_estimators", "learning_rate", "max_depth", "max_bins", "min_child_weight", "reg_lambda",
                       "gamma", "subsample", "colsample_bytree", "goss", "top_rate", "other_rate", "early_stopping",
                       "validation_fraction", "n_iter_no_change", "tol", "first_k_trees_active_only", "random_state",
                       "frac_bits", "key_bits"}
HYPERPARAMETERS = {"logistic_regression": LR_HYPERPARAMETERS, "linear_regression": LR_HYPERPARAMETERS,
                   "secureboost": SBT_HYPERPARAMETERS,
                   "secureboost_regression": SBT_HYPERPARAMETERS | {"gradient_int_bits"}}
_PARTY_KEYS = {"role", "data", "alias", "id_column", "label", "features"}


class JobSpecError(VFLError, ValueError):
    """A job file is malformed; the message names the file, the table and the key."""


@dataclasses.dataclass(frozen=True)
class PartySpec:
    name: str
    role: str
    data: str | None            # path (local runs, and always for the active party)
    alias: str | None           # data alias at a deployed passive
    id_column: str
    label: str | None
    features: tuple[str, ...] | None

    def to_params(self) -> dict:
        return {"name": self.name, "alias": self.alias, "id_column": self.id_column,
                "features": list(self.features) if self.features else None}


@dataclasses.dataclass(frozen=True)
class JobSpec:
    name: str
    model: str
    output_dir: str
    test_size: float
    seed: int
    hyperparameters: dict
    psi_private: bool
    parties: tuple[PartySpec, ...]
    source: str = "<job>"

    @property
    def active(self) -> PartySpec:
        return next(p for p in self.parties if p.role == "active")

    @property
    def passives(self) -> list[PartySpec]:
        return [p for p in self.parties if p.role == "passive"]

    @property
    def task(self) -> str:
        return MODELS[self.model]

    def party(self, name: str) -> PartySpec:
        for p in self.parties:
            if p.name == name:
                return p
        raise JobSpecError(f"{self.source}: no party {name!r} in the job (parties: {[p.name for p in self.parties]})")


def load_job(path) -> JobSpec:
    path = pathlib.Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise JobSpecError(f"cannot read job file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise JobSpecError(f"job file {path} is not valid TOML: {exc}") from None
    return parse_job(raw, source=str(path), base_dir=path.parent)


def _table(raw: dict, key: str, source: str, required: bool = True) -> dict:
    value = raw.get(key, None if required else {})
    if value is None:
        raise JobSpecError(f"{source}: missing [{key}] table")
    if not isinstance(value, dict):
        raise JobSpecError(f"{source}: [{key}] must be a table")
    return value


def _resolve(base_dir, value):
    if value is None:
        return None
    p = pathlib.Path(value)
    return str(p if p.is_absolute() or base_dir is None else (pathlib.Path(base_dir) / p))


def _party(name: str, raw: dict, source: str, base_dir) -> PartySpec:
    where = f"{source}: [parties.{name}]"
    if not isinstance(raw, dict):
        raise JobSpecError(f"{where} must be a table")
    unknown = set(raw) - _PARTY_KEYS
    if unknown:
        raise JobSpecError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(_PARTY_KEYS)})")
    role = raw.get("role")
    if role not in ROLES:
        raise JobSpecError(f"{where}: role must be 'active' or 'passive', got {role!r}")
    if role == "passive" and raw.get("label"):
        raise JobSpecError(f"{where}: the label column belongs to the active party, not a passive")
    if role == "active" and not raw.get("label"):
        raise JobSpecError(f"{where}: the active party must name its label column (label = ...)")
    if role == "active" and not raw.get("data"):
        raise JobSpecError(f"{where}: the active party needs data = <path>")
    if not raw.get("data") and not raw.get("alias"):
        raise JobSpecError(f"{where}: give data = <path> (local runs) or alias = <data alias> (deployed)")
    features = raw.get("features")
    if features is not None and (not isinstance(features, list) or not all(isinstance(f, str) for f in features)):
        raise JobSpecError(f"{where}: features must be a list of column names")
    return PartySpec(name=name, role=role, data=_resolve(base_dir, raw.get("data")), alias=raw.get("alias"),
                     id_column=str(raw.get("id_column", "id")), label=raw.get("label"),
                     features=tuple(features) if features else None)


def parse_job(raw: dict, *, source: str = "<job>", base_dir=None) -> JobSpec:
    job = _table(raw, "job", source)
    model = job.get("model")
    if model not in MODELS:
        raise JobSpecError(f"{source}: [job] model must be one of {sorted(MODELS)}, got {model!r}")
    hyper = _table(raw, "model", source, required=False)
    unknown = set(hyper) - HYPERPARAMETERS[model]
    if unknown:
        raise JobSpecError(f"{source}: [model] has unknown hyperparameters {sorted(unknown)} for {model} "
                           f"(known: {sorted(HYPERPARAMETERS[model])})")
    evaluation = _table(raw, "evaluation", source, required=False)
    test_size = evaluation.get("test_size", 0.0)
    if not isinstance(test_size, (int, float)) or not 0 <= test_size < 1:
        raise JobSpecError(f"{source}: [evaluation] test_size must be in [0, 1), got {test_size!r}")
    parties_raw = _table(raw, "parties", source)
    parties = tuple(_party(n, p, source, base_dir) for n, p in parties_raw.items())
    actives = [p.name for p in parties if p.role == "active"]
    if len(actives) != 1:
        raise JobSpecError(f"{source}: exactly one active party is needed, found {actives or 'none'}")
    if len(parties) < 2:
        raise JobSpecError(f"{source}: a job needs at least one passive party")
    psi = _table(raw, "psi", source, required=False)
    if psi.get("private"):
        # Training on a padded table would not hide the fillers: the passive's own gradient
        # X_pᵀd is sparse in the real rows and reveals them and their labels.
        raise JobSpecError(f"{source}: [psi] private = true cannot be combined with training yet "
                           "(a passive's gradient would reveal which rows are real); use the private "
                           "option for alignment only (vfl.psi.align_active(..., private=True))")
    return JobSpec(name=str(job.get("name", "job")), model=model,
                   output_dir=str(job.get("output_dir", "runs/" + str(job.get("name", "job")))),
                   test_size=float(test_size), seed=int(evaluation.get("seed", 0)), hyperparameters=dict(hyper),
                   psi_private=bool(psi.get("private", False)), parties=parties, source=source)
