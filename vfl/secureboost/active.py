"""The label party's side of hetero SecureBoost training (protocol steps: docs/secureboost.md).

Per tree: compute g, h from the current scores, encrypt each row's (g, h) pair as one packed
ciphertext (CRT fast path) and send it to every passive. Per depth: tell the passives which
rows sit in which node to split; find the best split of its own columns in the clear; decrypt
each passive's histograms and evaluate their candidates with the same gain; send each passive
the nodes it won (feature, shuffled entry, default direction) and receive the left rows.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
from scipy.special import expit

from protocols.paillier import PackedEncryptedVector
from protocols.paillier.vector import prefetch_randomizers
from vfl.errors import ProtocolError
from vfl.progress import progress
from vfl.secureboost import messages as msg
from vfl.secureboost.binning import MISSING
from vfl.secureboost.splits import (Best, TreeParams, best_entry, candidate_bins, child_ids, leaf_value,
                                   own_entries)

LOSSES = ("logistic", "squared")
LOGISTIC_INT_BITS = 1    # logistic loss: |g| <= 1, 0 <= h <= 1/4


@dataclasses.dataclass
class Tree:
    """One tree at the active, heap-numbered. ``owner``: -1 leaf, 0 this party, p >= 1 the
    p-th passive (``passives[p-1]``). Thresholds are known only for this party's nodes."""
    owner: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    default_left: np.ndarray
    value: np.ndarray
    gain: np.ndarray

    @classmethod
    def empty(cls, max_depth: int) -> "Tree":
        size = 2 ** (max_depth + 1) - 1
        return cls(owner=np.full(size, -2), feature=np.full(size, -1), threshold=np.full(size, np.nan),
                   default_left=np.zeros(size, bool), value=np.zeros(size), gain=np.zeros(size))


@dataclasses.dataclass
class Choice:
    owner: int
    feature: int
    best: Best


class ActiveTrainer:
    def __init__(self, transport, passives: list[str], private_key, params: TreeParams, x: np.ndarray,
                 codes: np.ndarray, edges: list[np.ndarray], y: np.ndarray, *, n_estimators: int,
                 learning_rate: float, loss: str = "logistic", int_bits: int = LOGISTIC_INT_BITS,
                 active_only_trees: int = 0, verbose: bool = True, workers: int | None = None):
        self.t, self.passives, self.sk, self.p = transport, list(passives), private_key, params
        self.x, self.codes, self.edges, self.y = x, codes, edges, y
        self.n_bins = [len(e) + 1 for e in edges]
        self.n_estimators, self.lr, self.verbose, self.workers = n_estimators, learning_rate, verbose, workers
        self.loss, self.int_bits, self.active_only_trees = loss, int_bits, active_only_trees
        self.peers: list[str] = self.passives       # the passives taking part in the current tree
        self.trees: list[Tree] = []
        self.tree_seconds: list[float] = []
        self.pending = None                 # randomizers being prepared for the next tree

    def run(self, base_score: float) -> list[Tree]:
        scores = np.full(len(self.y), base_score)
        for t in progress(range(self.n_estimators), desc="SecureBoost trees", disable=not self.verbose):
            start = time.perf_counter()
            tree, leaf_of_row = self._grow(t, scores)
            scores = scores + tree.value[leaf_of_row]
            self.trees.append(tree)
            self.tree_seconds.append(time.perf_counter() - start)
        self.t.broadcast(msg.FitEnd(n_trees=len(self.trees)), self.passives)
        return self.trees

    def _gradients(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fixed-point integers of g and h: logistic g = p − y, h = p(1 − p); squared g = s − y, h = 1."""
        if self.loss == "logistic":
            prob = expit(scores)
            g, h = prob - self.y, prob * (1.0 - prob)
        else:
            g, h = scores - self.y, np.ones(len(self.y))
            if np.abs(g).max() >= 2.0 ** self.int_bits:
                raise ValueError(f"a gradient reached |g| = {np.abs(g).max():.4g}, beyond the declared "
                                 f"gradient_int_bits={self.int_bits}: raise it or rescale the labels")
        f = self.p.frac_bits
        return np.rint(np.ldexp(g, f)).astype(np.int64), np.rint(np.ldexp(h, f)).astype(np.int64)

    def _grow(self, t: int, scores: np.ndarray) -> tuple[Tree, np.ndarray]:
        gi, hi = self._gradients(scores)
        pairs = np.ldexp(np.column_stack([gi, hi]).reshape(-1).astype(np.float64), -self.p.frac_bits)
        self.peers = [] if t < self.active_only_trees else self.passives
        if self.peers:
            pending, self.pending = self.pending, None
            gh = PackedEncryptedVector.encrypt(self.sk, pairs, frac_bits=self.p.frac_bits, int_bits=self.int_bits,
                                               sum_terms=len(self.y), slots=2, workers=self.workers,
                                               randomizers=pending.result() if pending else None)
            self.t.broadcast(msg.GradHess(tree=t, gh=gh), self.peers)
            if t + 1 < self.n_estimators:
                # The next tree's randomizers do not depend on its gradients: the pool makes them
                # while the passives build histograms (decryptions meanwhile run in this process).
                self.pending = prefetch_randomizers(self.sk, len(self.y), workers=self.workers)
        tree = Tree.empty(self.p.max_depth)
        node_of_row = np.zeros(len(self.y), np.int64)
        frontier = [0]
        for depth in range(self.p.max_depth + 1):
            sums = {k: (int(gi[node_of_row == k].sum()), int(hi[node_of_row == k].sum())) for k in frontier}
            to_split = [k for k in frontier if depth < self.p.max_depth and self._splittable(*sums[k])
                        and np.count_nonzero(node_of_row == k) >= 2]
            request = np.where(np.isin(node_of_row, to_split), node_of_row, -1).astype(np.int32)
            self.t.broadcast(msg.Nodes(tree=t, depth=depth, node_ids=np.asarray(to_split, np.int64),
                                       node_of_row=request), self.peers)
            choices, lefts = {}, {}
            if to_split:
                choices = self._choices(t, depth, to_split, node_of_row, gi, hi, sums)
                lefts = self._exchange_splits(t, depth, choices, node_of_row)
            frontier = self._apply(tree, frontier, choices, lefts, node_of_row, sums)
            if not to_split:
                break
        return tree, node_of_row

    def _splittable(self, g: int, h: int) -> bool:
        return h * 2.0 ** -self.p.frac_bits >= 2 * self.p.min_child_weight and h > 0

    # -- finding the best split per node ------------------------------------------------------
    def _choices(self, t, depth, to_split, node_of_row, gi, hi, sums) -> dict[int, Choice]:
        best: dict[int, Choice] = {}
        for k in to_split:
            rows = np.flatnonzero(node_of_row == k)
            entries = own_entries(self.codes[rows], gi[rows], hi[rows], self.n_bins)
            for f, (gl, hl, _) in enumerate(entries):
                self._consider(best, k, 0, f, gl, hl, sums[k])
        for p, name in enumerate(self.passives, start=1):
            if name not in self.peers:
                continue
            hist = self.t.recv(name, msg.Histograms)
            for k, f, gl, hl in self._decode(name, hist, t, depth, to_split):
                self._consider(best, k, p, f, gl, hl, sums[k])
        return best

    def _consider(self, best: dict, node: int, owner: int, feature: int, gl, hl, sums) -> None:
        found = best_entry(gl, hl, sums[0], sums[1], self.p)
        if found is not None and (node not in best or found.gain > best[node].best.gain):
            best[node] = Choice(owner, feature, found)

    def _decode(self, name: str, hist: msg.Histograms, t: int, depth: int, to_split: list):
        sizes = np.asarray(hist.sizes, np.int64)
        total = int(sizes.sum())
        if (hist.tree, hist.depth) != (t, depth) or sizes.ndim != 2 or sizes.shape[0] != len(to_split) \
                or (sizes < 1).any() or hist.sums is None or len(hist.sums) != 2 * total:
            raise ProtocolError(f"{name} sent histograms that do not match tree {t} depth {depth}")
        expected_offset = len(self.y) << (self.int_bits + self.p.frac_bits)     # N terms of offset 2^m each
        if hist.sums.public_key != self.sk.public_key or hist.sums.offset != expected_offset \
                or hist.sums.exponent != self.p.frac_bits:
            raise ProtocolError(f"{name} sent histograms under another key, offset or scale")
        workers = 1 if self.pending is not None else self.workers     # the pool is busy with randomizers
        values = np.asarray(hist.sums.decrypt_ints(self.sk, workers=workers), dtype=np.int64).reshape(-1, 2)
        pos = 0
        for i, k in enumerate(to_split):
            for f, size in enumerate(sizes[i].tolist()):
                block = values[pos:pos + size]
                pos += size
                yield k, f, block[:, 0], block[:, 1]

    # -- applying the splits -----------------------------------------------------------------
    def _exchange_splits(self, t, depth, choices: dict, node_of_row) -> dict[int, np.ndarray]:
        """Send each passive its won nodes; return the left mask (over the node's rows) per node."""
        lefts = {}
        peers = [(p, name) for p, name in enumerate(self.passives, start=1) if name in self.peers]
        for p, name in peers:
            won = [k for k, c in sorted(choices.items()) if c.owner == p]
            cs = [choices[k] for k in won]
            self.t.send(name, msg.Splits(tree=t, depth=depth, node_ids=np.asarray(won, np.int64),
                                         features=np.asarray([c.feature for c in cs], np.int64),
                                         entries=np.asarray([c.best.entry for c in cs], np.int64),
                                         default_left=np.asarray([c.best.default_left for c in cs], bool)))
        for p, name in peers:
            won = [k for k, c in sorted(choices.items()) if c.owner == p]
            left = np.asarray(self.t.recv(name, msg.LeftRows).left, bool)
            counts = [int(np.count_nonzero(node_of_row == k)) for k in won]
            if left.shape != (sum(counts),):
                raise ProtocolError(f"{name} sent {left.shape} left flags for {sum(counts)} rows")
            for k, part in zip(won, np.split(left, np.cumsum(counts)[:-1])):
                lefts[k] = part
        return lefts

    def _apply(self, tree: Tree, frontier, choices, lefts, node_of_row, sums) -> list[int]:
        nxt = []
        for k in frontier:
            c = choices.get(k)
            if c is None:
                tree.owner[k] = -1
                tree.value[k] = leaf_value(*sums[k], self.p, self.lr)
                continue
            rows = np.flatnonzero(node_of_row == k)
            if c.owner == 0:
                tree.threshold[k], left = self._own_left(rows, c)
            else:
                left = lefts[k]
            tree.owner[k], tree.feature[k], tree.gain[k] = c.owner, c.feature, c.best.gain
            tree.default_left[k] = c.best.default_left
            a, b = child_ids(k)
            node_of_row[rows[left]], node_of_row[rows[~left]] = a, b
            nxt += [a, b]
        return nxt

    def _own_left(self, rows: np.ndarray, c: Choice) -> tuple[float, np.ndarray]:
        """This party's threshold for the chosen entry, and its rows routed by bin code."""
        f, e = c.feature, c.best.entry
        col = self.codes[rows, f]
        if e == 0:
            threshold, left = np.inf, col != MISSING
        else:
            b = int(candidate_bins(col, self.n_bins[f])[e - 1])
            threshold, left = float(self.edges[f][b]), (col != MISSING) & (col <= b)
        return threshold, np.where(col == MISSING, c.best.default_left, left)
