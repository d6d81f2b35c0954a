"""What a party lets its data be used for across jobs: two ledgers kept on its own disk.

- :class:`LabelLedger` (the label-holding party, ``[privacy]`` of its config): per dataset, the ε
  each job's label DP spent of its labels. A job that would take a dataset past its
  ``label_epsilon_budget``, or use a budgeted dataset's labels without label DP, is refused
  before its PSI, and again (under the lock) at the moment its labels are released. The same
  ledger with ``kind="features"`` is a passive's: the ε each job's feature DP spent of a
  dataset's columns (``feature_epsilon_budget``), charged before the job's PSI.
- :class:`QueryLedger` (a passive, ``[predictions]``): per peer, how many rows it had this
  party score, per prediction request, per rolling period and per trained model, so a peer
  cannot copy the model by querying it without bound. A request past a cap is refused before
  the PSI reveals which rows match, and the rows admitted are recorded before any score is sent.

Both are JSON files written whole and private (:mod:`vfl.files`), under an exclusive ``flock``,
so several processes of one party (two ``vfl run`` at once) keep one count. They survive
restarts: deleting them is the only way to reset a count, and that is for the file's owner.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import pathlib
import threading
import time

from parties.runtime.errors import ConfigError, PartyError, check_section
from vfl.files import make_dirs, write_private

LOCK_WAIT = 30.0         # seconds a ledger waits for another process of the same party


class BudgetError(PartyError):
    """A job or request would pass a budget this party set (ε of a dataset's labels, rows a peer
    may have scored)."""

    category = "refused"


@contextlib.contextmanager
def _locked(path: pathlib.Path, thread_lock: threading.Lock):
    """Exclusive use of the ledger at ``path`` by this thread and process."""
    lock = path.with_name(path.name + ".lock")
    with thread_lock:
        make_dirs(lock.parent)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            deadline = time.monotonic() + LOCK_WAIT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise PartyError(f"ledger {path} is held by another process for over {LOCK_WAIT:g} s") \
                            from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)                 # closing the file releases its lock


def _read(path: pathlib.Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PartyError(f"ledger {path} is unreadable ({exc}): restore it from a backup; a ledger is never "
                         "reset silently") from None
    if not isinstance(data, dict):
        raise PartyError(f"ledger {path} is not a JSON object")
    return data


# ---------------------------------------------------------------------------------------- labels

@dataclasses.dataclass(frozen=True)
class PrivacyTerms:
    """``[privacy]`` of a party config: ε budgets of its datasets' labels."""

    label_epsilon_budget: dict = dataclasses.field(default_factory=dict)   # [data] alias -> ε all jobs may spend
    delta: float = 0.0                  # the δ at which spent ε is composed (0: the ε add up)
    ledger: str = ""                    # the ledger file (default <config dir>/<name>.privacy-ledger.json)
    max_feature_epsilon: float = 0.0    # a passive: train only with [privacy] feature_epsilon <= this (0: no rule)
    feature_epsilon_budget: dict = dataclasses.field(default_factory=dict)   # a passive: alias -> ε of its columns
    feature_ledger: str = ""            # default <config dir>/<name>.feature-ledger.json


def _budgets(raw: dict, key: str, aliases) -> dict:
    budgets = raw.get(key, {})
    if not isinstance(budgets, dict):
        raise ConfigError(f"[privacy] {key} must be a table of data alias = ε")
    for alias, eps in budgets.items():
        if alias not in aliases:
            raise ConfigError(f"[privacy] {key} names {alias!r}, not a [data] alias (aliases: {sorted(aliases)})")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps < 0:
            raise ConfigError(f"[privacy] {key}.{alias} must be a number >= 0, got {eps!r}")
    return {k: float(v) for k, v in budgets.items()}


def parse_privacy_terms(raw, resolve, name: str, aliases) -> PrivacyTerms:
    check_section(raw, "privacy", (f.name for f in dataclasses.fields(PrivacyTerms)))
    budgets = _budgets(raw, "label_epsilon_budget", aliases)
    features = _budgets(raw, "feature_epsilon_budget", aliases)
    delta = raw.get("delta", 0.0)
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0 <= delta < 1:
        raise ConfigError(f"[privacy] delta must be a number in [0, 1), got {delta!r}")
    cap = raw.get("max_feature_epsilon", 0.0)
    if isinstance(cap, bool) or not isinstance(cap, (int, float)) or cap < 0:
        raise ConfigError(f"[privacy] max_feature_epsilon must be a number >= 0 (0: no rule), got {cap!r}")
    return PrivacyTerms(budgets, float(delta), resolve(raw.get("ledger", f"{name}.privacy-ledger.json")), float(cap),
                        features, resolve(raw.get("feature_ledger", f"{name}.feature-ledger.json")))


def _release(privacy) -> tuple[float, float, str]:
    """(ε, δ, mechanism) of a job's release: label DP (:class:`vfl.privacy.LabelPrivacy`) or
    feature DP (:class:`vfl.privacy.FeaturePrivacy`)."""
    if hasattr(privacy, "feature_epsilon"):
        return privacy.feature_epsilon, privacy.feature_delta, "feature_noise"
    return privacy.label_epsilon, privacy.delta, privacy.mechanism


class LabelLedger:
    """Per dataset, the DP releases of its labels (``kind="labels"``) or of a passive's columns
    (``kind="features"``): ``{dataset: [{run, job, epsilon, delta, mechanism, time}]}``. A run is
    charged once, however often it is resumed."""

    def __init__(self, terms: PrivacyTerms, data: dict[str, str], party: str, *, kind: str = "labels"):
        if kind not in ("labels", "features"):
            raise ValueError(f"a ledger of labels or features, not {kind!r}")
        self.terms, self.party, self.kind = terms, party, kind
        self.budgets = terms.label_epsilon_budget if kind == "labels" else terms.feature_epsilon_budget
        self.path = pathlib.Path(terms.ledger if kind == "labels" else terms.feature_ledger)
        self._data = {alias: os.path.realpath(path) for alias, path in data.items()}
        self._lock = threading.Lock()

    def dataset(self, path: str) -> str:
        """The [data] alias of the file at ``path`` (its real path when it has none)."""
        real = os.path.realpath(path)
        return next((alias for alias, p in sorted(self._data.items()) if p == real), real)

    def spent(self, dataset: str, releases: list | None = None) -> float:
        """The ε ``dataset``'s labels have spent: composed at the ledger's δ when every release
        was pure ε-DP; added up (with their δ, :meth:`spent_delta`) once one was not."""
        releases = _read(self.path).get(dataset, []) if releases is None else releases
        from vfl.privacy import compose
        if any(r.get("delta", 0.0) > 0 for r in releases):
            return float(sum(r["epsilon"] for r in releases))
        return compose([r["epsilon"] for r in releases], self.terms.delta)

    @staticmethod
    def spent_delta(releases: list) -> float:
        return float(sum(r.get("delta", 0.0) for r in releases))

    def check(self, dataset: str, privacy, *, run: str | None = None) -> dict:
        """Raise :class:`BudgetError` if a job releasing ``dataset``'s labels with ``privacy`` (a
        :class:`vfl.privacy.LabelPrivacy` or None) would pass its budget; else what it would
        leave (``{dataset, budget, spent, after}``)."""
        return self._admit(_read(self.path), dataset, privacy, run)

    def charge(self, dataset: str, privacy, *, run: str, job: str) -> dict:
        """Record ``run``'s release of ``dataset``'s labels (once: a resumed run is not charged
        again), or raise :class:`BudgetError` and record nothing."""
        with _locked(self.path, self._lock):
            ledger = _read(self.path)
            status = self._admit(ledger, dataset, privacy, run)
            releases = ledger.setdefault(dataset, [])
            if not any(r["run"] == run for r in releases):
                epsilon, delta, mechanism = _release(privacy)
                releases.append({"run": run, "job": job, "epsilon": epsilon, "delta": delta, "mechanism": mechanism,
                                 "time": _now()})
                write_private(self.path, json.dumps(ledger, indent=1))
            return status

    def _admit(self, ledger: dict, dataset: str, privacy, run: str | None) -> dict:
        releases = ledger.get(dataset, [])
        budget = self.budgets.get(dataset)
        what = "labels" if self.kind == "labels" else "columns"
        spent = self.spent(dataset, releases)
        again = run is not None and any(r["run"] == run for r in releases)
        status = {"dataset": dataset, "budget": budget, "delta": self.terms.delta, "spent_before": spent}
        if again:
            return {**status, "spent_after": spent, "charged": False}
        if budget is not None and privacy is None:
            without = "a [privacy] section" if self.kind == "labels" else "[privacy] feature_epsilon"
            raise BudgetError(f"{self.party}: the {what} of {dataset} have an ε budget ({budget:g}, {spent:g} spent); "
                              f"a job without {without} would use them without bound")
        new = [] if privacy is None else [dict(zip(("epsilon", "delta"), _release(privacy)[:2]))]
        after = self.spent(dataset, [*releases, *new])
        delta_after = self.spent_delta([*releases, *new])
        if budget is not None and delta_after > self.terms.delta:
            raise BudgetError(f"{self.party}: the releases of {dataset}'s {what} would then add up to δ = "
                              f"{delta_after:g}, past the ledger's δ of {self.terms.delta:g} ([privacy] delta)")
        if budget is not None and after > budget + 1e-9:
            key = "label_epsilon" if self.kind == "labels" else "feature_epsilon"
            raise BudgetError(f"{self.party}: {key} = {new[0]['epsilon']:g} would take the {what} of "
                              f"{dataset} to ε = {after:g} (δ = {self.terms.delta:g}), past their budget of "
                              f"{budget:g} ({spent:g} spent by {len(releases)} earlier runs)")
        return {**status, "spent_after": after, "charged": privacy is not None}

    def summary(self) -> dict:
        """Per dataset: budget, ε spent, runs charged."""
        ledger = _read(self.path)
        names = sorted(set(ledger) | set(self.budgets))
        return {d: {"budget": self.budgets.get(d), "spent": self.spent(d, ledger.get(d, [])),
                    "runs": len(ledger.get(d, []))} for d in names}


# ---------------------------------------------------------------------------------------- queries

@dataclasses.dataclass(frozen=True)
class QueryTerms:
    """``[predictions]`` of a party config: how many rows each peer may have this party score.
    0 means no cap."""

    max_rows_per_request: int = 0       # one prediction job
    max_rows_per_period: int = 0        # all requests of a peer in the last period_hours
    period_hours: float = 24.0
    max_rows_per_model: int = 0         # all requests of a peer against one trained model, ever
    ledger: str = ""                    # the ledger directory (default <config dir>/<name>.query-ledger)

    @property
    def capped(self) -> bool:
        return bool(self.max_rows_per_request or self.max_rows_per_period or self.max_rows_per_model)


def parse_query_terms(raw, resolve, name: str) -> QueryTerms:
    check_section(raw, "predictions", (f.name for f in dataclasses.fields(QueryTerms)))
    for key in ("max_rows_per_request", "max_rows_per_period", "max_rows_per_model"):
        value = raw.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"[predictions] {key} must be an integer >= 0 (0: no cap), got {value!r}")
    hours = raw.get("period_hours", 24.0)
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or hours <= 0:
        raise ConfigError(f"[predictions] period_hours must be a number > 0, got {hours!r}")
    return QueryTerms(**{**raw, "period_hours": float(hours),
                         "ledger": resolve(raw.get("ledger", f"{name}.query-ledger"))})


class QueryLedger:
    """Per peer (one file each): the rows scored in the last period (``[time, rows]`` pairs,
    older ones dropped) and in all, per trained model."""

    def __init__(self, terms: QueryTerms, party: str):
        self.terms, self.party = terms, party
        self.dir = pathlib.Path(terms.ledger)
        self._lock = threading.Lock()

    def _path(self, peer: str) -> pathlib.Path:
        return self.dir / f"{peer}.json"

    def admit(self, peer: str, model: str, rows: int, *, then=None) -> dict:
        """Record that ``peer`` has ``rows`` scored by ``model`` (a trained run), or raise
        :class:`BudgetError` and record nothing. ``then()`` runs under the same lock before the
        record is written (another ledger's own check): if it raises, nothing is recorded."""
        t = self.terms
        with _locked(self._path(peer), self._lock):
            entry = _read(self._path(peer))
            now = time.time()
            recent = [(s, n) for s, n in entry.get("recent", []) if s > now - t.period_hours * 3600]
            per_model = dict(entry.get("per_model", {}))
            period, model_rows = sum(n for _, n in recent) + rows, per_model.get(model, 0) + rows
            where = f"{self.party}: {peer} asked to score {rows} rows"
            if t.max_rows_per_request and rows > t.max_rows_per_request:
                raise BudgetError(f"{where}; max_rows_per_request is {t.max_rows_per_request}")
            if t.max_rows_per_period and period > t.max_rows_per_period:
                raise BudgetError(f"{where}, {period - rows} already in the last {t.period_hours:g} h; "
                                  f"max_rows_per_period is {t.max_rows_per_period}")
            if t.max_rows_per_model and model_rows > t.max_rows_per_model:
                raise BudgetError(f"{where} with model {model}, {model_rows - rows} already; "
                                  f"max_rows_per_model is {t.max_rows_per_model}")
            if then is not None:
                then()
            per_model[model] = model_rows
            write_private(self._path(peer), json.dumps({"recent": [*recent, (now, rows)], "per_model": per_model}))
            return {"rows": rows, "rows_in_period": period, "rows_with_model": model_rows}

    def summary(self) -> dict:
        """Per peer: rows in the current period and per model."""
        out = {}
        for path in sorted(self.dir.glob("*.json")) if self.dir.is_dir() else []:
            entry = _read(path)
            since = time.time() - self.terms.period_hours * 3600
            out[path.stem] = {"rows_in_period": sum(n for s, n in entry.get("recent", []) if s > since),
                              "per_model": entry.get("per_model", {})}
        return out


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
