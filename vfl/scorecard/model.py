"""The scorecard pipeline: binning → selection → logistic regression on WOE → points.

1. Setup. Active → passives: the parties, the rows, the points scaling (PDO, base score, base
   odds), how many reason codes a prediction returns, whether selection correlates features.
   Each passive answers with the fewest of its features it lets a scorecard use (its
   ``[data.policies] min_features``) and whether it names its features in reason codes.
2. Binning (:mod:`vfl.binning.model`), with the passives' WOE shared: a passive needs the WOE of
   its bins to turn its columns into WOE values (so it learns each of its bins' default rate).
3. msg.Selection, at the active, which knows every feature's IV: IV ≥ ``min_iv``, more than one bin,
   the ``top_k`` best. With ``max_correlation``, the candidates' WOE columns are correlated on
   secret shares (:func:`vfl.pearson.model.correlate`, revealed to the active only) and of each
   pair above it the lower-IV feature is dropped. A passive left with fewer features than its
   minimum is left out whole (noted in the report). Each passive is told which of its columns stay.
4. Logistic regression on the kept features' WOE values (:mod:`vfl.linear`, L-BFGS by default),
   each party standardizing its own WOE columns.
5. Points. Each party turns its own coefficients into points per bin of its own features
   (:mod:`vfl.scorecard.card`) and keeps its table; the active holds the base points. A passive
   sends the most points its features can give, and its kept features' names if it shares reasons.
6. Scoring (the training rows at the end of fit, then held-out rows and ``vfl predict``): each
   passive sends its points per row — and, if it shares reasons, per row the features that cost
   it most points — and the active adds them to its own and the base points.

What each party learns beyond binning, the correlation and the regression (their own pages):
the active — each passive's points per scored row (with one kept feature, that is the row's
bin: hence the passive's minimum), its maximum points, and where shared the names of its
kept features and each row's costliest ones; a passive — which of its columns were kept.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from protocols.paillier import generate_keypair
from vfl.binning.bins import ColumnBins, column_values
from vfl.binning.family import bin_figures
from vfl.binning.model import ActiveBinning, PassiveBinning, check_table, woe_matrix
from vfl.errors import DataError, ProtocolError
from vfl.estimator import Estimator
from vfl.linear.model import ActiveLogisticRegression, PassiveLinearModel
from vfl.model_files import read_model_file, write_model_file
from vfl.mpc import MpcSession
from vfl.pearson.model import check_consent, check_cross_plan, correlate, cross_plan, frac_bits_for, standardize
from vfl.pearson.plan import RevealPlan
from vfl.scorecard import card, steps
from vfl.scorecard import messages as msg
from vfl.validation import Boolean, Integer, Optional, check_labels

FORMAT = "vfl-scorecard"
MAX_PARTIES = 64


def correlation_plan(parties: list[str]) -> RevealPlan:
    """msg.Selection by correlation reveals every block of the candidates' correlations to the active only."""
    return RevealPlan(tuple(parties), (parties[0],), (parties[0],))


def _positions(columns, n: int, peer: str, what: str) -> list[int]:
    cols = np.asarray(columns)
    if cols.ndim != 1 or (len(cols) and (cols.dtype.kind not in "iu" or cols.min() < 0 or cols.max() >= n)) \
            or len(np.unique(cols)) != len(cols):
        raise ProtocolError(f"{peer} sent {what} that are not distinct positions of this party's {n} columns")
    return sorted(int(c) for c in cols)


class _Card(Estimator):
    """What both roles hold: their kept features' bins, WOE and points."""

    _fitted_attribute = "points_"

    def _index(self, frame: pd.DataFrame) -> np.ndarray:
        """Every row's bin of each kept feature (rows × features)."""
        return np.column_stack([self.bins_[n].assign(column_values(frame[n], self.bins_[n])) for n in self.names_]) \
            if self.names_ else np.zeros((len(frame), 0), np.int64)

    def table(self) -> list[dict]:
        """This party's points table: a row per bin of each kept feature."""
        self._check_fitted()
        rows = []
        for name, points in zip(self.names_, self.points_):
            for b, (label, w, p) in enumerate(zip(self.bins_[name].describe(), self.woe_[name], points)):
                rows.append({"feature": name, "bin": b, "values": label, "woe": round(float(w), 6),
                             "points": round(float(p), 4)})
        return rows

    def _card_doc(self, role: str) -> dict:
        return {"format": FORMAT, "version": 1, "role": role, "names": self.names_,
                "bins": {n: self.bins_[n].to_doc() for n in self.names_},
                "woe": {n: self.woe_[n].tolist() for n in self.names_}, "points": [p.tolist() for p in self.points_],
                "reason_codes": self.reason_codes_, "table": self.table()}

    @classmethod
    def _load_card(cls, path, role: str, params=None):
        doc = read_model_file(path, format=FORMAT, version=1, role=role)
        model = cls(**params(doc)) if params else cls()
        model.names_ = list(doc["names"])
        model.bins_ = {n: ColumnBins.from_doc(doc["bins"][n]) for n in model.names_}
        model.woe_ = {n: np.asarray(doc["woe"][n], float) for n in model.names_}
        model.points_ = [np.asarray(p, float) for p in doc["points"]]
        model.reason_codes_ = int(doc["reason_codes"])
        return model, doc


class ActiveScorecard(_Card):
    """The label party's side of a scorecard job (:mod:`vfl.scorecard.model`)."""

    _parameter_constraints = {"key_bits": Integer(1024, 8192), "verbose": Boolean(),
                              "workers": Optional(Integer(1, 1024))}

    def __init__(self, *, key_bits: int = 2048, binning: dict | None = None, selection: dict | None = None,
                 regression: dict | None = None, points: dict | None = None, verbose: bool = True,
                 workers: int | None = None):
        self.key_bits, self.binning, self.selection, self.regression, self.points = \
            key_bits, binning, selection, regression, points
        self.verbose, self.workers = verbose, workers

    def _check_params(self) -> None:
        steps.all_settings({k: getattr(self, k) for k in steps.STEPS})

    def fit(self, X, y, *, transport, passives: list[str], private_key=None, checkpoint=None):
        self._validate_params()
        me = transport.party
        cfg = steps.all_settings({k: getattr(self, k) for k in steps.STEPS})
        frame = check_table(X, me)
        labels = check_labels(y, len(frame), me, "binary").astype(np.int64)
        parties, pts, sel = [me, *passives], cfg["points"], cfg["selection"]
        transport.broadcast(msg.ScorecardSetup(msg.PROTOCOL_VERSION, parties, len(frame), float(pts["pdo"]),
                                           float(pts["base_score"]), float(pts["base_odds"]), int(pts["reason_codes"]),
                                           sel["max_correlation"] is not None), passives)
        ready = {p: transport.recv(p, msg.ScorecardReady) for p in passives}
        for p, r in ready.items():
            if isinstance(r.min_features, bool) or not isinstance(r.min_features, int) or r.min_features < 1:
                raise ProtocolError(f"{p} declared a minimum of {r.min_features!r} features")
        if private_key is None:
            _, private_key = generate_keypair(self.key_bits)
        binned = ActiveBinning(**cfg["binning"], share_woe=True, key_bits=self.key_bits, verbose=False,
                               workers=self.workers).fit(frame, labels, transport=transport, passives=passives,
                                                         private_key=private_key)
        self.binning_ = {"iv": [{"feature": k, "iv": round(v, 6), "bins": len(binned.counts_[k])}
                                for k, v in binned.iv_table()],
                         "bins": bin_figures(binned)}
        kept = self._select(binned, frame, cfg, parties, ready, transport, private_key)
        own = [name for name, key in zip(binned.bins_, binned.columns_[me]) if key in kept[me]]
        if not own:
            raise DataError(f"{me}: selection kept none of the active's own features (IV ≥ {sel['min_iv']}, "
                            "correlation); lower min_iv or max_correlation")
        woe = {name: binned.woe_[f"{me}:{name}"] for name in own}
        lr_passives = [p for p in passives if kept[p]]
        regression = ActiveLogisticRegression(**cfg["regression"], key_bits=self.key_bits, verbose=self.verbose)
        regression.fit(pd.DataFrame(woe_matrix(frame, binned.bins_, woe, own), columns=own), labels,
                       transport=transport, passives=lr_passives, private_key=private_key)
        self.factor_, self.offset_ = card.scaling(pts["pdo"], pts["base_score"], pts["base_odds"])
        self.names_, self.bins_ = own, {n: binned.bins_[n] for n in own}
        self.woe_ = woe
        self.points_ = card.feature_points(regression.coef_, regression.mean_, regression.scale_,
                                           [woe[n] for n in own], self.factor_)
        self.base_points_ = float(self.offset_ - self.factor_ * regression.intercept_)
        self.reason_codes_ = int(pts["reason_codes"])
        self.cards_ = {}
        for p in passives:
            c = transport.recv(p, msg.PassiveCard)
            if not np.isfinite(c.max_points) or (c.names and len(c.names) != len(kept[p])) \
                    or not all(isinstance(v, str) and 0 < len(v) <= 256 for v in c.names):
                raise ProtocolError(f"{p} sent its scorecard summary in an unexpected form")
            self.cards_[p] = {"max_points": float(c.max_points), "names": list(c.names), "features": len(kept[p])}
        self.regression_ = {"solver": regression.solver, "protocol": regression.protocol,
                            "iterations": regression.n_epochs_, "loss_curve": regression.loss_curve_,
                            "coef": dict(zip(own, regression.coef_.tolist())), "intercept": regression.intercept_}
        self.feature_names_in_ = own
        train_scores = self._score(frame[own], transport, passives)
        self.score_bands_ = card.score_bands(train_scores)
        self.train_shares_ = card.band_shares(train_scores, self.score_bands_)
        return self

    # -- selection ------------------------------------------------------------------------------
    def _select(self, binned, frame, cfg, parties, ready, transport, private_key) -> dict[str, list[str]]:
        """Which features stay, per party (keys ``party:name``), after telling each passive."""
        me, sel = parties[0], cfg["selection"]
        n_bins = {k: len(v) for k, v in binned.counts_.items()}
        keys = card.select_by_iv(binned.iv_, n_bins, sel["min_iv"], sel["top_k"])
        self.selection_ = {"by_iv": list(keys), "dropped_correlated": [], "left_out": []}
        if not any(k in keys for k in binned.columns_[me]):
            raise DataError(f"{me}: none of the active's own features has IV ≥ {sel['min_iv']} with more than one "
                            "bin; lower [selection] min_iv")
        if sel["max_correlation"] is not None:
            keys = self._decorrelate(keys, binned, frame, parties, sel["max_correlation"], transport, private_key)
        kept = {p: [k for k in binned.columns_[p] if k in keys] for p in parties}
        for p in parties[1:]:
            if 0 < len(kept[p]) < ready[p].min_features:
                self.selection_["left_out"].append(f"{p}: {len(kept[p])} feature(s) selected, fewer than the "
                                                   f"{ready[p].min_features} its policy requires; left out")
                kept[p] = []
            transport.send(p, msg.Selection(np.asarray([binned.columns_[p].index(k) for k in kept[p]], np.int64)))
        self.selection_["kept"] = [k for k in keys if any(k in v for v in kept.values())]
        return kept

    def _decorrelate(self, keys, binned, frame, parties, max_corr, transport, private_key) -> list[str]:
        me, n = parties[0], len(frame)
        cand = {p: [k for k in binned.columns_[p] if k in keys] for p in parties}
        session_parties = [p for p in parties if cand[p]]
        counts = {p: len(cand[p]) for p in session_parties}
        crosses, frac = cross_plan(session_parties, counts), frac_bits_for(n)
        for p in parties[1:]:
            transport.send(p, msg.Candidates(np.asarray([binned.columns_[p].index(k) for k in cand[p]], np.int64), frac,
                                         counts, [h for h, _ in crosses], [m for _, m in crosses]))
        names = [k.split(":", 1)[1] for k in cand[me]]
        z = standardize(woe_matrix(frame, binned.bins_, {nm: binned.woe_[k] for nm, k in zip(names, cand[me])}, names),
                        names, me)
        session = MpcSession(transport, session_parties, private_key=private_key, key_bits=self.key_bits,
                             min_key_bits=min(2048, self.key_bits), workers=self.workers)
        blocks = correlate(session, correlation_plan(session_parties), z, frac, counts, crosses)
        where = {k: (p, i) for p in session_parties for i, k in enumerate(cand[p])}
        corr = np.eye(len(keys))
        for a, ka in enumerate(keys):
            for b, kb in enumerate(keys):
                (pa, ia), (pb, ib) = where[ka], where[kb]
                corr[a, b] = blocks[(pa, pb)][ia, ib]
        kept, dropped = card.drop_correlated(keys, corr, binned.iv_, max_corr)
        self.selection_["dropped_correlated"] = dropped
        return kept

    # -- scoring --------------------------------------------------------------------------------
    def _score(self, frame: pd.DataFrame, transport, passives: list[str]) -> np.ndarray:
        """Every row's score (base + every party's points); the reason codes in ``reasons_``."""
        n, r = len(frame), self.reason_codes_
        transport.broadcast(msg.PointsRequest(n, r), passives)
        index = self._index(frame)
        total = self.base_points_ + card.row_points(index, self.points_).sum(axis=1)
        lost = [card.lost_points(index, self.points_)]
        names = [np.broadcast_to(np.array(self.names_, object), (n, len(self.names_)))]
        for p in passives:
            m = transport.recv(p, msg.PartialPoints)
            shared = self.cards_[p]["names"]
            width = r if shared else 0
            if m.points.shape != (n,) or not np.all(np.isfinite(m.points)) or m.reason_features.shape != (n, width) \
                    or m.reason_points.shape != (n, width):
                raise ProtocolError(f"{p} returned points in an unexpected shape for {n} rows: are the tables aligned?")
            total = total + m.points
            if shared:
                idx, pts = np.asarray(m.reason_features), np.asarray(m.reason_points)
                if idx.dtype.kind not in "iu" or np.any((idx < -1) | (idx >= len(shared))) \
                        or pts.dtype.kind != "f" or not np.all(np.isfinite(pts)) or np.any(pts < 0):
                    raise ProtocolError(f"{p} named reason codes outside its features")
                label = np.array([f"{p}:{s}" for s in shared] + [""], dtype=object)
                lost.append(np.where(idx >= 0, m.reason_points, 0.0))
                names.append(label[idx])
            elif self.cards_[p]["features"]:
                lost.append((self.cards_[p]["max_points"] - m.points)[:, None])
                names.append(np.full((n, 1), f"{p} (its features)", dtype=object))
        values, labels = np.concatenate(lost, axis=1), np.concatenate(names, axis=1)
        order, got = card.top_reasons(values, r)
        self.reasons_ = np.where(order >= 0, np.take_along_axis(labels, np.maximum(order, 0), axis=1), "")
        self.reason_points_ = got
        return total

    def decision_function(self, X, *, transport, passives: list[str]) -> np.ndarray:
        """Log-odds of an event, ``(offset − score) / factor`` (the score itself: :meth:`score`)."""
        return (self.offset_ - self.score(X, transport=transport, passives=passives)) / self.factor_

    def score(self, X, *, transport, passives: list[str]) -> np.ndarray:
        self._check_fitted()
        me = getattr(transport, "party", "active")
        frame = check_table(self._columns_for(X, me), me)
        with transport.in_phase("predict"):
            return self._score(frame, transport, passives)

    def save(self, path) -> None:
        self._check_fitted()
        write_model_file(path, {**self._card_doc("active"), "base_points": self.base_points_, "factor": self.factor_,
                                "offset": self.offset_, "cards": self.cards_, "score_bands": self.score_bands_.tolist(),
                                "train_shares": self.train_shares_.tolist(), "binning": self.binning_,
                                "selection": self.selection_, "regression": self.regression_})

    @classmethod
    def load(cls, path):
        model, doc = cls._load_card(path, "active")
        model.feature_names_in_ = list(model.names_)
        model.base_points_, model.factor_, model.offset_ = doc["base_points"], doc["factor"], doc["offset"]
        model.cards_ = doc["cards"]
        model.score_bands_, model.train_shares_ = np.asarray(doc["score_bands"]), np.asarray(doc["train_shares"])
        model.binning_, model.selection_, model.regression_ = doc["binning"], doc["selection"], doc["regression"]
        return model


class PassiveScorecard(_Card):
    """A feature party's side of a scorecard job. ``min_features``: the fewest of its features
    a scorecard may keep (0 kept is fine: it then scores nothing); ``share_reasons``: name its
    features, and each row's costliest ones, in reason codes."""

    _parameter_constraints = {"max_rounds": Integer(1), "min_features": Integer(1), "share_reasons": Boolean(),
                              "max_bins": Integer(2, 1000), "key_bits": Integer(1024, 8192),
                              "allow_insecure_key_size_for_tests": Boolean(), "workers": Optional(Integer(1, 1024))}

    def __init__(self, *, max_rounds: int = 200, min_features: int = 1, share_reasons: bool = False,
                 max_bins: int = 100, key_bits: int = 2048, allow_insecure_key_size_for_tests: bool = False,
                 reveal_to=None, job_parties: list | None = None, workers: int | None = None):
        self.max_rounds, self.min_features, self.share_reasons = max_rounds, min_features, share_reasons
        self.max_bins, self.key_bits = max_bins, key_bits
        self.allow_insecure_key_size_for_tests, self.reveal_to, self.job_parties = \
            allow_insecure_key_size_for_tests, reveal_to, job_parties
        self.workers = workers

    def _check_setup(self, s: msg.ScorecardSetup, me: str, active: str, n: int) -> None:
        problems = []
        if s.version != msg.PROTOCOL_VERSION:
            problems.append(f"protocol version {s.version}, this party speaks {msg.PROTOCOL_VERSION}")
        if not s.parties or s.parties[0] != active or me not in s.parties or len(s.parties) > MAX_PARTIES \
                or len(set(s.parties)) != len(s.parties):
            problems.append("the job's parties do not start with the active and include this party")
        elif self.job_parties is not None and list(s.parties) != list(self.job_parties):
            problems.append("the job's parties are not the ones this party accepted")
        if s.n_rows != n:
            problems.append(f"the job has {s.n_rows} rows but this party holds {n}")
        try:
            steps.settings("points", {"pdo": s.pdo, "base_score": s.base_score, "base_odds": s.base_odds,
                                      "reason_codes": s.reason_codes})
        except ValueError as exc:
            problems.append(f"points scaling: {exc}")
        if problems:
            raise ProtocolError(f"refusing the scorecard job from {active}: " + "; ".join(problems))

    def fit(self, X, *, transport, active: str, checkpoint=None):
        self._validate_params()
        me = transport.party
        frame = check_table(X, me)
        setup = transport.recv(active, msg.ScorecardSetup)
        self._check_setup(setup, me, active, len(frame))
        transport.send(active, msg.ScorecardReady(self.min_features, self.share_reasons))
        small = self.allow_insecure_key_size_for_tests
        binned = PassiveBinning(max_bins=self.max_bins, allow_insecure_key_size_for_tests=small).fit(
            frame, transport=transport, active=active)
        columns = list(binned.bins_)
        if setup.correlate:
            self._correlate(transport, transport.recv(active, msg.Candidates), binned, frame, setup, active)
        kept = [columns[i] for i in _positions(transport.recv(active, msg.Selection).columns, len(columns), active,
                                                "selected columns")]
        if 0 < len(kept) < self.min_features:
            raise ProtocolError(f"{active} kept {len(kept)} of this party's features; it lets a scorecard use no "
                                f"fewer than {self.min_features}")
        self.names_, self.bins_ = kept, {n: binned.bins_[n] for n in kept}
        self.woe_ = {n: binned.woe_[n] for n in kept}
        self.reason_codes_ = setup.reason_codes
        factor, _ = card.scaling(setup.pdo, setup.base_score, setup.base_odds)
        self.points_ = []
        if kept:
            lr = PassiveLinearModel(max_epochs=self.max_rounds, key_bits=self.key_bits,
                                    allow_insecure_key_size_for_tests=small)
            lr.fit(pd.DataFrame(woe_matrix(frame, binned.bins_, self.woe_, kept), columns=kept), transport=transport,
                   active=active)
            self.points_ = card.feature_points(lr.coef_, lr.mean_, lr.scale_, [self.woe_[n] for n in kept], factor)
        transport.send(active, msg.PassiveCard(float(sum(p.max() for p in self.points_)),
                                           kept if self.share_reasons and kept else []))
        self.feature_names_in_ = list(kept)
        self._serve(frame, transport, active)
        return self

    def _correlate(self, transport, m: msg.Candidates, binned, frame, setup, active) -> None:
        me = transport.party
        columns = list(binned.bins_)
        cand = [columns[i] for i in _positions(m.columns, len(columns), active, "candidate columns")]
        if not cand:
            return
        parties = [p for p in setup.parties if p in m.counts]
        if m.counts.get(me) != len(cand) or any(isinstance(c, bool) or not isinstance(c, int) or c < 1
                                                for c in m.counts.values()) or parties[:1] != [active]:
            raise ProtocolError(f"{active} sent candidate counts that do not fit its candidates")
        if len(m.holders) != len(m.multipliers):
            raise ProtocolError(f"{active} sent a plan of cross products in an unexpected form")
        crosses = check_cross_plan(list(zip(m.holders, m.multipliers)), parties, active)
        if m.frac_bits != frac_bits_for(len(frame)):
            raise ProtocolError(f"{active} sent a fixed point that does not fit {len(frame)} rows")
        plan = correlation_plan(parties)
        check_consent(plan, me, self.reveal_to, active)
        z = standardize(woe_matrix(frame, binned.bins_, binned.woe_, cand), cand, me)
        small = self.allow_insecure_key_size_for_tests
        session = MpcSession(transport, parties, key_bits=self.key_bits, min_key_bits=1024 if small else 2048,
                             workers=self.workers)
        correlate(session, plan, z, m.frac_bits, dict(m.counts), crosses)

    def _serve(self, frame: pd.DataFrame, transport, active: str) -> int:
        request = transport.recv(active, msg.PointsRequest)
        if request.n_rows != len(frame):
            raise ProtocolError(f"{active} asks for points of {request.n_rows} rows but this party holds {len(frame)}: "
                                "align the tables first")
        if request.reasons != self.reason_codes_:
            raise ProtocolError(f"{active} asks for {request.reasons} reason codes; the job set {self.reason_codes_}")
        n = len(frame)
        index = self._index(frame)
        points = card.row_points(index, self.points_).sum(axis=1)
        width = self.reason_codes_ if self.share_reasons and self.names_ else 0
        feats, lost = (card.top_reasons(card.lost_points(index, self.points_), width) if width
                       else (np.zeros((n, 0), np.int64), np.zeros((n, 0))))
        transport.send(active, msg.PartialPoints(points.astype(float), feats, lost))
        return n

    def serve_scores(self, X, *, transport, active: str) -> int:
        """Answer one points request (held-out rows, ``vfl predict``); returns the row count."""
        self._check_fitted()
        me = getattr(transport, "party", "passive")
        frame = check_table(self._columns_for(X, me), me)
        with transport.in_phase("predict"):
            return self._serve(frame, transport, active)

    def save(self, path) -> None:
        self._check_fitted()
        write_model_file(path, {**self._card_doc("passive"), "share_reasons": self.share_reasons})

    @classmethod
    def load(cls, path):
        model, _ = cls._load_card(path, "passive", params=lambda doc: {"share_reasons": bool(doc["share_reasons"])})
        model.feature_names_in_ = list(model.names_)
        return model
