"""Hetero Pearson correlation on secret shares: the active and passive estimators.

Every party standardizes its own columns on the shared rows (``z = (x − mean) / std``, the
population std; a constant column is refused by name). The correlation of party i's column a
with party j's column b is ``Σ_rows z_a·z_b / n``. For each pair of parties (i < j in session
order) one Paillier cross product (:mod:`protocols.mpc.crossprod`) gives i and j additive
shares of ``Z_jᵀ·Z_i`` — i holds the key and offers ``Enc(Z_i)`` once to every later party —
and the shares are revealed only to the parties the job's ``[reveal]`` section names
(:mod:`vfl.pearson.plan`). A party's own block it computes in the clear.

Fixed point: ``f`` fractional bits with ``2f + log2(n) ≤ 62`` (f = 20 up to 2^22 rows); since
``|z| ≤ √n``, every sum fits the ring, and the rounding error of a correlation is below
``2^−f·E|z|`` ≈ 10^−6 at f = 20.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from protocols.mpc.ring import decode, encode, signed
from vfl.errors import DataError, ProtocolError
from vfl.estimator import Estimator
from vfl.handshake import MAX_FEATURES
from vfl.model_files import read_model_file, write_model_file
from vfl.mpc import MpcSession
from vfl.pearson.messages import PROTOCOL_VERSION, PearsonNames, PearsonReady, PearsonSetup
from vfl.pearson.plan import RevealPlan
from vfl.validation import Boolean, Integer, Optional, check_features

log = logging.getLogger("vfl.pearson")
FORMAT = "vfl-pearson"
MAX_FRAC_BITS = 20
MAX_PARTIES = 64
MIN_FRAC_BITS = 8


def frac_bits_for(n_rows: int) -> int:
    """The fixed-point resolution for ``n_rows``: ``2f + ⌈log2 n⌉ ≤ 62``, at most 20."""
    return min(MAX_FRAC_BITS, (62 - max(n_rows - 1, 1).bit_length()) // 2)


def scalar_bits_for(n_rows: int, frac_bits: int) -> int:
    """Bits of ``round(z·2^f) + 2^(b−1)`` with ``|z| ≤ √n``."""
    return frac_bits + (max(n_rows - 1, 1).bit_length() + 1) // 2 + 2


def standardize(x: np.ndarray, names: list[str], party: str) -> np.ndarray:
    """Columns centred and scaled to unit population std; a constant column is refused by name."""
    std = x.std(axis=0)
    flat = [names[k] for k in np.flatnonzero(~(std > 0))]
    if flat:
        raise DataError(f"{party}: column(s) {flat} are constant on the {len(x)} shared rows; "
                        "their correlation is undefined (drop them from the job)")
    return (x - x.mean(axis=0)) / std


def cross_plan(parties: list[str], counts: dict[str, int], n_bits: int = 2048) -> list[tuple[str, list[str]]]:
    """Who holds the key for each pair of parties, grouped by holder in session order.

    The key holder encrypts one ciphertext per row and slot group of its columns; the other
    party runs one multi-exponentiation over the rows per column of its own and slot group.
    An encryption costs about 22 multi-exponentiation terms here, so the holder of a pair is
    the party with the smaller ``groups · (22 + other's columns)`` (ties: the earlier party).
    """
    from protocols.mpc.crossprod import slot_bits, slots_per_ciphertext
    slots = slots_per_ciphertext(n_bits, slot_bits(2**20, 32, value_bits=32))     # a safe lower bound

    def cost(h, m):
        return -(-counts[h] // slots) * (22 + counts[m])

    chosen: dict[str, list[str]] = {}
    for i, a in enumerate(parties):
        for b in parties[i + 1:]:
            holder, other = (a, b) if cost(a, b) <= cost(b, a) else (b, a)
            chosen.setdefault(holder, []).append(other)
    return [(h, chosen[h]) for h in parties if h in chosen]


def correlate(session: MpcSession, plan: RevealPlan, z: np.ndarray, frac_bits: int, counts: dict[str, int],
              crosses: list[tuple[str, list[str]]], *, verbose: bool = False) -> dict[tuple[str, str], np.ndarray]:
    """This party's blocks of the correlation matrix: ``{(i, j): corr(cols of i, cols of j)}``
    for its own block and every block the plan reveals to it. Every party calls this together,
    with the same ``crosses`` (:func:`cross_plan`)."""
    me, parties, n = session.me, plan.parties, len(z)
    bits = scalar_bits_for(n, frac_bits)
    offset = 1 << (bits - 1)
    fixed = (signed(encode(z, frac_bits, what=f"{me}'s standardized columns")) + offset).astype(np.uint64)
    shares: dict[tuple[str, str], np.ndarray] = {}                # (m, h): share of Z_mᵀ·Z_h
    for holder, multipliers in crosses:
        start = time.perf_counter()
        got = session.cross(holder, multipliers, tag=f"pearson/{holder}", x=fixed if me == holder else None,
                            y=fixed.T if me in multipliers else None, scalar_bits=bits, scalar_offset=offset,
                            value_bits=bits, value_offset=offset, rows=n, cols=counts[holder],
                            outputs={m: counts[m] for m in multipliers})
        if me == holder:
            shares.update({(m, holder): s for m, s in got.items()})
        elif me in multipliers:
            shares[(me, holder)] = got
        if verbose and (me == holder or me in multipliers):
            log.info("%s: cross products with %s's columns done in %.1f s", me, holder, time.perf_counter() - start)
    own_sums = z.T @ z
    blocks = {(me, me): own_sums / n}
    for i, a in enumerate(parties):
        for b in parties[i:]:
            to = plan.block_receivers(a, b)
            if not to:
                continue
            if a == b:
                own = encode(own_sums, 2 * frac_bits) if me == a else None
                value = session.reveal(own, to, holders=[a], shape=_shape(counts, a, a), tag=f"pearson/{a}")
                rows, cols = a, a
            else:
                rows, cols = _orient(crosses, a, b)
                mine = shares.get((rows, cols))
                value = session.reveal(mine, to, holders=[a, b], shape=_shape(counts, rows, cols),
                                       tag=f"pearson/{a}/{b}")
            if value is not None:
                corr = np.clip(decode(value, 2 * frac_bits) / n, -1.0, 1.0)
                blocks[(rows, cols)] = corr
                blocks[(cols, rows)] = corr.T
    return blocks


def check_cross_plan(crosses, parties: list[str], sender: str) -> list[tuple[str, list[str]]]:
    """A plan received from ``sender``: every pair of distinct session parties exactly once."""
    seen = set()
    for holder, multipliers in crosses:
        for m in multipliers:
            pair = frozenset((holder, m))
            if holder not in parties or m not in parties or m == holder or pair in seen:
                raise ProtocolError(f"{sender} sent a plan of cross products that is not one per pair of parties")
            seen.add(pair)
    if len(seen) != len(parties) * (len(parties) - 1) // 2:
        raise ProtocolError(f"{sender} sent a plan of cross products that leaves out a pair of parties")
    return [(h, list(ms)) for h, ms in crosses]


def _orient(crosses, a: str, b: str) -> tuple[str, str]:
    """(multiplier, holder) of the pair a, b: the shares are of Z_multiplierᵀ·Z_holder."""
    for holder, multipliers in crosses:
        if holder == a and b in multipliers:
            return b, a
        if holder == b and a in multipliers:
            return a, b
    raise ProtocolError(f"the plan has no cross product of {a} and {b}")


def _shape(counts: dict, a: str, b: str) -> tuple | None:
    return (counts[a], counts[b]) if a in counts and b in counts else None


def _check_frac_bits(frac_bits: int, n_rows: int, who: str) -> int:
    if isinstance(frac_bits, bool) or not MIN_FRAC_BITS <= frac_bits <= frac_bits_for(n_rows):
        raise ProtocolError(f"{who}: {frac_bits} fractional bits do not fit {n_rows} rows "
                            f"(at most {frac_bits_for(n_rows)}, at least {MIN_FRAC_BITS})")
    return frac_bits


def _names_ok(names, peer: str) -> list[str]:
    if not isinstance(names, list) or not 1 <= len(names) <= MAX_FEATURES or \
            not all(isinstance(v, str) and 0 < len(v) <= 256 for v in names) or len(set(names)) != len(names):
        raise ProtocolError(f"{peer} declared its columns in an unexpected form")
    return names


class _PearsonBase(Estimator):
    _fitted_attribute = "blocks_"

    def correlation(self) -> tuple[list[str], np.ndarray]:
        """Party-prefixed column names and the matrix as this party knows it (NaN: not revealed to it)."""
        self._check_fitted()
        parties = [p for p in self.parties_ if p in self.features_]
        names = [f"{p}:{c}" for p in parties for c in self.features_[p]]
        spans, at = {}, 0
        for p in parties:
            spans[p] = slice(at, at + len(self.features_[p]))
            at += len(self.features_[p])
        matrix = np.full((at, at), np.nan)
        for (a, b), block in self.blocks_.items():
            matrix[spans[a], spans[b]] = block
        return names, matrix

    def _save(self, path, role: str) -> None:
        self._check_fitted()
        write_model_file(path, {
            "format": FORMAT, "version": 1, "role": role, "parties": self.parties_, "n_rows": self.n_rows_,
            "features": self.features_,
            "blocks": [{"rows": a, "columns": b, "values": v.tolist()} for (a, b), v in sorted(self.blocks_.items())]})

    @classmethod
    def _load(cls, path, role: str):
        doc = read_model_file(path, format=FORMAT, version=1, role=role)
        model = cls()
        model.parties_, model.n_rows_, model.features_ = doc["parties"], doc["n_rows"], doc["features"]
        model.blocks_ = {(b["rows"], b["columns"]): np.asarray(b["values"], dtype=float) for b in doc["blocks"]}
        return model

    def decision_function(self, X, *, transport, passives):
        raise DataError("a correlation job trains no scoring model: there is nothing to predict")


class ActivePearson(_PearsonBase):
    """The active party's side: it sets the session up and relays between passives."""

    _parameter_constraints = {"frac_bits": Optional(Integer(MIN_FRAC_BITS, MAX_FRAC_BITS)),
                              "key_bits": Integer(1024, 8192), "verbose": Boolean(),
                              "workers": Optional(Integer(1, 1024))}

    def __init__(self, *, frac_bits: int | None = None, key_bits: int = 2048, reveal: dict | None = None,
                 verbose: bool = True, workers: int | None = None):
        self.frac_bits, self.key_bits, self.reveal = frac_bits, key_bits, reveal
        self.verbose, self.workers = verbose, workers

    def fit(self, X, y=None, *, transport, passives: list[str], private_key=None, checkpoint=None):
        self._validate_params()
        me = transport.party
        x = check_features(X, me, allow_nan=False)
        names = [str(c) for c in getattr(X, "columns", range(x.shape[1]))]
        z = standardize(x, names, me)
        parties = [me, *passives]
        try:
            plan = RevealPlan.from_section(self.reveal, parties)
        except ValueError as exc:
            raise DataError(f"{me}: {exc}") from None
        n = len(x)
        frac = self.frac_bits if self.frac_bits is not None else frac_bits_for(n)
        _check_frac_bits(frac, n, me)
        transport.broadcast(PearsonSetup(PROTOCOL_VERSION, parties, n, frac, list(plan.receivers),
                                         list(plan.full_matrix)), passives)
        features = {me: names}
        for p in passives:
            features[p] = _names_ok(transport.recv(p, PearsonReady).features, p)
        counts = {p: len(f) for p, f in features.items()}
        crosses = cross_plan(parties, counts)
        for p in passives:                      # each learns the names of the columns of its blocks
            known = {q: features[q] for q in parties if q == p or any(p in plan.block_receivers(q, r) for r in parties)}
            transport.send(p, PearsonNames(known, counts, [h for h, _ in crosses], [m for _, m in crosses]))
        session = MpcSession(transport, parties, private_key=private_key, key_bits=self.key_bits,
                             min_key_bits=min(2048, self.key_bits), workers=self.workers)
        start = time.perf_counter()
        self.blocks_ = correlate(session, plan, z, frac, counts, crosses, verbose=self.verbose)
        self.seconds_ = time.perf_counter() - start
        self.parties_, self.n_rows_, self.frac_bits_ = parties, n, frac
        self.features_ = {p: f for p, f in features.items() if any(p in k for k in self.blocks_)}
        self.mpc_ = {"cross_products": session.cross_products,
                     "seconds": round(self.seconds_, 3), "frac_bits": frac}
        self._set_feature_names(X)
        return self

    def save(self, path) -> None:
        self._save(path, "active")

    @classmethod
    def load(cls, path):
        return cls._load(path, "active")


class PassivePearson(_PearsonBase):
    """A passive party's side: it checks the setup against its own consent (``reveal_to``)."""

    _parameter_constraints = {"key_bits": Integer(1024, 8192), "allow_insecure_key_size_for_tests": Boolean(),
                              "workers": Optional(Integer(1, 1024))}

    def __init__(self, *, key_bits: int = 2048, allow_insecure_key_size_for_tests: bool = False,
                 reveal_to: list | None = None, job_parties: list | None = None, job_reveal: dict | None = None,
                 workers: int | None = None):
        self.key_bits, self.allow_insecure_key_size_for_tests = key_bits, allow_insecure_key_size_for_tests
        self.reveal_to, self.workers = reveal_to, workers
        # the job this party accepted (its parties, active first, and its [reveal] section): the
        # setup must be that job; None where one user runs every party in one process
        self.job_parties, self.job_reveal = job_parties, job_reveal

    def _check_setup(self, setup: PearsonSetup, me: str, active: str, n: int) -> RevealPlan:
        problems = []
        if setup.version != PROTOCOL_VERSION:
            problems.append(f"protocol version {setup.version}, this party speaks {PROTOCOL_VERSION}")
        if not setup.parties or setup.parties[0] != active or me not in setup.parties \
                or len(setup.parties) > MAX_PARTIES:
            problems.append(f"the session's parties do not start with the active and include this party "
                            f"(at most {MAX_PARTIES})")
        elif self.job_parties is not None and list(setup.parties) != list(self.job_parties):
            problems.append("the session's parties are not the job's that this party accepted")
        if setup.n_rows != n:
            problems.append(f"the job has {setup.n_rows} rows but this party holds {n}")
        if problems:
            raise ProtocolError(f"refusing the correlation job from {active}: " + "; ".join(problems))
        try:
            plan = RevealPlan.from_section({"receivers": setup.receivers, "full_matrix": setup.full_matrix},
                                           setup.parties)
        except ValueError as exc:
            raise ProtocolError(f"{active} sent a reveal plan this party cannot read: {exc}") from None
        if self.job_parties is not None and plan != RevealPlan.from_section(self.job_reveal, self.job_parties):
            raise ProtocolError(f"refusing the correlation job from {active}: its reveal plan is not the one "
                                "of the job this party accepted")
        check_consent(plan, me, self.reveal_to, active)
        _check_frac_bits(setup.frac_bits, n, active)
        return plan

    def fit(self, X, *, transport, active: str, checkpoint=None):
        self._validate_params()
        me = transport.party
        x = check_features(X, me, allow_nan=False)
        names = [str(c) for c in getattr(X, "columns", range(x.shape[1]))]
        setup = transport.recv(active, PearsonSetup)
        plan = self._check_setup(setup, me, active, len(x))
        z = standardize(x, names, me)
        transport.send(active, PearsonReady(names))
        features, counts, crosses = check_names(transport.recv(active, PearsonNames), setup, me, names, active)
        small = self.allow_insecure_key_size_for_tests
        session = MpcSession(transport, list(setup.parties), key_bits=self.key_bits,
                             min_key_bits=1024 if small else 2048, workers=self.workers)
        self.blocks_ = correlate(session, plan, z, setup.frac_bits, counts, crosses)
        self.parties_, self.n_rows_, self.features_ = list(setup.parties), len(x), features
        self._set_feature_names(X)
        return self

    def serve_scores(self, X, *, transport, active: str) -> int:
        raise DataError("a correlation job trains no scoring model: there is nothing to score")

    def save(self, path) -> None:
        self._save(path, "passive")

    @classmethod
    def load(cls, path):
        return cls._load(path, "passive")


def check_names(message: PearsonNames, setup: PearsonSetup, me: str, names: list[str], active: str):
    """The active's names message, checked: column names of session parties only (this party's
    its own), a column count for every party, and a cross plan with every pair once."""
    if len(message.holders) != len(message.multipliers):
        raise ProtocolError(f"{active} sent a plan of cross products in an unexpected form")
    crosses = check_cross_plan(list(zip(message.holders, message.multipliers)), list(setup.parties), active)
    features, counts = message.features, message.counts
    for p, cols in features.items():
        if p not in setup.parties:
            raise ProtocolError(f"{active} sent column names of {p!r}, which is not in the session")
        _names_ok(cols, active)
    if set(counts) != set(setup.parties) or any(isinstance(c, bool) or not isinstance(c, int)
                                                 or not 1 <= c <= MAX_FEATURES for c in counts.values()) \
            or any(counts[p] != len(cols) for p, cols in features.items()):
        raise ProtocolError(f"{active} sent column counts that do not cover the session's parties")
    if features.get(me) != names:
        raise ProtocolError(f"{active} sent back other column names for this party than it declared")
    return features, dict(counts), crosses


def check_consent(plan: RevealPlan, me: str, reveal_to, initiator: str) -> None:
    """Refuse a plan that reveals correlations of this party's columns to a party its config
    does not allow. ``reveal_to``: None — any party of the job; "initiator"; or a list of names."""
    if reveal_to is None:
        return
    allowed = {initiator} if reveal_to == "initiator" else set(reveal_to)
    extra = sorted(plan.learners_of(me) - allowed)
    if extra:
        whom = f"{sorted(allowed)} only" if allowed else "no other party"
        raise ProtocolError(f"{me} allows correlations of its columns to be revealed to {whom}; "
                            f"the job reveals them to {extra}")

