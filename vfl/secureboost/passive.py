"""A feature party's side of hetero SecureBoost training. It never sees labels, g, h, gains,
leaf weights or the other parties' splits; see docs/secureboost.md for what it does learn.

Per tree: receive [[g_i, h_i]] (one packed ciphertext per row). Per depth: receive the rows of
the nodes to split; for each node build the cumulative histogram of every feature (smaller
sibling directly, larger as parent − smaller); send, per (node, feature), the non-missing sum
then the candidates' left sums in a fresh secret order; for the nodes it wins, map the entry
back to a threshold kept in its private lookup table and return which rows go left.
"""
from __future__ import annotations

import secrets

import numpy as np

from protocols.paillier import PackedEncryptedVector
from vfl.errors import ProtocolError
from vfl.secureboost import messages as msg
from vfl.secureboost.splits import candidate_bins


class PassiveTrainer:
    def __init__(self, transport, active: str, setup: msg.Setup, x: np.ndarray, codes: np.ndarray,
                 edges: list[np.ndarray], *, max_trees: int, workers: int | None = None):
        self.t, self.active, self.cfg, self.x = transport, active, setup, x
        self.codes, self.edges, self.workers, self.max_trees = codes, edges, workers, max_trees
        self.n_bins = [len(e) + 1 for e in edges]
        self.starts = np.concatenate([[0], np.cumsum(self.n_bins)[:-1]]).astype(np.int64)
        self.lookup: dict[tuple[int, int], tuple[int, float, bool]] = {}
        self._rng = secrets.SystemRandom()

    # -- one tree ----------------------------------------------------------------------------
    def run(self) -> int:
        """Serve trees until ``FitEnd``; returns how many trees this party took part in (trees
        grown on the active's columns only skip it, so tree numbers may jump)."""
        served, last = 0, -1
        while True:
            m = self.t.recv(self.active, (msg.GradHess, msg.FitEnd))
            if isinstance(m, msg.FitEnd):
                return served
            if not last < m.tree < self.cfg.n_estimators or len(m.gh) != 2 * self.cfg.n_rows or m.gh.slots != 2:
                raise ProtocolError(f"{self.active} sent g/h for tree {m.tree} of {len(m.gh)} values; "
                                    f"expected a tree after {last} and {2 * self.cfg.n_rows} values in pairs")
            if served >= self.max_trees:
                raise ProtocolError(f"{self.active} asks for more than the {self.max_trees} trees agreed")
            self._tree(m.tree, m.gh)
            served, last = served + 1, m.tree

    def _tree(self, tree: int, gh: PackedEncryptedVector) -> None:
        prev_hist: dict[int, PackedEncryptedVector] = {}
        prev_rows: dict[int, np.ndarray] = {}
        for depth in range(self.cfg.max_depth + 1):
            req = self.t.recv(self.active, msg.Nodes)
            if (req.tree, req.depth) != (tree, depth):
                raise ProtocolError(f"{self.active} asked for tree {req.tree} depth {req.depth} "
                                    f"while this party is at tree {tree} depth {depth}")
            if len(req.node_ids) == 0:
                return
            rows = self._node_rows(req, prev_rows)
            hist = self._histograms(gh, rows, prev_hist, prev_rows)
            perms = self._send_histograms(tree, depth, hist, rows)
            self._answer_splits(tree, depth, rows, perms)
            prev_hist, prev_rows = hist, rows
        raise ProtocolError(f"{self.active} did not end tree {tree} at the maximum depth")

    def _node_rows(self, req: msg.Nodes, prev_rows: dict) -> dict[int, np.ndarray]:
        ids, of_row = np.asarray(req.node_ids, np.int64), np.asarray(req.node_of_row, np.int64)
        if of_row.shape != (self.cfg.n_rows,) or len(np.unique(ids)) != len(ids):
            raise ProtocolError(f"{self.active} sent a malformed node request")
        if not np.isin(of_row[of_row >= 0], ids).all():
            raise ProtocolError(f"{self.active} placed rows in nodes it did not list")
        rows = {}
        for k in ids.tolist():
            r = np.flatnonzero(of_row == k)
            parent = (k - 1) // 2
            inside = (k == 0 and req.depth == 0) or (k > 0 and parent in prev_rows
                                                      and np.isin(r, prev_rows[parent]).all())
            if not inside or len(r) == 0:
                raise ProtocolError(f"{self.active} asked for node {k}, which is not a child of a split node")
            rows[k] = r
        return rows

    # -- histograms --------------------------------------------------------------------------
    def _direct(self, gh: PackedEncryptedVector, rows: np.ndarray) -> PackedEncryptedVector:
        """Cumulative per-feature sums over ``rows``: entry (f, b) sums bins 0..b of feature f."""
        groups = []
        for f, nb in enumerate(self.n_bins):
            col = self.codes[rows, f]
            order = np.argsort(col, kind="stable")
            bounds = np.searchsorted(col[order], np.arange(nb + 1), side="left")
            groups.extend(rows[order[bounds[b]:bounds[b + 1]]] for b in range(nb))
        return gh.group_sums(groups, pad_to=self.cfg.n_rows, segments=self.n_bins)

    def _histograms(self, gh, rows: dict, prev_hist: dict, prev_rows: dict) -> dict:
        hist, direct = {}, {}

        def make(node: int, r: np.ndarray) -> PackedEncryptedVector:
            if node not in direct:
                direct[node] = self._direct(gh, r)
            return direct[node]

        for k, r in rows.items():
            if k == 0:
                hist[k] = make(k, r)
                continue
            parent = (k - 1) // 2
            sibling = k + 1 if k % 2 else k - 1
            sib_rows = rows.get(sibling)
            if sib_rows is None:
                sib_rows = np.setdiff1d(prev_rows[parent], r, assume_unique=True)
            if len(r) <= len(sib_rows):
                hist[k] = make(k, r)
            else:                                  # the larger child: parent − smaller sibling
                hist[k] = prev_hist[parent].minus_subset(make(sibling, sib_rows))
        return hist

    def _send_histograms(self, tree: int, depth: int, hist: dict, rows: dict) -> dict:
        """Entry 0 = all non-missing rows; then the candidates in a fresh secret order."""
        picks, sizes, perms = [], [], {}
        for k, vec in hist.items():
            node_sizes = []
            for f, nb in enumerate(self.n_bins):
                bins = candidate_bins(self.codes[rows[k], f], nb).tolist()
                self._rng.shuffle(bins)
                perms[(k, f)] = bins
                start = int(self.starts[f])
                picks.append(vec.take([start + nb - 1] + [start + b for b in bins]))
                node_sizes.append(1 + len(bins))
            sizes.append(node_sizes)
        packed = PackedEncryptedVector.concat(picks).compress(workers=self.workers)
        self.t.send(self.active, msg.Histograms(tree=tree, depth=depth, sizes=np.asarray(sizes, np.int64),
                                                sums=packed))
        return perms

    # -- splits ------------------------------------------------------------------------------
    def _answer_splits(self, tree: int, depth: int, rows: dict, perms: dict) -> None:
        m = self.t.recv(self.active, msg.Splits)
        n = len(m.node_ids)
        if (m.tree, m.depth) != (tree, depth) or not (len(m.features) == len(m.entries) == len(m.default_left) == n):
            raise ProtocolError(f"{self.active} sent malformed split choices for tree {tree} depth {depth}")
        lefts = []
        for k, f, e, dl in zip(m.node_ids.tolist(), m.features.tolist(), m.entries.tolist(),
                               np.asarray(m.default_left, bool).tolist()):
            bins = perms.get((k, f))
            if bins is None or not 0 <= e <= len(bins):
                raise ProtocolError(f"{self.active} chose entry {e} of feature {f} at node {k}, which was not offered")
            threshold = np.inf if e == 0 else float(self.edges[f][bins[e - 1]])
            self.lookup[(tree, k)] = (f, threshold, dl)
            lefts.append(go_left(self.x[rows[k], f], threshold, dl))
        left = np.concatenate(lefts) if lefts else np.zeros(0, bool)
        self.t.send(self.active, msg.LeftRows(tree=tree, depth=depth, left=left))


def go_left(values: np.ndarray, threshold: float, default_left: bool) -> np.ndarray:
    """The split rule: ``x <= threshold`` goes left; a missing value follows ``default_left``."""
    missing = np.isnan(values)
    with np.errstate(invalid="ignore"):
        return np.where(missing, default_left, values <= threshold)
