"""Logistic regression on secret shares: the training core (not yet a job family).

The weights and every per-row score stay secret-shared among the parties of a
:class:`vfl.mpc.MpcSession` until the end, when each party receives its own block of weights.
The active (the session's hub) holds the labels and an intercept column of ones.

Steps (Böhning's bound: ``XᵀX/4n + αI`` is at least the logistic loss's curvature everywhere,
so a step ``η·B⁻¹g`` with 0 < η < 2 lowers the loss at every iteration; η = 1.8 by default,
which on default_credit in plaintext comes within 10⁻⁵ of the optimal loss in 10 iterations):

1. Curvature, once: every party scales its standardized columns by ``1/(2√n)``; the Gram matrix
   of all columns comes from one Paillier cross product per pair of parties (each party's own
   block it computes itself) as shares of ``B = XᵀX/4n``; party 0 adds ``αI``.
2. ``V ≈ B⁻¹`` by Newton–Schulz, ``V ← V(2I − BV)`` from ``V₀ = I/t`` with ``t ≥ λ_max(B)`` public
   (standardized columns make ``trace B`` known); every iterate stays below ``B⁻¹``, so steps
   stay damped. Matrix triples from OT.
3. Each iteration: ``z = Σ_p X_p·w_p`` (:meth:`MpcSession.plain_times_shared`, no triple),
   clipped to the sigmoid recipe's interval [−8, 8] (:meth:`MpcSession.clip`: beyond it σ differs
   from 0 or 1 by less than 3.4·10⁻⁴), ``σ(z)`` by a polynomial (:mod:`protocols.mpc.approx`,
   elementwise triples from OT),
   ``d = σ(z) − y`` (the active subtracts its labels), the gradient ``g_p = X_pᵀ·d / n + α·w_p``
   (no penalty on the intercept), then ``w ← w − η·V·g``.
4. Each party's block of ``w`` is revealed to that party only.

What each party learns: its own block of weights at the end, and the public sizes. Every value
in between is shared; openings are Beaver's masked ones. The fixed point is ``frac_bits``
fractional bits; a polynomial sigmoid holds on its interval only (docs/mpc.md).
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from protocols.messages import Message
from protocols.mpc import approx, online
from protocols.mpc.ring import decode, encode, signed
from protocols.mpc.triples import TripleShape
from vfl import handshake
from vfl.errors import ProtocolError
from vfl.estimator import Estimator
from vfl.family import TrainingSummary
from vfl.linear import messages as msg
from vfl.linear.family import LogisticRegressionFamily
from vfl.linear.model import ActiveLogisticRegression, PassiveLinearModel, _ActiveLinear, _features, _Standardizer
from vfl.linear.persist import load_model, save_model
from vfl.mpc import MpcSession
from vfl.progress import progress
from vfl.validation import Boolean, Integer, Interval, Optional, Options, check_labels

GRAM_FRAC_BITS = 20        # the Gram round's fixed point: x/(2√n) ≤ 1/2, products below 2^40
# Newton–Schulz takes 40 matrix triples of T×T×T (T: all columns and the intercept), each 64·T³
# words of OT per ordered pair of parties: at 24 columns and 2 parties 8 s, at 64 about 5 minutes
# (2 parties; 3 parties have 3 times the pairs), growing with T³. Wider tables are refused rather
# than left to run for hours (SGD on shares, which would not need the inverse, is not built).
MAX_SHARED_COLUMNS = 64


@dataclasses.dataclass
class SharedFit:
    coef: np.ndarray             # this party's weights (its own columns)
    intercept: float | None      # the active's, else None
    iterations: int
    triples: dict                # the session's triple budget after the fit
    timing: dict                 # seconds: offline (triples, masks), setup (curvature), online per iteration
    shares: np.ndarray | None = None   # with reveal=False: this party's share of every weight (ring, total × 1)


def iteration_needs(session, n: int, sigmoid: str) -> dict:
    """What one iteration takes from the session's stores (every party computes the same)."""
    compare = session.comparison_triples(n)
    return {"bits": 2 * compare["bits"],                                         # two comparisons in the clip
            "elementwise": 2 * (compare["elementwise"] + 1) + approx.multiplications(sigmoid)}


def layout(parties: list, dims: dict[str, int]) -> tuple[dict, dict]:
    """The shared weight vector's blocks: each party's column count (the hub's with its intercept
    column last) and where its block starts, in session order."""
    cols = {p: dims[p] + (1 if p == parties[0] else 0) for p in parties}
    start = dict(zip(parties, np.cumsum([0] + [cols[p] for p in parties])[:-1].tolist()))
    return cols, start


def fit_shared(session, x: np.ndarray, y: np.ndarray | None, dims: dict[str, int], *, alpha: float,
               iterations: int = 10, frac_bits: int = 12, sigmoid: str = "cheb15",
               curvature_steps: int = 20, step: float = 1.8, ahead: int | None = None,
               reveal: bool = True, verbose: bool = False) -> SharedFit:
    """Train on this party's standardized columns ``x`` (training rows, the same order at every
    party); the active (``session.hub``) passes the labels ``y`` (0/1). ``dims``: every party's
    column count (public). Every party calls this together with the same public arguments.

    Offline and online are apart: every triple, AND triple and masked product the iterations
    will use is made (over OT) before them, ``ahead`` iterations' worth at a time (default: all
    of them at once; under 2 KB per row and iteration at each party), so an iteration itself
    only opens masked values and computes locally; ``timing`` reports the two apart. With
    ``reveal=False`` no weight is revealed: each party keeps its share of all of them (``shares``)
    for :func:`score_shared`."""
    me, parties, hub = session.me, list(session.parties), session.hub
    n = len(x)
    if n <= sum(dims.values()) + 1:
        raise ValueError(f"{n} rows for {sum(dims.values())} columns and an intercept: the weights would "
                         "determine the labels; SS logistic regression needs more rows than columns")
    if not 0 < step < 2:
        raise ValueError(f"step must be in (0, 2), where every step still lowers the loss; got {step}")
    if sum(dims.values()) + 1 > MAX_SHARED_COLUMNS:
        raise ValueError(f"{sum(dims.values())} columns and an intercept: SS logistic regression takes at most "
                         f"{MAX_SHARED_COLUMNS} (its curvature step costs 64·columns³ words of OT per pair of "
                         "parties); train logistic_regression, or select columns first")
    cols, start = layout(parties, dims)                                    # the hub's intercept column last
    total = sum(cols.values())
    mine = np.hstack([x, np.ones((n, 1))]) if me == hub else np.asarray(x, float)
    f = frac_bits
    x_fixed = encode(mine, f)
    x_fixed_t = np.ascontiguousarray(x_fixed.T)
    ahead = iterations if ahead is None else max(1, int(ahead))
    needs = iteration_needs(session, n, sigmoid)
    timing = {"offline": 0.0, "setup": 0.0, "online": []}

    def offline(count: int, first: int, tag: str) -> None:
        clock = time.perf_counter()
        with progress(total=2 * len(parties) + 3, desc=f"SS-LR offline (OT) for iterations {first + 1}–{first + count}",
                      disable=not verbose) as bar:
            for p in parties:
                session.prepare_plain_times(p, tag=f"{tag}/z/{p}", rows=n, inner=cols[p], cols=1, count=count,
                                            x=x_fixed if me == p else None)
                bar.update()
                session.prepare_plain_times(p, tag=f"{tag}/g/{p}", rows=cols[p], inner=n, cols=1, count=count,
                                            x=x_fixed_t if me == p else None)
                bar.update()
            session.ensure_bit_triples(count * needs["bits"], tag=f"{tag}/and")
            bar.update()
            session.ensure_triples(TripleShape("elementwise", n), count * needs["elementwise"], tag=f"{tag}/mul")
            bar.update()
            session.ensure_triples(TripleShape("matrix", total, total, 1), count, tag=f"{tag}/step")
            bar.update()
        timing["offline"] += time.perf_counter() - clock

    clock = time.perf_counter()
    session.ensure_triples(TripleShape("matrix", total, total, total), 2 * curvature_steps, tag="sslr/ns/t")
    timing["offline"] += time.perf_counter() - clock
    clock = time.perf_counter()
    inverse = _newton_schulz(session, _curvature(session, mine, n, cols, start, total, alpha, f), total, alpha, f,
                             curvature_steps)
    inverse = session.scale(inverse, step, tag="sslr/eta", frac_bits=f)
    timing["setup"] = time.perf_counter() - clock
    penalty = np.full(total, alpha)
    penalty[start[hub] + cols[hub] - 1] = 0.0                              # the intercept is not penalized
    w = np.zeros((total, 1), np.uint64)
    labels = encode(np.asarray(y, float), f) if me == hub else None
    made_online = 0
    for it in progress(range(iterations), desc="SS-LR iterations", disable=not verbose):
        if it % ahead == 0:
            offline(min(ahead, iterations - it), it, f"sslr/offline/{it}")
        tag, clock, ot_before = f"sslr/{it}", time.perf_counter(), session.ot_multiplications
        z = np.zeros((n, 1), np.uint64)
        for p in parties:
            block = w[start[p]:start[p] + cols[p]]
            z = z + session.plain_times_shared(p, block, tag=f"{tag}/z/{p}", rows=n,
                                               x=x_fixed if me == p else None)
        z = session.truncate(z, f, tag=f"{tag}/z")
        z = session.clip(z[:, 0], -approx.CHEB_RANGE, approx.CHEB_RANGE, tag=f"{tag}/clip", frac_bits=f)
        s = session.sigmoid(z, sigmoid, tag=f"{tag}/sigma", frac_bits=f)
        d = s - labels if me == hub else s
        grads = []
        for p in parties:
            g = session.plain_times_shared(p, d[:, None], tag=f"{tag}/g/{p}", rows=cols[p],
                                           x=x_fixed_t if me == p else None)
            grads.append(_divide(session, session.truncate(g, f, tag=f"{tag}/g/{p}"), n, f, tag=f"{tag}/n/{p}"))
        g = np.vstack(grads) + _times_public(session, w, penalty, tag=f"{tag}/pen")
        move = session.truncate(session.multiply(inverse, g, tag=f"{tag}/step", matrix=True), f, tag=f"{tag}/s")
        w = w - move
        timing["online"].append(time.perf_counter() - clock)
        made_online += session.ot_multiplications - ot_before
    timing["online_ot_multiplications"] = made_online          # 0: everything over OT was made offline
    if not reveal:
        return SharedFit(None, None, iterations, session.triples.budget(), timing, shares=w)
    own = None
    for p in parties:
        got = session.reveal(w[start[p]:start[p] + cols[p]], [p], tag=f"sslr/w/{p}")
        if got is not None:
            own = decode(got, f)[:, 0]
    coef, intercept = (own[:-1], float(own[-1])) if me == hub else (own, None)
    return SharedFit(coef, intercept, iterations, session.triples.budget(), timing)


def score_shared(session, x: np.ndarray, shares: np.ndarray, dims: dict[str, int], frac_bits: int, *,
                 tag: str = "score") -> np.ndarray | None:
    """Scores of a model kept shared: ``z = Σ_p X_p·w_p + b`` with every weight in shares
    (``shares``: this party's, from ``fit_shared(reveal=False)``), revealed to the hub (the
    active) alone; the others get None. ``x``: this party's standardized rows (the same rows, in
    the same order, at every party). Each party's product is a masked product made now over OT
    (:meth:`MpcSession.plain_times_shared`): prediction needs the OT work that training did ahead."""
    me, parties, hub = session.me, list(session.parties), session.hub
    cols, start = layout(parties, dims)
    n = len(x)
    mine = np.hstack([x, np.ones((n, 1))]) if me == hub else np.asarray(x, float)
    z = np.zeros((n, 1), np.uint64)
    for p in parties:
        z = z + session.plain_times_shared(p, shares[start[p]:start[p] + cols[p]], tag=f"{tag}/{p}", rows=n,
                                           x=encode(mine, frac_bits) if me == p else None)
    got = session.reveal(session.truncate(z, frac_bits, tag=f"{tag}/z"), [hub], tag=f"{tag}/reveal")
    return None if got is None else decode(got, frac_bits)[:, 0]


def _curvature(session, mine: np.ndarray, n: int, cols: dict, start: dict, total: int, alpha: float,
               f: int) -> np.ndarray:
    """Shares of B = XᵀX/4n + αI at ``f`` fractional bits (step 1)."""
    from vfl.pearson.model import cross_plan
    me, parties = session.me, list(session.parties)
    fg = GRAM_FRAC_BITS
    bits = fg + 2
    offset = 1 << (bits - 1)
    scaled = mine / (2.0 * np.sqrt(n))
    fixed = (signed(encode(scaled, fg)) + offset).astype(np.uint64)
    gram = np.zeros((total, total), np.uint64)
    for holder, multipliers in cross_plan(parties, cols):
        got = session.cross(holder, multipliers, tag=f"sslr/gram/{holder}", x=fixed if me == holder else None,
                            y=fixed.T if me in multipliers else None, scalar_bits=bits, scalar_offset=offset,
                            value_bits=bits, value_offset=offset, rows=n, cols=cols[holder],
                            outputs={m: cols[m] for m in multipliers})
        pieces = got.items() if me == holder else ([(me, got)] if me in multipliers else [])
        for m, share in pieces:                                   # share of X_mᵀ·X_holder
            rows_m = slice(start[m], start[m] + cols[m])
            cols_h = slice(start[holder], start[holder] + cols[holder])
            gram[rows_m, cols_h] += share
            gram[cols_h, rows_m] += share.T
    # Truncate only what is shared at random: a party's own block, added as its share, would make
    # the local truncation wrong (it assumes uniform shares); it is encoded at f bits instead.
    b = session.truncate(gram, 2 * fg - f, tag="sslr/gram")
    block = slice(start[me], start[me] + cols[me])
    b[block, block] += encode(scaled.T @ scaled, f)
    return online.add_public(b, encode(alpha * np.eye(total), f), session.index)


def _newton_schulz(session, b: np.ndarray, total: int, alpha: float, f: int, steps: int) -> np.ndarray:
    """Shares of V ≈ B⁻¹ (step 2)."""
    top = total * (0.25 + alpha)                                  # ≥ trace B ≥ λ_max(B): standardized columns
    v = online.add_public(np.zeros((total, total), np.uint64), encode(np.eye(total) / top, f), session.index)
    two = encode(2.0 * np.eye(total), f)
    for k in range(steps):
        session.ensure_triples(TripleShape("matrix", total, total, total), 2, tag=f"sslr/ns/{k}/t")
        bv = session.truncate(session.multiply(b, v, tag=f"sslr/ns/{k}/bv", matrix=True), f, tag=f"sslr/ns/{k}/a")
        q = online.add_public(np.uint64(0) - bv, two, session.index)
        v = session.truncate(session.multiply(v, q, tag=f"sslr/ns/{k}/vq", matrix=True), f, tag=f"sslr/ns/{k}/b")
    return v


def _divide(session, x: np.ndarray, n: int, f: int, *, tag: str) -> np.ndarray:
    """Shares of ``x / n`` for a public integer n: times ``round(2^k/n)``, truncated by k."""
    k = int(n).bit_length() + 12
    return session.truncate(online.mul_public(x, np.uint64(round(2 ** k / n))), k, tag=tag)


def _times_public(session, x: np.ndarray, values: np.ndarray, *, tag: str, bits: int = 24) -> np.ndarray:
    """Shares of ``x · values`` (public reals, one per row of x) at x's scale."""
    scale = encode(np.asarray(values, float)[:, None], bits)
    return session.truncate(online.mul_public(x, scale), bits, tag=tag)


# ------------------------------------------------------------------------------------- the family

@dataclasses.dataclass(frozen=True)
class SsSetup(Message):
    """Active → passive: the shared training every party must agree to before any cryptography."""
    KIND = "sslr.setup"
    parties: list                   # session order; the active (hub) first
    n_rows: int
    iterations: int
    alpha: float
    frac_bits: int
    sigmoid: str
    shared_model: bool = False      # no weight revealed: every party keeps its shares for scoring


@dataclasses.dataclass(frozen=True)
class SsColumns(Message):
    """Active → passive: every party's column count (public; the shared weights' layout)."""
    KIND = "sslr.columns"
    dims: dict


class _SharedModel:
    """What a party keeps of a model kept shared (``shared_model = true``): its share of every
    weight, the session's parties and their column counts, saved in its model file (a share alone
    is uniform: it says nothing of the weights)."""

    def _keep_shares(self, fit: SharedFit, parties: list, dims: dict, frac_bits: int) -> None:
        self.weight_shares_, self.parties_ = fit.shares, list(parties)
        self.dims_, self.frac_bits_ = dict(dims), frac_bits

    @property
    def shared(self) -> bool:
        return getattr(self, "weight_shares_", None) is not None

    def _save_shared(self, path, role: str, task: str) -> None:
        save_model(path, role=role, task=task, params=self.get_params(),
                   arrays={"mean": self.mean_, "scale": self.scale_},
                   scalars={"n_epochs": self.n_epochs_, "feature_names": getattr(self, "feature_names_in_", None),
                            "weight_shares": signed(self.weight_shares_[:, 0]).tolist(), "parties": self.parties_,
                            "dims": self.dims_, "frac_bits": self.frac_bits_})

    @classmethod
    def _load_shared(cls, data: dict):
        """A model kept shared from its file's contents (``data``, as ``load_model`` read them)."""
        scalars = data["scalars"]
        model = cls(**data["params"])
        model.mean_, model.scale_ = (np.asarray(data["arrays"][k], float) for k in ("mean", "scale"))
        model.n_epochs_, model.n_features_in_ = scalars["n_epochs"], len(model.mean_)
        model.weight_shares_ = np.asarray(scalars["weight_shares"], dtype=np.int64).astype(np.uint64)[:, None]
        model.parties_, model.frac_bits_ = list(scalars["parties"]), int(scalars["frac_bits"])
        model.dims_ = {k: int(v) for k, v in scalars["dims"].items()}
        if scalars.get("feature_names"):
            model.feature_names_in_ = list(scalars["feature_names"])
        return model

    def _score_shared(self, x: np.ndarray, transport, workers) -> np.ndarray | None:
        session = MpcSession(transport, self.parties_, workers=workers)
        return score_shared(session, x, self.weight_shares_, self.dims_, self.frac_bits_)


class ActiveSsLogisticRegression(_SharedModel, Estimator):
    """The label party of SS logistic regression (``model = "ss_logistic_regression"``): trains
    with :func:`fit_shared`. By default each party receives its own weights and the fitted model
    is a linear model like hetero LR's: scoring, ``vfl predict`` and model files are that
    family's (each passive sends its partial scores). With ``shared_model`` no weight is revealed
    to anyone: every party keeps its shares, and scoring runs on them (:func:`score_shared`),
    the active learning only the final scores."""

    _task = "logistic"
    _fitted_attribute = "mean_"
    _scale = _ActiveLinear._scale
    predict_proba = ActiveLogisticRegression.predict_proba
    predict = ActiveLogisticRegression.predict

    _parameter_constraints = {
        "iterations": Integer(1, 200), "alpha": Interval(0), "frac_bits": Integer(8, 16),
        "sigmoid": Options(tuple(k for k in approx.SIGMOIDS if k.startswith("cheb"))), "key_bits": Integer(1024, 8192),
        "shared_model": Boolean(), "verbose": Boolean(), "workers": Optional(Integer(1)),
    }

    def __init__(self, *, iterations: int = 10, alpha: float = 1e-4, frac_bits: int = 12, sigmoid: str = "cheb15",
                 key_bits: int = 2048, shared_model: bool = False, verbose: bool = True, workers: int | None = None):
        # Every party standardizes its columns (population scale): the public bound on the
        # curvature's largest eigenvalue (step 2 of fit_shared) rests on it.
        self.iterations, self.alpha, self.frac_bits, self.sigmoid = iterations, alpha, frac_bits, sigmoid
        self.key_bits, self.shared_model, self.verbose, self.workers = key_bits, shared_model, verbose, workers

    def decision_function(self, X, *, transport, passives: list[str]) -> np.ndarray:
        if not self.shared:
            return _ActiveLinear.decision_function(self, X, transport=transport, passives=passives)
        self._check_fitted()
        x = _features(self._columns_for(X, getattr(transport, "party", "active")), transport, self.n_features_in_)
        if sorted(passives) != sorted(self.parties_[1:]):
            raise ValueError(f"this model is shared among {self.parties_}: every one of them scores, "
                             f"not {[transport.party, *passives]}")
        with transport.in_phase("predict"):
            transport.broadcast(msg.ScoreRequest(n_rows=len(x)), passives)
            return self._score_shared(self._scale(x), transport, self.workers)

    def save(self, path) -> None:
        self._check_fitted()
        if not self.shared:
            return _ActiveLinear.save(self, path)
        self._save_shared(path, "active", self._task)

    @classmethod
    def load(cls, path):
        data = load_model(path, role="active", task=cls._task)
        if data["scalars"].get("weight_shares") is None:
            return _ActiveLinear.__dict__["load"].__func__(cls, path)
        return cls._load_shared(data)

    def fit(self, X, y, *, transport, passives: list[str], private_key=None, checkpoint=None):
        self._validate_params()
        x = _features(X, transport)
        labels = check_labels(y, len(x), getattr(transport, "party", "active"), "binary")
        self.mean_, self.scale_ = _Standardizer.fit(x)
        parties = [transport.party, *passives]
        with transport.in_phase("train"):
            transport.broadcast(SsSetup(parties, len(x), self.iterations, float(self.alpha), self.frac_bits,
                                        self.sigmoid, bool(self.shared_model)), passives)
            dims = {transport.party: x.shape[1]}
            dims.update({p: handshake.check_ready(transport.recv(p, handshake.Ready), p) for p in passives})
            transport.broadcast(SsColumns(dims), passives)
            session = MpcSession(transport, parties, private_key=private_key, key_bits=self.key_bits,
                                 min_key_bits=min(2048, self.key_bits), workers=self.workers)
            start = time.perf_counter()
            fit = fit_shared(session, self._scale(x), labels.astype(float), dims, alpha=self.alpha,
                             iterations=self.iterations, frac_bits=self.frac_bits, sigmoid=self.sigmoid,
                             reveal=not self.shared_model, verbose=self.verbose)
        if self.shared_model:
            self._keep_shares(fit, parties, dims, self.frac_bits)
        else:
            self.coef_, self.intercept_ = fit.coef, float(fit.intercept)
        self.n_epochs_, self.n_features_in_ = self.iterations, x.shape[1]
        online = fit.timing["online"]
        self.mpc_ = {"seconds": round(time.perf_counter() - start, 3), "iterations": self.iterations,
                     "offline_seconds": round(fit.timing["offline"], 3), "setup_seconds": round(fit.timing["setup"], 3),
                     "online_seconds": round(sum(online), 3),
                     "online_seconds_per_iteration": round(sum(online) / len(online), 3),
                     "online_ot_multiplications": fit.timing["online_ot_multiplications"],
                     "triples": fit.triples, "ot_multiplications": session.ot_multiplications,
                     "bit_triples": session.bit_triples_made, "cross_products": session.cross_products}
        self._set_feature_names(X)
        return self


class PassiveSsLogisticRegression(_SharedModel, Estimator):
    """A feature party of SS logistic regression: its weights arrive at the end of the shared
    training, and it scores its own rows for prediction as hetero LR's passive does; or, with a
    model kept shared, it keeps its shares and scores on them with the other parties."""

    _fitted_attribute = "mean_"
    _requested_rows = PassiveLinearModel._requested_rows

    def serve_scores(self, X, *, transport, active: str) -> int:
        if not self.shared:
            return PassiveLinearModel.serve_scores(self, X, transport=transport, active=active)
        self._check_fitted()
        x = _features(self._columns_for(X, getattr(transport, "party", "passive")), transport, self.n_features_in_)
        with transport.in_phase("predict"):
            self._score_shared(self._requested_rows(x, transport, active), transport, self.workers)
        return len(x)

    def save(self, path) -> None:
        self._check_fitted()
        if not self.shared:
            return PassiveLinearModel.save(self, path)
        self._save_shared(path, "passive", self.task_)

    @classmethod
    def load(cls, path):
        data = load_model(path, role="passive", task=None)
        if data["scalars"].get("weight_shares") is None:
            return PassiveLinearModel.__dict__["load"].__func__(cls, path)
        model = cls._load_shared(data)
        model.task_ = data["task"]
        return model

    _parameter_constraints = {"max_iterations": Integer(1), "key_bits": Integer(1024, 8192),
                              "allow_insecure_key_size_for_tests": Boolean(), "workers": Optional(Integer(1))}

    def __init__(self, *, max_iterations: int = 100, key_bits: int = 2048,
                 allow_insecure_key_size_for_tests: bool = False, workers: int | None = None):
        self.max_iterations, self.key_bits = max_iterations, key_bits
        self.allow_insecure_key_size_for_tests, self.workers = allow_insecure_key_size_for_tests, workers

    def fit(self, X, *, transport, active: str, checkpoint=None):
        self._validate_params()
        x = _features(X, transport)
        me = getattr(transport, "party", "passive")
        with transport.in_phase("train"):
            setup = transport.recv(active, SsSetup)
            problems = []
            if not isinstance(setup.parties, list) or setup.parties[:1] != [active] or me not in setup.parties \
                    or len(set(setup.parties)) != len(setup.parties):
                problems.append(f"the parties {setup.parties!r} are not a list starting with {active} and naming "
                                f"this party once")
            if setup.n_rows != len(x):
                problems.append(f"{setup.n_rows} rows, but this party holds {len(x)}")
            if not isinstance(setup.iterations, int) or not 1 <= setup.iterations <= self.max_iterations:
                problems.append(f"{setup.iterations!r} iterations (this party serves at most {self.max_iterations})")
            if setup.sigmoid not in approx.SIGMOIDS or not isinstance(setup.frac_bits, int) \
                    or not 8 <= setup.frac_bits <= 16:
                problems.append("an unknown sigmoid recipe or fixed point")
            if not isinstance(setup.shared_model, bool):
                problems.append(f"shared_model {setup.shared_model!r} is not true or false")
            handshake.refuse(problems, "SS logistic regression", active)
            self.mean_, self.scale_ = _Standardizer.fit(x)
            transport.send(active, handshake.Ready(n_features=x.shape[1]))
            dims = transport.recv(active, SsColumns).dims
            if not isinstance(dims, dict) or set(dims) != set(setup.parties) or dims.get(me) != x.shape[1] \
                    or not all(isinstance(v, int) and 1 <= v <= handshake.MAX_FEATURES for v in dims.values()):
                raise ProtocolError(f"{active} sent column counts {dims!r} that do not fit the setup")
            small = self.allow_insecure_key_size_for_tests
            session = MpcSession(transport, list(setup.parties), key_bits=self.key_bits,
                                 min_key_bits=1024 if small else 2048, workers=self.workers)
            fit = fit_shared(session, (x - self.mean_) / self.scale_, None, dims, alpha=setup.alpha,
                             iterations=setup.iterations, frac_bits=setup.frac_bits, sigmoid=setup.sigmoid,
                             reveal=not setup.shared_model)
        if setup.shared_model:
            self._keep_shares(fit, setup.parties, dims, setup.frac_bits)
        else:
            self.coef_, self.row_clip_ = fit.coef, None
        self.task_, self.n_features_in_, self.n_epochs_ = "logistic", x.shape[1], fit.iterations
        self._set_feature_names(X)
        return self


class SsLogisticRegressionFamily(LogisticRegressionFamily):
    name = "ss_logistic_regression"
    label_privacy = False
    feature_privacy = False
    checkpoints = False
    active_estimator = ActiveSsLogisticRegression
    passive_estimator = PassiveSsLogisticRegression
    passive_cap = "max_iterations"
    rounds_param = "iterations"

    def summary(self, model) -> TrainingSummary:
        return TrainingSummary(None, {"solver": "shared Böhning steps", "iterations": model.n_epochs_,
                                      "mpc": model.mpc_})

    def _penalty(self, params: dict, n_rows: int) -> tuple[str, float]:
        h = {**self.hyperparameters(), **params}
        return "l2", float(h["alpha"]) * n_rows


FAMILIES = (SsLogisticRegressionFamily(),)
