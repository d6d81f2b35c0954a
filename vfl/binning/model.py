"""Hetero WOE/IV binning: the active and passive estimators.

1. Active → passives: the setup (its Paillier key, the rows, the binning rules, whether WOE
   comes back), then ``[[y_i]]`` for every row (0/1, one ciphertext each).
2. Every party bins its own columns (:mod:`vfl.binning.bins`: quantile or equal width, missing
   values in a bin of their own, bins below ``min_bin_size`` rows merged). A passive sends, per
   column, its bins' row counts and ``[[Σ_{i∈b} y_i]]`` per bin (sums of ciphertexts,
   re-randomized before they leave).
3. The active decrypts the event counts and computes WOE and IV for every column of every party.
4. Only where the job says ``share_woe = true``: the active sends each passive the WOE of its own
   bins (which tells it each bin's default rate).

What each party learns: the active — each passive's per-bin row and event counts (not its edges,
nor which row is in which bin); a passive — ciphertexts only, and with ``share_woe`` its bins'
WOE. Every bin holds at least ``min_bin_size`` rows before anything about it is revealed.
"""
from __future__ import annotations

import numpy as np

from protocols.paillier import EncryptedVector, generate_keypair
from vfl.binning import bins as binlib
from vfl.binning.messages import BinningSetup, BinSums, BinWoe, EncryptedLabels
from vfl.errors import DataError, ProtocolError
from vfl.estimator import Estimator
from vfl.model_files import write_model_file
from vfl.validation import Boolean, Integer, Optional, Options, check_features, check_labels

FORMAT = "vfl-binning"
MAX_BINS = 1000


def bin_columns(x: np.ndarray, n_bins: int, method: str, min_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(edges, bin of every row) for every column of ``x``; a missing-value bin smaller than
    ``min_size`` joins the column's largest bin (its rows would otherwise be a handful)."""
    out = []
    for j in range(x.shape[1]):
        edges, idx = binlib.column_bins(x[:, j], n_bins, method, min_size)
        missing = idx == len(edges) + 1
        if 0 < missing.sum() < min_size:
            idx = idx.copy()
            idx[missing] = int(np.argmax(np.bincount(idx[~missing], minlength=len(edges) + 1)))
        out.append((edges, idx))
    return out


def counts_of(idx: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Rows per bin (numeric bins, then the missing-value bin; an empty missing bin is dropped)."""
    counts = np.bincount(idx, minlength=len(edges) + 2)
    return counts if counts[-1] else counts[:-1]


class _BinningBase(Estimator):
    _fitted_attribute = "iv_"

    def _save(self, path, role: str) -> None:
        self._check_fitted()
        write_model_file(path, {"format": FORMAT, "version": 1, "role": role,
                                "columns": self.columns_, "edges": {k: v.tolist() for k, v in self.edges_.items()},
                                "woe": {k: v.tolist() for k, v in self.woe_.items()}, "iv": self.iv_,
                                "counts": {k: v.tolist() for k, v in self.counts_.items()}})

    def decision_function(self, X, *, transport, passives):
        raise DataError("a binning job trains no scoring model: there is nothing to predict")


class ActiveBinning(_BinningBase):
    _parameter_constraints = {"n_bins": Integer(2, MAX_BINS), "method": Options(binlib.METHODS),
                              "min_bin_size": Integer(1), "share_woe": Boolean(), "key_bits": Integer(1024, 8192),
                              "verbose": Boolean(), "workers": Optional(Integer(1, 1024))}

    def __init__(self, *, n_bins: int = 10, method: str = "quantile", min_bin_size: int = 50, share_woe: bool = False,
                 key_bits: int = 2048, verbose: bool = True, workers: int | None = None):
        self.n_bins, self.method, self.min_bin_size, self.share_woe = n_bins, method, min_bin_size, share_woe
        self.key_bits, self.verbose, self.workers = key_bits, verbose, workers

    def fit(self, X, y, *, transport, passives: list[str], private_key=None, checkpoint=None):
        self._validate_params()
        me = transport.party
        x = check_features(X, me, allow_nan=True)
        labels = check_labels(y, len(x), me, "binary").astype(np.int64)
        names = [str(c) for c in getattr(X, "columns", range(x.shape[1]))]
        if private_key is None:
            _, private_key = generate_keypair(self.key_bits)
        transport.register_public_key(private_key.public_key)
        transport.broadcast(BinningSetup(private_key.public_key, len(x), self.n_bins, self.method, self.min_bin_size,
                                         self.share_woe), passives)
        enc = EncryptedVector.encrypt(private_key, labels, frac_bits=0, int_bits=1, workers=self.workers)
        transport.broadcast(EncryptedLabels(enc), passives)
        self.columns_, self.edges_, self.woe_, self.iv_, self.counts_, self.events_ = {}, {}, {}, {}, {}, {}
        for name, (edges, idx) in zip(names, bin_columns(x, self.n_bins, self.method, self.min_bin_size)):
            key = f"{me}:{name}"
            counts = counts_of(idx, edges)
            events = np.bincount(idx, weights=labels, minlength=len(counts))[:len(counts)].astype(np.int64)
            self._record(key, counts, events)
            self.edges_[key] = edges
        self.columns_[me] = names
        for p in passives:
            self._passive(p, transport, private_key, len(x))
        self.n_rows_ = len(x)
        self._set_feature_names(X)
        return self

    def _record(self, key: str, counts: np.ndarray, events: np.ndarray) -> None:
        woe, iv = binlib.woe_iv(events, counts)
        self.counts_[key], self.events_[key], self.woe_[key], self.iv_[key] = counts, events, woe, iv

    def _passive(self, p: str, transport, private_key, n_rows: int) -> None:
        m = transport.recv(p, BinSums)
        per = np.asarray(m.bins_per_column)
        counts = np.asarray(m.counts)
        if per.ndim != 1 or not len(per) or per.min() < 1 or per.max() > MAX_BINS + 1 \
                or counts.shape != (int(per.sum()),) or len(m.events) != len(counts):
            raise ProtocolError(f"{p} sent bin sums in an unexpected shape")
        if m.events.public_key != private_key.public_key:
            raise ProtocolError(f"{p} sent bin sums under another key")
        events = np.asarray(m.events.decrypt_ints(private_key), dtype=np.int64)
        keys, woes, ivs, start = [], [], [], 0
        for j, k in enumerate(per.tolist()):
            c, e = counts[start:start + k], events[start:start + k]
            start += k
            if c.sum() != n_rows or np.any(c < 0) or np.any(e < 0) or np.any(e > c):
                raise ProtocolError(f"{p} sent counts for its column {j} that do not add up to the {n_rows} rows")
            if np.any(c[c > 0] < self.min_bin_size):
                raise ProtocolError(f"{p} sent a bin of column {j} smaller than the job's {self.min_bin_size} rows")
            key = f"{p}:feature {j}"
            self._record(key, c, e)
            keys.append(key)
            woes.append(self.woe_[key])
            ivs.append(self.iv_[key])
        self.columns_[p] = keys
        if self.share_woe:
            transport.send(p, BinWoe(np.concatenate(woes), np.asarray(ivs)))

    def iv_table(self) -> list[tuple[str, float]]:
        self._check_fitted()
        return sorted(self.iv_.items(), key=lambda kv: -kv[1])

    def save(self, path) -> None:
        self._save(path, "active")


class PassiveBinning(_BinningBase):
    _parameter_constraints = {"allow_insecure_key_size_for_tests": Boolean(), "max_bins": Integer(2, MAX_BINS)}

    def __init__(self, *, allow_insecure_key_size_for_tests: bool = False, max_bins: int = 100):
        self.allow_insecure_key_size_for_tests, self.max_bins = allow_insecure_key_size_for_tests, max_bins

    def fit(self, X, *, transport, active: str, checkpoint=None):
        self._validate_params()
        me = transport.party
        x = check_features(X, me, allow_nan=True)
        setup = transport.recv(active, BinningSetup)
        problems = []
        if setup.n_rows != len(x):
            problems.append(f"the job has {setup.n_rows} rows but this party holds {len(x)}")
        if setup.public_key.n_bits < 2048 and not self.allow_insecure_key_size_for_tests:
            problems.append(f"the job's {setup.public_key.n_bits}-bit key is below the 2048-bit minimum")
        if setup.method not in binlib.METHODS or not 2 <= setup.n_bins <= self.max_bins or setup.min_bin_size < 1:
            problems.append(f"binning rules ({setup.method}, {setup.n_bins} bins, minimum {setup.min_bin_size} rows) "
                            f"outside what this party serves (at most {self.max_bins} bins)")
        if problems:
            raise ProtocolError(f"refusing the binning job from {active}: " + "; ".join(problems))
        labels = transport.recv(active, EncryptedLabels).labels
        if labels.public_key != setup.public_key or len(labels) != len(x) or labels.exponent != 0 \
                or labels.mag_bits > 1:
            raise ProtocolError(f"{active} sent encrypted labels that do not match the setup")
        names = [str(c) for c in getattr(X, "columns", range(x.shape[1]))]
        per, counts, sums = [], [], []
        self.edges_, self.counts_, self.woe_, self.iv_ = {}, {}, {}, {}
        for name, (edges, idx) in zip(names, bin_columns(x, setup.n_bins, setup.method, setup.min_bin_size)):
            c = counts_of(idx, edges)
            per.append(len(c))
            counts.append(c)
            sums.extend(labels[np.flatnonzero(idx == b)].sum() for b in range(len(c)))   # no bin is empty
            self.edges_[name], self.counts_[name] = edges, c
        events = EncryptedVector.concat(sums)
        transport.send(active, BinSums(np.asarray(per, np.int64), np.concatenate(counts).astype(np.int64), events))
        if setup.share_woe:
            m = transport.recv(active, BinWoe)
            if m.woe.shape != (sum(per),) or m.iv.shape != (len(names),):
                raise ProtocolError(f"{active} sent WOE of an unexpected shape")
            start = 0
            for name, k, iv in zip(names, per, m.iv.tolist()):
                self.woe_[name], self.iv_[name] = m.woe[start:start + k], float(iv)
                start += k
        self.columns_ = {me: names}
        return self

    def serve_scores(self, X, *, transport, active: str) -> int:
        raise DataError("a binning job trains no scoring model: there is nothing to score")

    def save(self, path) -> None:
        self._save(path, "passive")
