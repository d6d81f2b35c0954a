"""Hetero WOE/IV binning: the active and passive estimators.

1. Active → passives: the setup (its Paillier key, the rows, the binning rules, whether bins are
   merged for monotone WOE, whether WOE comes back), then ``[[y_i]]`` for every row (0/1, one
   ciphertext each).
2. Every party bins its own columns (:mod:`vfl.binning.bins`: quantile or equal width, text
   columns by category, missing values in a bin of their own, bins below ``min_bin_size`` rows
   merged). A passive sends, per column, its bins' row counts, how many of them are ordered
   (numeric), and ``[[Σ_{i∈b} y_i]]`` per bin (sums of ciphertexts, re-randomized before they leave).
3. The active decrypts the event counts; with ``monotone`` it merges adjacent numeric bins of
   every column (its own and the passives') until WOE is monotone; it computes WOE and IV.
4. Where bins were merged or the job says ``share_woe = true``: the active sends each passive the
   new bin of each of its bins, and only with ``share_woe`` the WOE of its own bins (which tells
   it each bin's default rate) and its columns' IV.

What each party learns: the active — each passive's per-bin row and event counts (not its edges
or categories, nor which row is in which bin); a passive — ciphertexts only, with ``monotone``
which of its adjacent bins were merged, and with ``share_woe`` its bins' WOE. Every bin holds
at least ``min_bin_size`` rows before anything about it is revealed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from protocols.paillier import EncryptedVector, generate_keypair
from vfl.binning import bins as binlib
from vfl.binning.messages import BinningSetup, BinSums, BinWoe, EncryptedLabels
from vfl.errors import DataError, ProtocolError
from vfl.estimator import Estimator
from vfl.model_files import read_model_file, write_model_file
from vfl.validation import Boolean, Integer, Optional, Options, check_features, check_labels, is_categorical

FORMAT = "vfl-binning"
VERSION = 2
MAX_BINS = 1000


def check_table(X, party: str) -> pd.DataFrame:
    """A party's columns for binning: numeric ones checked as features (missing values allowed),
    text/category ones kept as they are."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataError(f"{party}: features must be a non-empty 2-D table, got shape {frame.shape}")
    numeric = [c for c in frame.columns if not is_categorical(frame[c])]
    if numeric:
        check_features(frame[numeric], party, allow_nan=True)
    for c in frame.columns:
        if c not in numeric and any(len(str(v)) > binlib.MAX_CATEGORY_CHARS for v in frame[c].dropna().unique()):
            raise DataError(f"{party}: column {str(c)!r} has categories longer than "
                            f"{binlib.MAX_CATEGORY_CHARS} characters")
    return frame


def fit_bins(frame: pd.DataFrame, n_bins: int, method: str, min_size: int) -> dict[str, binlib.ColumnBins]:
    """Every column's bins (:func:`vfl.binning.bins.fit_column`), by column name."""
    out = {str(c): binlib.fit_column(frame[c], n_bins, method, min_size) for c in frame.columns}
    for name, b in out.items():
        if b.n_bins > MAX_BINS:
            raise DataError(f"column {name!r} has {b.n_bins} bins (categories of {min_size} rows or more); "
                            f"at most {MAX_BINS}: raise min_bin_size or group its categories")
    return out


def bin_index(frame: pd.DataFrame, bins: dict[str, binlib.ColumnBins]) -> dict[str, np.ndarray]:
    """The bin of every row, per column."""
    return {str(c): bins[str(c)].assign(binlib.column_values(frame[c], bins[str(c)])) for c in frame.columns}


def merged_counts(counts: np.ndarray, events: np.ndarray, ordered: int,
                  monotone: bool) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """With ``monotone``, the merges that make WOE monotone over the ordered bins (None when
    none is needed or asked) and the pooled row and event counts."""
    merge = binlib.monotone_groups(counts, events, ordered) if monotone else None
    if merge is None or merge.max() + 1 == len(counts):
        return None, counts, events
    return merge, _pooled(counts, merge), _pooled(events, merge)


def column_counts(index: np.ndarray, labels: np.ndarray, bins: binlib.ColumnBins,
                  monotone: bool) -> tuple[binlib.ColumnBins, np.ndarray, np.ndarray]:
    """A column's (bins, rows per bin, events per bin) where its rows and labels are at hand,
    merged for monotone WOE if asked."""
    counts = np.bincount(index, minlength=bins.n_bins)
    events = np.bincount(index, weights=labels, minlength=bins.n_bins).astype(np.int64)
    merge, counts, events = merged_counts(counts, events, bins.ordered, monotone)
    return (bins if merge is None else bins.merged(merge)), counts, events


def woe_matrix(frame: pd.DataFrame, bins: dict, woe: dict, names: list[str]) -> np.ndarray:
    """The WOE of every row's bin, one column per name in ``names``."""
    out = np.empty((len(frame), len(names)))
    for j, name in enumerate(names):
        b = bins[name]
        out[:, j] = np.asarray(woe[name], float)[b.assign(binlib.column_values(frame[name], b))]
    return out


class _BinningBase(Estimator):
    _fitted_attribute = "iv_"

    def _save(self, path, role: str) -> None:
        self._check_fitted()
        write_model_file(path, {"format": FORMAT, "version": VERSION, "role": role, "columns": self.columns_,
                                "bins": {k: v.to_doc() for k, v in self.bins_.items()},
                                "woe": {k: v.tolist() for k, v in self.woe_.items()}, "iv": self.iv_,
                                "counts": {k: v.tolist() for k, v in self.counts_.items()}})

    @classmethod
    def _load(cls, path, role: str):
        doc = read_model_file(path, format=FORMAT, version=VERSION, role=role)
        model = cls()
        model.columns_, model.iv_ = doc["columns"], doc["iv"]
        model.bins_ = {k: binlib.ColumnBins.from_doc(v) for k, v in doc["bins"].items()}
        model.woe_ = {k: np.asarray(v, float) for k, v in doc["woe"].items()}
        model.counts_ = {k: np.asarray(v, np.int64) for k, v in doc["counts"].items()}
        return model

    def decision_function(self, X, *, transport, passives):
        raise DataError("a binning job trains no scoring model: there is nothing to predict")


class ActiveBinning(_BinningBase):
    _parameter_constraints = {"n_bins": Integer(2, MAX_BINS), "method": Options(binlib.METHODS),
                              "min_bin_size": Integer(1), "monotone": Boolean(), "share_woe": Boolean(),
                              "key_bits": Integer(1024, 8192), "verbose": Boolean(),
                              "workers": Optional(Integer(1, 1024))}

    def __init__(self, *, n_bins: int = 10, method: str = "quantile", min_bin_size: int = 50, monotone: bool = False,
                 share_woe: bool = False, key_bits: int = 2048, verbose: bool = True, workers: int | None = None):
        self.n_bins, self.method, self.min_bin_size, self.share_woe = n_bins, method, min_bin_size, share_woe
        self.monotone, self.key_bits, self.verbose, self.workers = monotone, key_bits, verbose, workers

    def fit(self, X, y, *, transport, passives: list[str], private_key=None, checkpoint=None):
        self._validate_params()
        me = transport.party
        frame = check_table(X, me)
        labels = check_labels(y, len(frame), me, "binary").astype(np.int64)
        if private_key is None:
            _, private_key = generate_keypair(self.key_bits)
        transport.register_public_key(private_key.public_key)
        transport.broadcast(BinningSetup(private_key.public_key, len(frame), self.n_bins, self.method,
                                         self.min_bin_size, self.share_woe, self.monotone), passives)
        enc = EncryptedVector.encrypt(private_key, labels, frac_bits=0, int_bits=1, workers=self.workers)
        transport.broadcast(EncryptedLabels(enc), passives)
        self.columns_, self.woe_, self.iv_, self.counts_, self.events_ = {}, {}, {}, {}, {}
        self.bins_ = fit_bins(frame, self.n_bins, self.method, self.min_bin_size)
        index = bin_index(frame, self.bins_)
        names = list(self.bins_)
        for name in names:
            self.bins_[name], counts, events = column_counts(index[name], labels, self.bins_[name], self.monotone)
            self._record(f"{me}:{name}", counts, events)
        self.columns_[me] = [f"{me}:{n}" for n in names]
        for p in passives:
            self._passive(p, transport, private_key, len(frame))
        self.n_rows_ = len(frame)
        self._set_feature_names(X)
        return self

    def _record(self, key: str, counts: np.ndarray, events: np.ndarray) -> None:
        woe, iv = binlib.woe_iv(events, counts)
        self.counts_[key], self.events_[key], self.woe_[key], self.iv_[key] = counts, events, woe, iv

    def _passive(self, p: str, transport, private_key, n_rows: int) -> None:
        m = transport.recv(p, BinSums)
        per, ordered = np.asarray(m.bins_per_column), np.asarray(m.ordered)
        counts = np.asarray(m.counts)
        if any(a.dtype.kind not in "iu" for a in (per, ordered, counts)) or per.ndim != 1 or not len(per) \
                or per.min() < 1 or per.max() > MAX_BINS + 2 or ordered.shape != per.shape \
                or np.any(ordered < 0) or np.any(ordered > per) or counts.shape != (sum(per.tolist()),) \
                or len(m.events) != len(counts) or np.any(counts < 0) or np.any(counts > n_rows):
            raise ProtocolError(f"{p} sent bin sums in an unexpected shape")
        if m.events.public_key != private_key.public_key:
            raise ProtocolError(f"{p} sent bin sums under another key")
        try:
            plain = m.events.decrypt_ints(private_key)
        except (OverflowError, ValueError):
            raise ProtocolError(f"{p} sent bin sums that do not decrypt to event counts") from None
        if any(not 0 <= e <= n_rows for e in plain):
            raise ProtocolError(f"{p} sent event counts outside 0..{n_rows}")
        events = np.asarray(plain, dtype=np.int64)
        keys, merges, woes, ivs, start = [], [], [], [], 0
        for j, (k, o) in enumerate(zip(per.tolist(), ordered.tolist())):
            c, e = counts[start:start + k], events[start:start + k]
            start += k
            if c.sum() != n_rows or np.any(e > c):
                raise ProtocolError(f"{p} sent counts for its column {j} that do not add up to the {n_rows} rows")
            if np.any(c[c > 0] < self.min_bin_size) and c.sum() >= self.min_bin_size:
                raise ProtocolError(f"{p} sent a bin of column {j} smaller than the job's {self.min_bin_size} rows")
            merge, c, e = merged_counts(c, e, o, self.monotone)
            merges.append(np.arange(k) if merge is None else merge)
            key = f"{p}:feature {j}"
            self._record(key, c, e)
            keys.append(key)
            woes.append(self.woe_[key])
            ivs.append(self.iv_[key])
        self.columns_[p] = keys
        if self.share_woe or self.monotone:
            shared = self.share_woe
            transport.send(p, BinWoe(np.concatenate(merges).astype(np.int64),
                                     np.concatenate(woes) if shared else np.zeros(0),
                                     np.asarray(ivs) if shared else np.zeros(0)))

    def labels(self) -> dict[str, list[str]]:
        """What each bin of this party's own columns holds (ranges, categories), by column key;
        a passive's bins are not described: its edges and categories stay with it."""
        me = next(iter(self.columns_))
        return {f"{me}:{name}": b.describe() for name, b in self.bins_.items()}

    def iv_table(self) -> list[tuple[str, float]]:
        self._check_fitted()
        return sorted(self.iv_.items(), key=lambda kv: -kv[1])

    def save(self, path) -> None:
        self._save(path, "active")

    @classmethod
    def load(cls, path):
        return cls._load(path, "active")


def _pooled(values: np.ndarray, merge: np.ndarray) -> np.ndarray:
    return np.bincount(merge, weights=values, minlength=int(merge.max()) + 1).astype(np.int64)


class PassiveBinning(_BinningBase):
    _parameter_constraints = {"allow_insecure_key_size_for_tests": Boolean(), "max_bins": Integer(2, MAX_BINS)}

    def __init__(self, *, allow_insecure_key_size_for_tests: bool = False, max_bins: int = 100):
        self.allow_insecure_key_size_for_tests, self.max_bins = allow_insecure_key_size_for_tests, max_bins

    def fit(self, X, *, transport, active: str, checkpoint=None):
        self._validate_params()
        me = transport.party
        frame = check_table(X, me)
        setup = transport.recv(active, BinningSetup)
        problems = []
        if setup.n_rows != len(frame):
            problems.append(f"the job has {setup.n_rows} rows but this party holds {len(frame)}")
        if setup.public_key.n_bits < 2048 and not self.allow_insecure_key_size_for_tests:
            problems.append(f"the job's {setup.public_key.n_bits}-bit key is below the 2048-bit minimum")
        if setup.method not in binlib.METHODS or not 2 <= setup.n_bins <= self.max_bins or setup.min_bin_size < 1:
            problems.append(f"binning rules ({setup.method}, {setup.n_bins} bins, minimum {setup.min_bin_size} rows) "
                            f"outside what this party serves (at most {self.max_bins} bins)")
        if problems:
            raise ProtocolError(f"refusing the binning job from {active}: " + "; ".join(problems))
        labels = transport.recv(active, EncryptedLabels).labels
        if labels.public_key != setup.public_key or len(labels) != len(frame) or labels.exponent != 0 \
                or labels.mag_bits > 1:
            raise ProtocolError(f"{active} sent encrypted labels that do not match the setup")
        self.bins_ = fit_bins(frame, setup.n_bins, setup.method, setup.min_bin_size)
        index = bin_index(frame, self.bins_)
        names = list(self.bins_)
        sums, self.counts_, self.woe_, self.iv_ = [], {}, {}, {}
        for name in names:
            b = self.bins_[name]
            self.counts_[name] = np.bincount(index[name], minlength=b.n_bins)
            sums.extend(labels[np.flatnonzero(index[name] == k)].sum() for k in range(b.n_bins))
        per = np.asarray([self.bins_[n].n_bins for n in names], np.int64)
        transport.send(active, BinSums(per, np.asarray([self.bins_[n].ordered for n in names], np.int64),
                                       np.concatenate([self.counts_[n] for n in names]).astype(np.int64),
                                       EncryptedVector.concat(sums)))
        if setup.share_woe or setup.monotone:
            self._apply(transport.recv(active, BinWoe), names, per, setup, active)
        self.columns_ = {me: names}
        return self

    def _apply(self, m: BinWoe, names: list[str], per: np.ndarray, setup: BinningSetup, active: str) -> None:
        """The active's merges (adjacent ordered bins only) and, where shared, WOE and IV."""
        merge = np.asarray(m.merge)
        if merge.shape != (int(per.sum()),):
            raise ProtocolError(f"{active} sent bin merges of an unexpected shape")
        start, new_counts = 0, []
        for name, k in zip(names, per.tolist()):
            mk, b = merge[start:start + k], self.bins_[name]
            start += k
            head, tail = mk[:b.ordered], mk[b.ordered:]
            steps = np.diff(head)
            if len(mk) != k or mk.min() != 0 or np.any((steps != 0) & (steps != 1)) \
                    or not np.array_equal(tail, np.arange(k - b.ordered) + (head.max() + 1 if len(head) else 0)):
                raise ProtocolError(f"{active} sent merges of column {name!r} that are not adjacent ordered bins")
            if not setup.monotone and not np.array_equal(mk, np.arange(k)):
                raise ProtocolError(f"{active} merged bins of column {name!r} in a job without monotone merging")
            self.bins_[name] = b.merged(mk)
            self.counts_[name] = _pooled(self.counts_[name], mk)
            new_counts.append(len(self.counts_[name]))
        if setup.share_woe:
            if m.woe.shape != (sum(new_counts),) or m.iv.shape != (len(names),):
                raise ProtocolError(f"{active} sent WOE of an unexpected shape")
            start = 0
            for name, k, iv in zip(names, new_counts, m.iv.tolist()):
                self.woe_[name], self.iv_[name] = np.asarray(m.woe[start:start + k], float), float(iv)
                start += k

    def serve_scores(self, X, *, transport, active: str) -> int:
        raise DataError("a binning job trains no scoring model: there is nothing to score")

    def save(self, path) -> None:
        self._save(path, "passive")

    @classmethod
    def load(cls, path):
        return cls._load(path, "passive")
