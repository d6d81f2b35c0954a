"""Job files (TOML): who takes part, whose data, which model. Validated before any cryptography.

Format (docs/jobs.md has the full reference)::

    [job]
    name = "breast-lr"
    model = "logistic_regression"         # a registered model family (vfl.registry)
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

from protocols.paillier import SCHEMES
from vfl import registry
from vfl.checkpoint import digest_of
from vfl.errors import VFLError
from vfl.family import ModelFamily
from vfl.names import RULE, is_safe_name
from vfl.privacy import FeaturePrivacy, LabelPrivacy, parse_privacy, privacy_section

ROLES = ("active", "passive")
_SECTIONS = {"job", "evaluation", "model", "psi", "parties", "privacy"}
_PARTY_KEYS = {"role", "data", "alias", "id_column", "label", "features"}


class JobSpecError(VFLError, ValueError):
    """A job file is malformed; the message names the file, the table and the key."""

    category = "job"


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

    @classmethod
    def from_params(cls, name: str, raw) -> "PartySpec":
        """A passive's own entry of a job request, as the active sent it (checked: it is a peer's)."""
        if not isinstance(raw, dict):
            raise JobSpecError(f"the job does not describe {name}'s part")
        id_column, features, alias = raw.get("id_column"), raw.get("features"), raw.get("alias")
        if not isinstance(id_column, str) or not id_column:
            raise JobSpecError(f"the job names no id column for {name}")
        if features is not None and not (isinstance(features, list) and all(isinstance(f, str) for f in features)):
            raise JobSpecError(f"the job's feature list for {name} is not a list of column names")
        if alias is not None and not isinstance(alias, str):
            raise JobSpecError(f"the job's data alias for {name} is not a string")
        return cls(name=name, role="passive", data=None, alias=alias, id_column=id_column, label=None,
                   features=tuple(features) if features else None)


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
    sections: dict = dataclasses.field(default_factory=dict)   # tables the family reads, e.g. [reveal]
    privacy: LabelPrivacy | None = None                         # [privacy]: label DP (vfl.privacy)
    feature_privacy: FeaturePrivacy | None = None               # [privacy] feature_epsilon: the passives' columns

    @property
    def family(self) -> ModelFamily:
        return registry.family(self.model)

    @property
    def active(self) -> PartySpec:
        return next(p for p in self.parties if p.role == "active")

    @property
    def passives(self) -> list[PartySpec]:
        return [p for p in self.parties if p.role == "passive"]

    @property
    def task(self) -> str:
        return self.family.task

    def passive_request(self) -> dict:
        """What the active sends every passive in the job request: their parts, never a path."""
        return {"job": self.name, "model": self.model, "psi_private": self.psi_private,
                "parties": {p.name: p.to_params() for p in self.passives}, "sections": dict(self.sections),
                "rounds": self.family.rounds(self.hyperparameters),
                "schemes": list(self.family.schemes(self.hyperparameters)),
                **({"privacy": privacy_section(self.privacy, self.feature_privacy)}
                   if self.privacy or self.feature_privacy else {})}

    def digest(self) -> str:
        """sha256 of what the job asks — not where its files are: a resumed run must be the
        same job (its tables are checked separately, by content)."""
        me = self.active
        return digest_of({"request": self.passive_request(), "hyperparameters": self.hyperparameters,
                          "test_size": self.test_size, "seed": self.seed,
                          "active": {**me.to_params(), "label": me.label}})


@dataclasses.dataclass(frozen=True)
class PassiveRequest:
    """A passive's view of a job: what :meth:`JobSpec.passive_request` sent (a peer's words,
    so every field is checked)."""

    job: str
    model: str
    psi_private: bool
    party: PartySpec                # this passive's own entry
    sections: dict = dataclasses.field(default_factory=dict)   # the family's job-file sections
    run: str | None = None          # prediction: the training run whose part to use
    part_digest: str | None = None  # prediction: the digest that run recorded for this party's part
    rounds: int | None = None       # training: the rounds (epochs, trees) the job declares
    resume: str | None = None       # training: the run to continue from this party's checkpoints
    passives: tuple[str, ...] = ()  # every passive of the job, in the job's order
    schemes: tuple[str, ...] = ("paillier",)   # training: the homomorphic schemes its key may be in
    privacy: LabelPrivacy | None = None        # training: the label DP the active applies ([privacy])
    feature_privacy: FeaturePrivacy | None = None   # training: the noise this party adds ([privacy] feature_*)

    @property
    def family(self) -> ModelFamily:
        return registry.family(self.model)

    @classmethod
    def parse(cls, params, me: str) -> "PassiveRequest":
        if not isinstance(params, dict):
            raise JobSpecError("the job request is not a table")
        job = params.get("job")
        if not is_safe_name(job):
            raise JobSpecError(f"job name {job!r} is not a safe file name")
        family = registry.family(params.get("model"))
        parties = params.get("parties")
        if not isinstance(parties, dict) or me not in parties:
            raise JobSpecError(f"the job does not describe {me}'s part")
        sections = params.get("sections", {})
        if not isinstance(sections, dict):
            raise JobSpecError("the job's sections are not a table")
        run, digests = params.get("run"), params.get("parts", {})
        if run is not None and not is_safe_name(run) or not isinstance(digests, dict):
            raise JobSpecError("the job's run id or part digests are malformed")
        digest = digests.get(me)
        if digest is not None and not (isinstance(digest, str) and len(digest) == 64):
            raise JobSpecError(f"the job's digest of {me}'s part is malformed")
        rounds = params.get("rounds")
        if rounds is not None and (isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1):
            raise JobSpecError(f"the job's declared rounds {rounds!r} are not a positive integer")
        resume = params.get("resume")
        if resume is not None and not is_safe_name(resume):
            raise JobSpecError("the job's run id to resume is malformed")
        schemes = params.get("schemes", ["paillier"])
        if not isinstance(schemes, list) or not schemes \
                or not all(isinstance(s, str) and s in SCHEMES for s in schemes):
            raise JobSpecError(f"the job's schemes {schemes!r} are not a list of {', '.join(SCHEMES)}")
        privacy = features = None
        if params.get("privacy") is not None:
            try:
                privacy, features = parse_privacy(params["privacy"], family)
            except ValueError as exc:
                raise JobSpecError(f"the job request's {exc}") from None
        return cls(job, family.name, params.get("psi_private") is True, PartySpec.from_params(me, parties[me]),
                   _sections(sections, family, "the job request"), run, digest, rounds, resume,
                   tuple(str(p) for p in parties), tuple(schemes), privacy, features)


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
    if role == "active" and not raw.get("data"):
        raise JobSpecError(f"{where}: the active party needs data = <path>")
    if not raw.get("data") and not raw.get("alias"):
        raise JobSpecError(f"{where}: give data = <path> (local runs) or alias = <data alias> (deployed)")
    features = raw.get("features")
    if features is not None and (not isinstance(features, list) or not all(isinstance(f, str) for f in features)):
        raise JobSpecError(f"{where}: features must be a list of column names")
    if features is not None and len(set(features)) != len(features):
        raise JobSpecError(f"{where}: features lists {sorted({f for f in features if features.count(f) > 1})} "
                           "more than once")
    return PartySpec(name=name, role=role, data=_resolve(base_dir, raw.get("data")), alias=raw.get("alias"),
                     id_column=str(raw.get("id_column", "id")), label=raw.get("label"),
                     features=tuple(features) if features else None)


def parse_job(raw: dict, *, source: str = "<job>", base_dir=None) -> JobSpec:
    job = _table(raw, "job", source)
    name = str(job.get("name", "job"))
    if not is_safe_name(name):
        raise JobSpecError(f"{source}: [job] name must be {RULE} (it names directories at every party), "
                           f"got {name!r}")
    family = _family(job.get("model"), source)
    hyper = _table(raw, "model", source, required=False)
    try:
        family.check_hyperparameters(dict(hyper))
    except (TypeError, ValueError) as exc:
        raise JobSpecError(f"{source}: [model] {exc}") from None
    sections = _sections(raw, family, source)
    evaluation = _table(raw, "evaluation", source, required=False)
    test_size = evaluation.get("test_size", 0.0)
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)) or not 0 <= test_size < 1:
        raise JobSpecError(f"{source}: [evaluation] test_size must be in [0, 1), got {test_size!r}")
    seed = evaluation.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise JobSpecError(f"{source}: [evaluation] seed must be a non-negative integer, got {seed!r}")
    privacy = features = None
    if "privacy" in raw:
        try:
            privacy, features = parse_privacy(raw["privacy"], family)
            if features is not None:
                features.check_model({**family.hyperparameters(), **hyper}, float(test_size))
        except ValueError as exc:
            raise JobSpecError(f"{source}: {exc}") from None
    parties = _parties(raw, source, base_dir, family)
    try:
        family.check_parties(sections, [p.name for p in sorted(parties, key=lambda p: p.role != "active")])
    except ValueError as exc:
        raise JobSpecError(f"{source}: {exc}") from None
    psi = _table(raw, "psi", source, required=False)
    if psi.get("private"):
        # Training on a padded table would not hide the fillers: the passive's own gradient
        # X_pᵀd is sparse in the real rows and reveals them and their labels.
        raise JobSpecError(f"{source}: [psi] private = true cannot be combined with training yet "
                           "(a passive's gradient would reveal which rows are real); use the private "
                           "option for alignment only (vfl.psi.align_active(..., private=True))")
    return JobSpec(name=name, model=family.name, output_dir=str(job.get("output_dir", "runs/" + name)),
                   test_size=float(test_size), seed=seed, hyperparameters=dict(hyper),
                   psi_private=bool(psi.get("private", False)), parties=parties, source=source, sections=sections,
                   privacy=privacy, feature_privacy=features)


def _family(model, source: str) -> ModelFamily:
    try:
        return registry.family(model)
    except registry.UnknownModelError:
        raise JobSpecError(f"{source}: [job] model must be one of {registry.names()}, got {model!r}") from None


def _sections(raw: dict, family: ModelFamily, source: str) -> dict:
    """The job file's other tables: each must be one the model family reads, and valid."""
    out = {}
    for name in sorted(set(raw) - _SECTIONS):
        if name not in family.sections or not isinstance(raw[name], dict):
            raise JobSpecError(f"{source}: unknown section [{name}] for model {family.name} "
                               f"(it reads {sorted(_SECTIONS | family.sections)})")
        try:
            family.check_section(name, raw[name])
        except (TypeError, ValueError) as exc:
            raise JobSpecError(f"{source}: [{name}] {exc}") from None
        out[name] = dict(raw[name])
    return out


def _parties(raw: dict, source: str, base_dir, family: ModelFamily) -> tuple[PartySpec, ...]:
    parties = tuple(_party(n, p, source, base_dir) for n, p in _table(raw, "parties", source).items())
    actives = [p.name for p in parties if p.role == "active"]
    if len(actives) != 1:
        raise JobSpecError(f"{source}: exactly one active party is needed, found {actives or 'none'}")
    if len(parties) < 2:
        raise JobSpecError(f"{source}: a job needs at least one passive party")
    for p in parties:
        if not is_safe_name(p.name):
            raise JobSpecError(f"{source}: party name {p.name!r} must be {RULE}")
    active = next(p for p in parties if p.role == "active")
    if family.data.label is not None and not active.label:
        raise JobSpecError(f"{source}: [parties.{active.name}]: the active party must name its label column "
                           f"(label = ...): {family.name} learns from labels")
    return parties
