"""A feature party's side of hetero SecureBoost training. It never sees labels, g, h, gains,
leaf weights or the other parties' splits; see docs/secureboost.md for what it does learn.

Per tree: receive [[g_i, h_i]] (one packed ciphertext per sampled row, K pairs for K outputs)
and the columns it may use. Per depth: receive the rows of the nodes to split; sum, over
sampled rows, the cumulative histogram of every column of the tree for the root, and deeper
for one child per parent (the one with fewer sampled rows, over the parent's candidates; the
active subtracts for the other child); send, per (node, column), the non-missing sum then the
candidates' left sums in bin order, packed and re-randomized, with which of the parent's
candidates are each node's own; for the nodes it wins, map the entry back to a threshold kept
in its private lookup table and return which of the node's rows (sampled or not) go left.
"""
from __future__ import annotations

import numpy as np

from protocols.paillier import PackedEncryptedVector
from vfl.errors import ProtocolError
from vfl.progress import PhaseClock
from vfl.secureboost import messages as msg
from vfl.secureboost.binning import MISSING
from vfl.secureboost.splits import candidate_bins

BLOCK_ADDITIONS = 1_000_000     # ciphertext products per histogram message (≈ 4 s of one core)


class PassiveTrainer:
    def __init__(self, transport, active: str, setup: msg.Setup, codes: np.ndarray, edges: list[np.ndarray], *,
                 max_trees: int, workers: int | None = None, checkpoint=None):
        self.t, self.active, self.cfg = transport, active, setup
        self.codes, self.edges, self.workers, self.max_trees = codes, edges, workers, max_trees
        self.n_bins = [len(e) + 1 for e in edges]
        self.lookup: dict[tuple[int, int], tuple[int, float, bool]] = {}
        self.checkpoint = checkpoint        # vfl.checkpoint.Checkpoint: where to start, where to save
        self.phases = PhaseClock()          # seconds and counts per phase, reported back with the job
        self.served: list[int] = []         # the trees this party took part in
        self.start = checkpoint.round if checkpoint is not None else 0     # the first tree still to come
        state = checkpoint.state if checkpoint is not None else None
        if state is not None:
            self.lookup = {(int(t), int(k)): (int(f), float(thr), bool(dl)) for t, k, f, thr, dl in state["lookup"]}
            self.served = [int(t) for t in state["served"]]

    def _save(self, round_: int, *, open_ended: bool) -> None:
        """This party's state changes only in the trees it serves: after one, its checkpoint
        stands for every later round until the next g/h arrives (``open_ended``); when g/h of
        tree ``t`` arrives, a closed checkpoint at round ``t`` ends that range."""
        if self.checkpoint is not None:
            lookup = [[t, k, f, thr, dl] for (t, k), (f, thr, dl) in sorted(self.lookup.items())]
            self.checkpoint.save(round_, {"lookup": lookup, "served": self.served}, open_ended=open_ended)

    # -- one tree ----------------------------------------------------------------------------
    def run(self) -> int:
        """Serve trees until ``FitEnd``; returns how many trees this party took part in (trees
        grown on the active's columns only skip it, so tree numbers may jump)."""
        served = self.served
        self._save(self.start, open_ended=True)
        while True:
            m = self.t.recv(self.active, (msg.GradHess, msg.FitEnd))
            if isinstance(m, msg.FitEnd):
                return self._end(m, served)
            last = max(served[-1] if served else -1, self.start - 1)
            if not last < m.tree < self.cfg.n_estimators:
                raise ProtocolError(f"{self.active} sent g/h for tree {m.tree}; expected a tree after {last}")
            if len(served) >= self.max_trees:
                raise ProtocolError(f"{self.active} asks for more than the {self.max_trees} trees agreed")
            rows, cols = self._check_grad_hess(m)
            self._save(m.tree, open_ended=False)
            self._tree(m.tree, m.gh, rows, cols)
            served.append(m.tree)
            self._save(m.tree + 1, open_ended=True)

    def _check_grad_hess(self, m: msg.GradHess) -> tuple[np.ndarray, np.ndarray]:
        """The tree's sampled rows and columns, as checked int64 arrays."""
        rows, cols = self._ints(m.rows, "g/h rows"), self._ints(m.features, "tree columns")
        width, gh, cfg = 2 * self.cfg.n_outputs, m.gh, self.cfg
        if rows.ndim != 1 or len(rows) != cfg.sample_rows or (np.diff(rows) <= 0).any() or rows[0] < 0 \
                or rows[-1] >= cfg.n_rows or len(gh) != width * len(rows) or gh.slots != width:
            raise ProtocolError(f"{self.active} sent g/h of {len(gh)} values for {len(rows)} rows of tree {m.tree}; "
                                f"expected {cfg.sample_rows} ascending rows of the job, {width} values in each")
        if gh.public_key != cfg.public_key or gh.exponent != cfg.frac_bits \
                or len(rows) * gh.max_slot >= 1 << gh.slot_bits:
            raise ProtocolError(f"{self.active} sent g/h of tree {m.tree} under another key or scale, "
                                "or with slots too narrow for their sum")
        if cols.ndim != 1 or len(cols) < 1 or (np.diff(cols) <= 0).any() or cols[0] < 0 \
                or cols[-1] >= len(self.n_bins):
            raise ProtocolError(f"{self.active} named columns {cols.tolist()[:8]} for tree {m.tree}; this party "
                                f"has {len(self.n_bins)}")
        return rows, cols

    def _ints(self, values, what: str) -> np.ndarray:
        """An integer array from the active (floats would index silently wrong rows)."""
        a = np.asarray(values)
        if a.dtype.kind not in "iu":
            raise ProtocolError(f"{self.active} sent {what} of type {a.dtype}, not integers")
        return a.astype(np.int64)

    def _end(self, m: msg.FitEnd, served: list[int]) -> int:
        """Keep the trees the model keeps (early stopping may drop the last ones grown)."""
        if not 0 <= m.n_trees <= self.cfg.n_estimators:
            raise ProtocolError(f"{self.active} ended training at {m.n_trees} trees of {self.cfg.n_estimators}")
        self.lookup = {key: v for key, v in self.lookup.items() if key[0] < m.n_trees}
        return sum(t < m.n_trees for t in served)

    def _tree(self, tree: int, gh: PackedEncryptedVector, sampled_rows: np.ndarray, columns: np.ndarray) -> None:
        where = np.full(self.cfg.n_rows, -1, np.int64)      # job row -> its ciphertext (-1: not sampled)
        where[sampled_rows] = np.arange(len(sampled_rows))
        cols = columns.tolist()
        prev_rows: dict[int, np.ndarray] = {}           # all rows of the previous depth's nodes
        layouts: dict[int, dict[int, np.ndarray]] = {}  # node -> feature -> its candidate bins, in order
        for depth in range(self.cfg.max_depth + 1):
            with self.phases("waiting"):
                req = self.t.recv(self.active, msg.Nodes)
            if (req.tree, req.depth) != (tree, depth):
                raise ProtocolError(f"{self.active} asked for tree {req.tree} depth {req.depth} "
                                    f"while this party is at tree {tree} depth {depth}")
            if len(req.node_ids) == 0:
                return
            rows = self._node_rows(req, prev_rows)
            sampled = {k: r[where[r] >= 0] for k, r in rows.items()}
            if min(len(r) for r in sampled.values()) < 2:
                raise ProtocolError(f"{self.active} asked to split a node with fewer than 2 sampled rows "
                                    f"(tree {tree} depth {depth})")
            mine = {k: {f: candidate_bins(self.codes[r, f], self.n_bins[f]) for f in cols} for k, r in sampled.items()}
            self._send_histograms(tree, depth, gh, where, cols, rows, sampled, prev_rows, layouts, mine)
            self._answer_splits(tree, depth, rows, mine)
            prev_rows, layouts = rows, mine
        raise ProtocolError(f"{self.active} did not end tree {tree} at the maximum depth")

    def _node_rows(self, req: msg.Nodes, prev_rows: dict) -> dict[int, np.ndarray]:
        ids, of_row = self._ints(req.node_ids, "node ids"), self._ints(req.node_of_row, "row nodes")
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
    def _direct(self, gh: PackedEncryptedVector, where: np.ndarray, rows: np.ndarray, layout: dict):
        """Padded sums over ``rows`` (sampled) per feature of ``layout``: entry 0 sums the
        non-missing rows, entry j the rows in bins 0..layout[f][j−1] (the candidate's left child)."""
        groups, segments, picks, start = [], [], [], 0
        for f, bins in layout.items():
            nb = self.n_bins[f]
            col = self.codes[rows, f]
            order = np.argsort(col, kind="stable")
            bounds = np.searchsorted(col[order], np.arange(nb + 1), side="left")
            groups.extend(where[rows[order[bounds[b]:bounds[b + 1]]]] for b in range(nb))
            segments.append(nb)
            picks += [start + nb - 1] + [start + int(b) for b in bins]
            start += nb
        with self.phases("histogram additions", len(rows) * len(layout)):
            return gh.group_sums(groups, pad_to=len(gh.ciphertexts), segments=segments,
                                 workers=self.workers).take(picks)

    def _send_histograms(self, tree, depth, gh, where, cols, rows: dict, sampled: dict, prev_rows: dict,
                         layouts: dict, mine: dict) -> None:
        """Depth 0: the root's entries over its own candidates. Deeper: per parent of the nodes
        to split, only its smaller child's entries (fewer sampled rows; ties: the left child),
        over the parent's candidates — the active has the parent's and subtracts for the larger
        child — and, per node to split and feature, which of the parent's candidates are its own.
        Sent in blocks of columns, each about ``BLOCK_ADDITIONS`` ciphertext products of work:
        the active decrypts one block while this party sums the next, and no single message
        takes longer to make than a peer waits for one."""
        if depth == 0:
            plan = [(0, sampled[0], mine[0])]
        else:
            plan = []
            for q in sorted({(k - 1) // 2 for k in rows}):
                a, b = 2 * q + 1, 2 * q + 2
                parent = prev_rows[q][where[prev_rows[q]] >= 0]
                sa = sampled[a] if a in sampled else np.setdiff1d(parent, sampled[b], assume_unique=True)
                sb = sampled[b] if b in sampled else np.setdiff1d(parent, sampled[a], assume_unique=True)
                plan.append((a, sa, layouts[q]) if len(sa) <= len(sb) else (b, sb, layouts[q]))
        sent = np.asarray([k for k, _, _ in plan], np.int64)
        per_block = max(1, BLOCK_ADDITIONS // max(sum(len(r) for _, r, _ in plan), 1))
        for first in range(0, len(cols), per_block):
            block = cols[first:first + per_block]
            entries = PackedEncryptedVector.concat([self._direct(gh, where, r, {f: layout[f] for f in block})
                                                    for _, r, layout in plan])
            masks = [np.isin(layouts[(k - 1) // 2][f], mine[k][f]) for k in sorted(rows) for f in block] \
                if depth else []
            with self.phases("packing", len(entries.ciphertexts)):
                packed = entries.compress(workers=self.workers, rerandomize=True)
            self.phases.count("ciphertexts sent", len(packed.ciphertexts))
            self.phases.count("packed squarings", len(entries.ciphertexts) * entries.slots * entries.slot_bits)
            self.t.send(self.active, msg.Histograms(
                tree=tree, depth=depth, node_ids=sent, first=first,
                sizes=np.asarray([[1 + len(layout[f]) for f in block] for _, _, layout in plan], np.int64),
                masks=np.concatenate(masks) if masks else np.zeros(0, bool), sums=packed))

    # -- splits ------------------------------------------------------------------------------
    def _answer_splits(self, tree: int, depth: int, rows: dict, layouts: dict) -> None:
        m = self.t.recv(self.active, msg.Splits)
        ids, feats, entries = (self._ints(v, "split choices") for v in (m.node_ids, m.features, m.entries))
        n = len(ids)
        if (m.tree, m.depth) != (tree, depth) or not (len(feats) == len(entries) == len(m.default_left) == n) \
                or len(np.unique(ids)) != n or np.asarray(m.default_left).dtype != bool:
            raise ProtocolError(f"{self.active} sent malformed split choices for tree {tree} depth {depth}")
        lefts = []
        for k, f, e, dl in zip(ids.tolist(), feats.tolist(), entries.tolist(), np.asarray(m.default_left).tolist()):
            bins = layouts.get(k, {}).get(f)
            if bins is None or not 0 <= e <= len(bins):
                raise ProtocolError(f"{self.active} chose entry {e} of feature {f} at node {k}, which was not offered")
            threshold = np.inf if e == 0 else float(self.edges[f][bins[e - 1]])
            self.lookup[(tree, k)] = (f, threshold, dl)
            col = self.codes[rows[k], f]     # x <= edges[b] exactly when x's bin is b or lower
            lefts.append(np.where(col == MISSING, dl, col != MISSING if e == 0 else col <= bins[e - 1]))
        left = np.concatenate(lefts) if lefts else np.zeros(0, bool)
        self.t.send(self.active, msg.LeftRows(tree=tree, depth=depth, left=left))


def go_left(values: np.ndarray, threshold: float, default_left: bool) -> np.ndarray:
    """The split rule: ``x <= threshold`` goes left; a missing value follows ``default_left``."""
    missing = np.isnan(values)
    with np.errstate(invalid="ignore"):
        return np.where(missing, default_left, values <= threshold)
