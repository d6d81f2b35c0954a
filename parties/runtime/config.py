"""Party configuration (TOML). Every problem is a :class:`ConfigError` at start-up.

::

    name = "bank"
    listen = "tcp://0.0.0.0:7001"          # the one port this party binds (ROUTER)
    secret_key = "keys/bank.key_secret"    # from `vfl keygen --name bank --out keys/`
    audit_log = "audit/bank.jsonl"         # optional; default <config dir>/<name>.audit.jsonl
    models_dir = "models"                  # optional; where this party keeps its model parts
    plugins = ["acme_vfl.family"]          # optional; modules that register more model families
    share_error_details = false            # optional; true sends peers the full text of this party's
                                           # errors (only where one user owns every party)

    [data]                                 # aliases jobs may use; a job cannot name a path
    customers = "data/customers.csv"
    [data.policies]                        # optional: per alias, what a job may use of it
    customers = { id_column = "customer_id", features = ["age", "premium", "claims"], min_features = 2 }

    [statistics]                           # optional: who may learn statistics of this party's
    reveal_to = "participants"             # columns (correlations): "participants" (default: any
                                           # party of the job), "initiator", or a list of names
    share_reason_codes = false             # scorecards: name this party's features (and each row's
                                           # costliest ones) in reason codes; default: the party as a whole

    [crypto]                               # optional: the homomorphic schemes a job's key may be in
    schemes = ["paillier", "ou"]           # (default both; a job that may use another is refused)

    [compute]                              # optional: where its heavy work runs (parties/runtime/compute.py)
    workers = 8                            # this machine's pool, or scheduler = "tls://…" and certificates

    [privacy]                              # optional (the label holder): ε budgets of its labels
    label_epsilon_budget = { customers = 4.0 }   # per [data] alias: the ε all label-DP jobs may spend;
                                           # a job without [privacy] on a budgeted dataset is refused
    delta = 0.0                            # δ at which spent ε is composed (0: the ε add up)
    max_feature_epsilon = 4.0              # a passive: train only with [privacy] feature_epsilon <= this
    feature_epsilon_budget = { customers = 8.0 }   # a passive: ε all feature-DP jobs may spend of its columns

    [predictions]                          # optional (a passive): rows each peer may have it score;
    max_rows_per_request = 100000          # 0 or left out: no cap
    max_rows_per_period = 1000000          # in the last period_hours (default 24)
    max_rows_per_model = 5000000           # against one trained model, ever

    [limits]                               # optional; defaults in `Limits`
    recv_timeout = 60.0
    max_epochs = 50

    [[peers]]
    name = "insurer"
    address = "tcp://10.0.0.2:7001"
    public_key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"   # or public_key_file = "keys/insurer.key"

Relative paths are relative to the config file's directory.
"""
from __future__ import annotations

import dataclasses
import os
import re
import tomllib

from parties.runtime.budgets import PrivacyTerms, QueryTerms, parse_privacy_terms, parse_query_terms
from parties.runtime.compute import ComputeConfig, parse_compute
from parties.runtime.errors import ConfigError, check_section
from parties.runtime.keys import CurveKeypair, check_z85_key, load_keypair, load_public_key
from protocols.paillier import SCHEMES
from vfl.names import RULE, is_safe_name

_TOP = {"name", "listen", "secret_key", "audit_log", "models_dir", "data", "limits", "peers", "accept_jobs_from",
        "plugins", "share_error_details", "psi", "statistics", "crypto", "compute", "privacy", "predictions"}
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclasses.dataclass(frozen=True)
class Limits:
    """What this party will do for others, and how long it waits."""

    recv_timeout: float = 60.0          # default per-receive timeout, seconds
    send_timeout: float = 30.0          # a send blocked by a full peer queue fails after this
    heartbeat_interval: float = 1.0
    peer_dead_after: float = 10.0       # no heartbeat for this long: the peer is gone
    max_message_bytes: int = 2 << 30    # largest message accepted (after reassembly)
    chunk_bytes: int = 1 << 20          # large messages travel in chunks of this size
    high_water_mark: int = 16           # chunks queued per socket before senders block
    max_epochs: int = 100               # jobs asking for more epochs are refused
    max_concurrent_jobs: int = 4

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"limits.{f.name} must be a positive number, got {value!r}")
        if self.peer_dead_after <= 2 * self.heartbeat_interval:
            raise ConfigError("limits.peer_dead_after must exceed twice limits.heartbeat_interval")


@dataclasses.dataclass(frozen=True)
class PeerConfig:
    name: str
    address: str
    public_key: bytes | None            # Z85; None only in --insecure mode


@dataclasses.dataclass(frozen=True)
class PsiTerms:
    """``[psi]``: what a PSI may reveal of this party's ids to the peer that asks (defaults shown in
    docs/runtime.md). 0 for either initiator cap means "no cap"."""

    max_initiator_ratio: float = 10.0   # the initiator's ids, at most this many times this party's
    max_initiator_ids: int = 0          # the initiator's ids, at most this many
    max_share: float = 1.0              # per PSI: the share of this party's ids the initiator may learn
    max_share_per_peer: float = 1.0     # in all, per peer, across jobs and predictions (the ledger)
    ledger: str = ""                    # directory of the ledger (default <config dir>/<name>.psi-ledger)


def _psi_terms(raw, resolve, name: str) -> PsiTerms:
    check_section(raw, "psi", (f.name for f in dataclasses.fields(PsiTerms)))
    terms = PsiTerms(**{**raw, "ledger": resolve(raw.get("ledger", f"{name}.psi-ledger"))})
    for key in ("max_initiator_ratio", "max_share", "max_share_per_peer"):
        value = getattr(terms, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"[psi] {key} must be a number >= 0, got {value!r}")
    if isinstance(terms.max_initiator_ids, bool) or not isinstance(terms.max_initiator_ids, int) \
            or terms.max_initiator_ids < 0:
        raise ConfigError(f"[psi] max_initiator_ids must be an integer >= 0, got {terms.max_initiator_ids!r}")
    for key in ("max_share", "max_share_per_peer"):
        if not 0 < getattr(terms, key) <= 1:
            raise ConfigError(f"[psi] {key} must be in (0, 1], got {getattr(terms, key)!r}")
    return terms


@dataclasses.dataclass(frozen=True)
class PartyConfig:
    name: str
    listen: str
    secret_key_file: str | None
    peers: tuple[PeerConfig, ...]
    data: dict[str, str]
    limits: Limits
    audit_log: str
    accept_jobs_from: tuple[str, ...]   # peers that may start jobs here (default: all peers)
    models_dir: str = "models"          # this party's model parts (jobs never choose a path)
    data_policies: dict = dataclasses.field(default_factory=dict)   # alias -> {id_column, features, min_features}
    plugins: tuple[str, ...] = ()       # modules this party imports to register more model families
    share_error_details: bool = False   # True only where one user owns every party (local runs)
    psi: PsiTerms = dataclasses.field(default_factory=PsiTerms)
    reveal_to: str | tuple[str, ...] | None = None   # [statistics]: None = any party of the job
    share_reason_codes: bool = False                 # [statistics]: name its features in reason codes
    schemes: tuple[str, ...] = SCHEMES               # [crypto]: the schemes a job's key may be in
    compute: ComputeConfig = dataclasses.field(default_factory=ComputeConfig)   # [compute]: pool or cluster
    privacy: PrivacyTerms = dataclasses.field(default_factory=PrivacyTerms)     # [privacy]: ε budgets of labels
    predictions: QueryTerms = dataclasses.field(default_factory=QueryTerms)     # [predictions]: rows per peer

    def peer(self, name: str) -> PeerConfig:
        for p in self.peers:
            if p.name == name:
                return p
        raise KeyError(name)

    def load_keypair(self) -> CurveKeypair:
        if not self.secret_key_file:
            raise ConfigError(f"{self.name}: no secret_key configured (needed unless --insecure)")
        return load_keypair(self.secret_key_file)


_POLICY_KEYS = {"id_column", "features", "min_features"}


def _policies(raw) -> dict:
    """``[data.policies]``: per alias, the id column jobs must use, the features they may use,
    and the fewest features a job may use (one feature alone would be read off partial scores)."""
    if not isinstance(raw, dict):
        raise ConfigError("[data.policies] must be a table of alias = { ... }")
    out = {}
    for alias, pol in raw.items():
        if not isinstance(pol, dict) or set(pol) - _POLICY_KEYS:
            raise ConfigError(f"[data.policies] {alias}: a table with keys among {sorted(_POLICY_KEYS)}")
        feats = pol.get("features")
        if feats is not None and not (isinstance(feats, list) and all(isinstance(f, str) for f in feats)):
            raise ConfigError(f"[data.policies] {alias}: features must be a list of column names")
        minimum = pol.get("min_features", 2)
        if not isinstance(minimum, int) or minimum < 1:
            raise ConfigError(f"[data.policies] {alias}: min_features must be a positive integer")
        out[alias] = {"id_column": pol.get("id_column"), "features": feats, "min_features": minimum}
    return out


def load_config(path: str | os.PathLike, *, insecure: bool = False) -> PartyConfig:
    """Read, validate and resolve a party config; keys are checked unless ``insecure``."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
    return parse_config(raw, base_dir=os.path.dirname(os.path.abspath(path)), insecure=insecure)


def parse_config(raw: dict, *, base_dir: str, insecure: bool = False) -> PartyConfig:
    unknown = set(raw) - _TOP
    if unknown:
        raise ConfigError(f"unknown config keys: {sorted(unknown)}")
    name = _name(raw.get("name"), "name")
    listen = _address(raw.get("listen"), "listen")
    resolve = lambda p: os.path.normpath(os.path.join(base_dir, os.path.expanduser(str(p))))  # noqa: E731
    peers = tuple(_peer(p, resolve, insecure) for p in _list(raw.get("peers", []), "peers"))
    names = [p.name for p in peers]
    if len(set(names)) != len(names) or name in names:
        raise ConfigError("peer names must be unique and differ from this party's name")
    data = dict(raw.get("data", {})) if isinstance(raw.get("data", {}), dict) else None
    policies = _policies(data.pop("policies", {}) if data is not None else {})
    if data is None or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError("[data] must map aliases to file paths")
    if not set(policies) <= set(data):
        raise ConfigError(f"[data.policies] names unknown aliases: {sorted(set(policies) - set(data))}")
    limits = raw.get("limits", {})
    if not isinstance(limits, dict):
        raise ConfigError("[limits] must be a table")
    try:
        limits = Limits(**limits)
    except TypeError as exc:
        raise ConfigError(f"[limits]: {exc}") from None
    accept = raw.get("accept_jobs_from", names)
    if not isinstance(accept, list) or not all(isinstance(a, str) for a in accept):
        raise ConfigError(f"accept_jobs_from must be a list of peer names, got {accept!r}")
    if not set(accept) <= set(names):
        raise ConfigError(f"accept_jobs_from names unknown peers: {sorted(set(accept) - set(names))}")
    secret = _path(raw.get("secret_key"), "secret_key", optional=True)
    config = PartyConfig(name, listen, resolve(secret) if secret else None, peers,
                         {_name(k, "data alias"): resolve(v) for k, v in data.items()}, limits,
                         resolve(_path(raw.get("audit_log", f"{name}.audit.jsonl"), "audit_log")), tuple(accept),
                         resolve(_path(raw.get("models_dir", "models"), "models_dir")), policies,
                         _plugins(raw.get("plugins", [])),
                         _flag(raw.get("share_error_details", False), "share_error_details"),
                         _psi_terms(raw.get("psi", {}), resolve, name), *_statistics(raw.get("statistics", {})),
                         _crypto(raw.get("crypto", {})), parse_compute(raw.get("compute", {}), resolve),
                         parse_privacy_terms(raw.get("privacy", {}), resolve, name, set(data)),
                         parse_query_terms(raw.get("predictions", {}), resolve, name))
    if not insecure:
        config.load_keypair()            # fail now, not at the first connection
    return config


def _crypto(raw) -> tuple[str, ...]:
    """``[crypto]``: schemes — a non-empty list of "paillier" and "ou"."""
    if not isinstance(raw, dict) or set(raw) - {"schemes"}:
        raise ConfigError("[crypto] must be a table with the key schemes only")
    value = raw.get("schemes", list(SCHEMES))
    if not isinstance(value, list) or not value or not all(v in SCHEMES for v in value) or len(set(value)) < len(value):
        raise ConfigError(f"[crypto] schemes must be a non-empty list of {', '.join(map(repr, SCHEMES))}, "
                          f"got {value!r}")
    return tuple(value)


def _statistics(raw) -> tuple[str | tuple[str, ...] | None, bool]:
    """``[statistics]``: reveal_to — "participants" (None), "initiator", or a list of party
    names — and share_reason_codes."""
    if not isinstance(raw, dict) or set(raw) - {"reveal_to", "share_reason_codes"}:
        raise ConfigError("[statistics] must be a table with the keys reveal_to and share_reason_codes only")
    share = _flag(raw.get("share_reason_codes", False), "[statistics] share_reason_codes")
    value = raw.get("reveal_to", "participants")
    if value == "participants":
        return None, share
    if value == "initiator":
        return value, share
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value), share
    raise ConfigError(f'[statistics] reveal_to must be "participants", "initiator" or a list of party names, '
                      f"got {value!r}")


def _path(value, what: str, *, optional: bool = False) -> str | None:
    if optional and value is None:
        return None
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ConfigError(f"{what} must be a file path, got {value!r}")
    return value


def _flag(value, what: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{what} must be true or false, got {value!r}")
    return value


def _plugins(raw) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(m, str) and _MODULE.match(m) for m in raw):
        raise ConfigError(f"plugins must be a list of Python module names, got {raw!r}")
    return tuple(raw)


def _peer(raw, resolve, insecure: bool) -> PeerConfig:
    if not isinstance(raw, dict) or not set(raw) <= {"name", "address", "public_key", "public_key_file"}:
        raise ConfigError(f"each [[peers]] entry needs name, address and public_key(_file): {raw!r}")
    name = _name(raw.get("name"), "peer name")
    key = None
    if "public_key" in raw:
        key = check_z85_key(str(raw["public_key"]), f"public_key of peer {name}")
    elif "public_key_file" in raw:
        key = load_public_key(resolve(raw["public_key_file"]))
    elif not insecure:
        raise ConfigError(f"peer {name} has no public_key or public_key_file")
    return PeerConfig(name, _address(raw.get("address"), f"address of peer {name}"), key)


def _name(value, what: str) -> str:
    if not is_safe_name(value):
        raise ConfigError(f"{what} must be {RULE}, got {value!r}")
    return value


def _address(value, what: str) -> str:
    if not isinstance(value, str) or not re.match(r"^tcp://[^\s:]+:\d{1,5}$", value):
        raise ConfigError(f"{what} must look like tcp://host:port, got {value!r}")
    return value


def _list(value, what: str) -> list:
    if not isinstance(value, list):
        raise ConfigError(f"{what} must be an array of tables")
    return value
