"""The label party's side of hetero SecureBoost training (protocol steps: docs/secureboost.md).

Per tree: compute g, h from the current scores, draw the tree's rows and columns, encrypt each
sampled row's (g, h) pairs (one per output) as one packed ciphertext (CRT fast path) and send
them to every passive with the columns it may use. Per depth: tell the passives which rows
(sampled or not) sit in which node to split; find the best split of its own columns in the clear; decrypt
each passive's histograms and evaluate their candidates with the same gain; send each passive
the nodes it won (feature, entry, default direction) and receive the left rows.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from protocols.paillier import PackedEncryptedVector
from protocols.paillier.vector import prefetch_randomizers
from vfl.errors import ProtocolError
from vfl.progress import PhaseClock, progress
from vfl.secureboost import messages as msg
from vfl.secureboost.binning import MISSING
from vfl.secureboost.losses import gradients, mean_loss
from vfl.secureboost.sampling import EarlyStopping, RowSample, Sampling
from vfl.secureboost.setup import MAX_BINS, compressed_slots, slot_bits
from vfl.secureboost.splits import Best, TreeParams, best_entry, candidate_bins, child_ids, leaf_value, own_entries

LOGISTIC_INT_BITS = 1    # logistic and softmax losses: |g| <= 1, 0 <= h <= 1/4


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
    def empty(cls, max_depth: int, n_outputs: int = 1) -> "Tree":
        """``value`` is (nodes,) for one output and (nodes, K) for K outputs."""
        size = 2 ** (max_depth + 1) - 1
        value = np.zeros(size) if n_outputs == 1 else np.zeros((size, n_outputs))
        return cls(owner=np.full(size, -2), feature=np.full(size, -1), threshold=np.full(size, np.nan),
                   default_left=np.zeros(size, bool), value=value, gain=np.zeros(size))


@dataclasses.dataclass
class Choice:
    owner: int
    feature: int
    best: Best


@dataclasses.dataclass(frozen=True)
class Boosting:
    """The boosting options the active trainer follows (validated by the estimator)."""
    n_estimators: int
    learning_rate: float
    loss: str = "logistic"
    int_bits: int = LOGISTIC_INT_BITS     # |g| < 2^int_bits before any GOSS weight
    n_outputs: int = 1                    # K: (g, h) pairs per row, values per leaf
    active_only_trees: int = 0
    sampling: Sampling = Sampling()
    n_iter_no_change: int = 5             # early stopping, when there are validation rows
    tol: float = 1e-7
    noise: Any = None                     # vfl.privacy.GradientNoise: label DP on g (then int_bits holds it)
    noise_bound: float = 0.0              # noisy g is clipped to ±noise_bound (after the noise: post-processing)


@dataclasses.dataclass
class TreeJob:
    """What one tree is grown on: its row sample, its columns and the fixed-point g, h."""
    index: int
    rows: np.ndarray                      # ascending rows whose g, h are used (and encrypted)
    carries: np.ndarray                   # bool per job row: in ``rows``
    own_columns: np.ndarray
    passive_columns: dict                 # passive name -> its column indices for this tree
    gi: np.ndarray                        # (n, K) int64, zero outside the sample
    hi: np.ndarray
    int_bits: int

    @property
    def peers(self) -> list[str]:
        return list(self.passive_columns)


class ActiveTrainer:
    def __init__(self, transport, passives: list[str], private_key, params: TreeParams, x: np.ndarray,
                 codes: np.ndarray, edges: list[np.ndarray], y: np.ndarray, boosting: Boosting, *,
                 passive_features: dict, rng: np.random.Generator, train_rows: np.ndarray | None = None,
                 val_rows: np.ndarray | None = None, verbose: bool = True, workers: int | None = None,
                 checkpoint=None):
        self.t, self.passives, self.sk, self.p, self.b = transport, list(passives), private_key, params, boosting
        self.x, self.codes, self.edges, self.y = x, codes, edges, y
        self.n_bins = [len(e) + 1 for e in edges]
        self.passive_features, self.rng, self.verbose, self.workers = passive_features, rng, verbose, workers
        self.train = np.arange(len(y)) if train_rows is None else np.asarray(train_rows, np.int64)
        self.val = np.zeros(0, np.int64) if val_rows is None else np.asarray(val_rows, np.int64)
        self.trees: list[Tree] = []
        self.tree_seconds: list[float] = []
        self.train_loss: list[float] = []
        self.val_loss: list[float] = []
        self.pending = None                 # randomizers being prepared for the next tree
        self.phases = PhaseClock()          # seconds and counts per phase, for the report and the bench
        self.checkpoint = checkpoint        # vfl.checkpoint.Checkpoint: where to start, where to save

    def _restore(self, state: dict, scores: np.ndarray, stopper) -> tuple[np.ndarray, bool]:
        """Continue after the trees a checkpoint holds: the trees, scores, losses, the early
        stopping record and the sampling generator's state. Returns the scores and whether the
        fit had already stopped."""
        self.trees = [Tree(**{k: np.asarray(v) for k, v in t.items()}) for t in state["trees"]]
        self.tree_seconds, self.train_loss = list(state["tree_seconds"]), list(state["train_loss"])
        self.val_loss = list(state["val_loss"])
        if stopper is not None:
            stopper.best, stopper.best_trees, stopper.stale = state["stopper"]
        self.rng.bit_generator.state = state["rng"]
        restored = np.asarray(state["scores"], float)
        if restored.shape != scores.shape:
            raise ValueError(f"the checkpoint holds scores of shape {restored.shape}, the fit {scores.shape}")
        return restored, bool(state["stopped"])

    def _save(self, scores: np.ndarray, stopper, stopped: bool) -> None:
        if self.checkpoint is not None:
            self.checkpoint.save(len(self.trees), {
                "trees": [dataclasses.asdict(t) for t in self.trees], "scores": scores,
                "tree_seconds": self.tree_seconds, "train_loss": self.train_loss, "val_loss": self.val_loss,
                "stopper": None if stopper is None else [stopper.best, stopper.best_trees, stopper.stale],
                "rng": self.rng.bit_generator.state, "stopped": stopped})

    def run(self, base_score) -> list[Tree]:
        n, k = len(self.y), self.b.n_outputs
        scores = np.full(n, base_score) if k == 1 else np.tile(np.asarray(base_score, float), (n, 1))
        stopper = EarlyStopping(self.b.n_iter_no_change, self.b.tol) if len(self.val) else None
        stopped, state = False, self.checkpoint.state if self.checkpoint is not None else None
        if state is not None:
            scores, stopped = self._restore(state, scores, stopper)
        first = len(self.trees)
        todo = range(first, self.b.n_estimators) if not stopped else range(0)
        try:
            for t in progress(todo, desc="SecureBoost trees", disable=not self.verbose, initial=first,
                              total=self.b.n_estimators):
                start = time.perf_counter()
                job = self._job(t, scores)
                self._send_gradients(job)
                tree, leaf_of_row = self._grow(job)
                scores = scores + tree.value[leaf_of_row]
                self.trees.append(tree)
                self.tree_seconds.append(time.perf_counter() - start)
                self.train_loss.append(mean_loss(self.b.loss, scores[self.train], self.y[self.train]))
                if stopper is not None:
                    self.val_loss.append(mean_loss(self.b.loss, scores[self.val], self.y[self.val]))
                    stopped = stopper.update(self.val_loss[-1], len(self.trees))
                self._save(scores, stopper, stopped)
                if stopped:
                    break
        finally:                            # early stop or a failure: the next tree's randomizers are not needed
            if self.pending is not None:
                self.pending.cancel()
                self.pending = None
        if stopper is not None:
            self.trees = self.trees[:stopper.best_trees]      # the passives drop the later trees too
        self.t.broadcast(msg.FitEnd(n_trees=len(self.trees)), self.passives)
        return self.trees

    # -- what a tree is grown on --------------------------------------------------------------
    def _job(self, t: int, scores: np.ndarray) -> TreeJob:
        n, f, b = len(self.y), self.p.frac_bits, self.b
        g, h = gradients(b.loss, scores, self.y)
        if b.noise is not None:              # label DP: every later use of g (own splits, GOSS, [[g]], leaves) sees it
            g = np.clip(g + b.noise.draw(t, g.shape), -b.noise_bound, b.noise_bound)
        g, h = g.reshape(n, -1), h.reshape(n, -1)
        sample: RowSample = b.sampling.rows(self.train, np.abs(g).sum(axis=1), self.rng)
        top = float(np.abs(np.rint(np.ldexp(g[sample.rows], f))).max()) if b.loss == "squared" else 0.0
        if top >= 2.0 ** (b.int_bits + f):             # the encoded |g| must stay below 2^int_bits
            raise ValueError(f"a gradient reached |g| = {np.ldexp(top, -f):.4g}, beyond the declared "
                             f"gradient_int_bits={b.int_bits}: raise it or rescale the labels")
        peers = [] if t < b.active_only_trees else self.passives
        counts = [self.x.shape[1]] + [self.passive_features[p] for p in peers]
        columns = b.sampling.columns(counts, self.rng)
        weight = np.zeros(n)
        weight[sample.rows] = sample.weight
        gi = np.rint(np.ldexp(g * weight[:, None], f)).astype(np.int64)
        hi = np.rint(np.ldexp(h * weight[:, None], f)).astype(np.int64)
        passive_columns = {p: c for p, c in zip(peers, columns[1:]) if len(c)}    # no columns: not asked
        return TreeJob(t, sample.rows, weight > 0, columns[0], passive_columns, gi, hi,
                       b.int_bits + b.sampling.goss_extra_bits)

    def _send_gradients(self, job: TreeJob) -> None:
        """[[g, h]] of the sampled rows, one ciphertext of 2K slots each, to every passive."""
        if not job.peers:
            return
        rows, f = job.rows, self.p.frac_bits
        pairs = np.ldexp(np.stack([job.gi[rows], job.hi[rows]], axis=2).reshape(-1).astype(np.float64), -f)
        # every tree samples the same number of rows; a failing result() leaves the handle for
        # run()'s cleanup to cancel
        randomizers = self.pending.result() if self.pending is not None else None
        self.pending = None
        with self.phases("encryption", len(rows)):
            gh = PackedEncryptedVector.encrypt(self.sk, pairs, frac_bits=f, int_bits=job.int_bits,
                                               sum_terms=len(rows), slots=2 * self.b.n_outputs,
                                               workers=self.workers, randomizers=randomizers)
        for name, cols in job.passive_columns.items():
            self.t.send(name, msg.GradHess(tree=job.index, gh=gh, rows=rows.astype(np.int64),
                                           features=cols.astype(np.int64)))
        if job.index + 1 < self.b.n_estimators:
            # The next tree's randomizers do not depend on its gradients: the pool makes them
            # while the passives build histograms (decryptions meanwhile run in this process).
            self.pending = prefetch_randomizers(self.sk, len(rows), workers=self.workers)

    # -- one tree ------------------------------------------------------------------------------
    def _grow(self, job: TreeJob) -> tuple[Tree, np.ndarray]:
        tree = Tree.empty(self.p.max_depth, self.b.n_outputs)
        node_of_row = np.zeros(len(self.y), np.int64)
        self.entries = {name: {} for name in job.peers}   # per passive: node -> feature -> (g, h) entries
        frontier = [0]
        for depth in range(self.p.max_depth + 1):
            inside = {k: job.carries & (node_of_row == k) for k in frontier}
            sums = {k: (job.gi[m].sum(axis=0), job.hi[m].sum(axis=0)) for k, m in inside.items()}
            to_split = [k for k in frontier if depth < self.p.max_depth and self._splittable(*sums[k])
                        and np.count_nonzero(inside[k]) >= 2]
            request = np.where(np.isin(node_of_row, to_split), node_of_row, -1).astype(np.int32)
            self.t.broadcast(msg.Nodes(tree=job.index, depth=depth, node_ids=np.asarray(to_split, np.int64),
                                       node_of_row=request), job.peers)
            choices, lefts = {}, {}
            if to_split:
                choices = self._choices(job, depth, to_split, inside, sums)
                lefts = self._exchange_splits(job, depth, choices, node_of_row)
            frontier = self._apply(job, tree, frontier, choices, lefts, node_of_row, sums)
            if not to_split:
                break
        return tree, node_of_row

    def _splittable(self, g: np.ndarray, h: np.ndarray) -> bool:
        return float(h.sum()) * 2.0 ** -self.p.frac_bits >= 2 * self.p.min_child_weight and bool((h > 0).all())

    # -- finding the best split per node ------------------------------------------------------
    def _choices(self, job: TreeJob, depth, to_split, inside: dict, sums) -> dict[int, Choice]:
        """``inside``: per node, the mask of its sampled rows."""
        best: dict[int, Choice] = {}
        for k in to_split:
            rows = np.flatnonzero(inside[k])
            for f, gl, hl in own_entries(self.codes[rows], job.gi[rows], job.hi[rows], self.n_bins, job.own_columns):
                self._consider(best, k, 0, int(f), gl, hl, sums[k])
        for p, name in enumerate(self.passives, start=1):
            if name not in job.passive_columns:
                continue
            columns, done, entries = job.passive_columns[name], 0, {}
            while done < len(columns):                    # the passive sends blocks of columns in order
                with self.phases("waiting for histograms"):
                    hist = self.t.recv(name, msg.Histograms)
                width = np.asarray(hist.sizes).shape[-1] if np.asarray(hist.sizes).ndim == 2 else 0
                if hist.first != done or not 1 <= width <= len(columns) - done:
                    raise ProtocolError(f"{name} sent histograms of columns out of order for tree {job.index} "
                                        f"depth {depth}")
                block = columns[done:done + width]
                for k, f, gl, hl in self._decode(name, hist, job, depth, to_split, inside, block, entries):
                    self._consider(best, k, p, f, gl, hl, sums[k])
                done += width
            self.entries[name] = entries
        return best

    def _consider(self, best: dict, node: int, owner: int, feature: int, gl, hl, sums) -> None:
        found = best_entry(gl, hl, sums[0], sums[1], self.p)
        if found is not None and (node not in best or found.gain > best[node].best.gain):
            best[node] = Choice(owner, feature, found)

    def _decode(self, name: str, hist: msg.Histograms, job: TreeJob, depth: int, to_split: list, inside: dict,
                columns: np.ndarray, own: dict):
        """Every node to split's entries of each of the block's ``columns``, in the node's own
        candidate order: received (the root, smaller children) or its parent's minus its
        sibling's (larger children), restricted to its own candidates by the passive's masks;
        also kept in ``own`` (node → feature → entries) for the next level."""
        width, known = 2 * self.b.n_outputs, self.entries[name]
        parents = sorted({(k - 1) // 2 for k in to_split}) if depth else []
        expected = [0] if depth == 0 else [min(2 * q + 1, 2 * q + 2, key=lambda c: (inside[c].sum(), c))
                                          for q in parents]
        sizes, masks = np.asarray(hist.sizes), np.asarray(hist.masks)
        if (hist.tree, hist.depth) != (job.index, depth) or not np.array_equal(hist.node_ids, expected) \
                or sizes.dtype.kind not in "iu" or sizes.shape != (len(expected), len(columns)) \
                or (sizes < 1).any() or (sizes > MAX_BINS + 1).any() or hist.sums is None \
                or len(hist.sums) != width * sum(sizes.ravel().tolist()) or masks.dtype != bool:
            raise ProtocolError(f"{name} sent histograms that do not match tree {job.index} depth {depth}")
        if depth and any(sizes[i, j] != len(known[q][f][0]) for i, q in enumerate(parents)
                         for j, f in enumerate(columns.tolist())):
            raise ProtocolError(f"{name} sent histograms over other candidates than their parents'")
        expected_offset = len(job.rows) << (job.int_bits + self.p.frac_bits)    # one offset 2^m per sampled row
        bits = slot_bits(int_bits=job.int_bits, frac_bits=self.p.frac_bits, sample_rows=len(job.rows))
        slots = compressed_slots(self.sk.public_key, bits, width)
        if hist.sums.public_key != self.sk.public_key or hist.sums.offset != expected_offset \
                or hist.sums.exponent != self.p.frac_bits:
            raise ProtocolError(f"{name} sent histograms under another key, offset or scale")
        if (hist.sums.slot_bits, hist.sums.slots) != (bits, slots):        # decrypts only this layout
            raise ProtocolError(f"{name} sent histograms packed {hist.sums.slots} × {hist.sums.slot_bits} bits, "
                                f"not {slots} × {bits}")
        busy = self.pending is not None and self.pending.running()   # the pool still makes randomizers
        workers = 1 if busy else self.workers
        try:
            with self.phases("decryption", len(hist.sums.ciphertexts)):
                values = np.asarray(hist.sums.decrypt_ints(self.sk, workers=workers), dtype=np.int64)
            values = values.reshape(-1, width)
        except OverflowError:
            raise ProtocolError(f"{name} sent histograms whose plaintexts overflow their slots") from None
        received, pos = {}, 0
        for k, row in zip(expected, sizes.tolist()):
            for f, size in zip(columns.tolist(), row):
                block = values[pos:pos + size]
                pos += size
                received[(k, f)] = (block[:, 0::2], block[:, 1::2])
        if depth == 0:
            for f in columns.tolist():
                own.setdefault(0, {})[f] = received[(0, f)]
                yield 0, f, *received[(0, f)]
            return
        lengths = [len(known[(k - 1) // 2][f][0]) - 1 for k in to_split for f in columns.tolist()]
        if masks.shape != (sum(lengths),):
            raise ProtocolError(f"{name} sent candidate masks of an unexpected shape")
        masks = np.split(masks, np.cumsum(lengths)[:-1])
        for i, k in enumerate(to_split):
            q = (k - 1) // 2
            smaller = expected[parents.index(q)]
            own.setdefault(k, {})
            for j, f in enumerate(columns.tolist()):
                g, h = received[(smaller, f)]
                if k != smaller:                                  # the larger child: parent − smaller
                    g, h = known[q][f][0] - g, known[q][f][1] - h
                keep = np.concatenate([[0], 1 + np.flatnonzero(masks[i * len(columns) + j])])
                own[k][f] = (g[keep], h[keep])
                yield k, f, *own[k][f]

    # -- applying the splits -----------------------------------------------------------------
    def _exchange_splits(self, job: TreeJob, depth, choices: dict, node_of_row) -> dict[int, np.ndarray]:
        """Send each passive its won nodes; return the left mask (over all the node's rows) per node."""
        lefts = {}
        peers = [(p, name) for p, name in enumerate(self.passives, start=1) if name in job.passive_columns]
        for p, name in peers:
            won = [k for k, c in sorted(choices.items()) if c.owner == p]
            cs = [choices[k] for k in won]
            self.t.send(name, msg.Splits(tree=job.index, depth=depth, node_ids=np.asarray(won, np.int64),
                                         features=np.asarray([c.feature for c in cs], np.int64),
                                         entries=np.asarray([c.best.entry for c in cs], np.int64),
                                         default_left=np.asarray([c.best.default_left for c in cs], bool)))
        for p, name in peers:
            won = [k for k, c in sorted(choices.items()) if c.owner == p]
            with self.phases("waiting for left rows"):
                left = np.asarray(self.t.recv(name, msg.LeftRows).left, bool)
            counts = [int(np.count_nonzero(node_of_row == k)) for k in won]
            if left.shape != (sum(counts),):
                raise ProtocolError(f"{name} sent {left.shape} left flags for {sum(counts)} rows")
            for k, part in zip(won, np.split(left, np.cumsum(counts)[:-1])):
                lefts[k] = part
        return lefts

    def _apply(self, job: TreeJob, tree: Tree, frontier, choices, lefts, node_of_row, sums) -> list[int]:
        nxt = []
        for k in frontier:
            c = choices.get(k)
            if c is None:
                value = leaf_value(*sums[k], self.p, self.b.learning_rate)
                tree.owner[k], tree.value[k] = -1, value if self.b.n_outputs > 1 else float(value[0])
                continue
            rows = np.flatnonzero(node_of_row == k)
            if c.owner == 0:
                tree.threshold[k], left = self._own_left(rows, job.carries[rows], c)
            else:
                left = lefts[k]
            tree.owner[k], tree.feature[k], tree.gain[k] = c.owner, c.feature, c.best.gain
            tree.default_left[k] = c.best.default_left
            a, b = child_ids(k)
            node_of_row[rows[left]], node_of_row[rows[~left]] = a, b
            nxt += [a, b]
        return nxt

    def _own_left(self, rows: np.ndarray, carries: np.ndarray, c: Choice) -> tuple[float, np.ndarray]:
        """This party's threshold for the chosen entry (candidates from the sampled rows, as in
        ``own_entries``), and all the node's rows routed by bin code."""
        f, e = c.feature, c.best.entry
        col = self.codes[rows, f]
        if e == 0:
            threshold, left = np.inf, col != MISSING
        else:
            b = int(candidate_bins(col[carries], self.n_bins[f])[e - 1])
            threshold, left = float(self.edges[f][b]), (col != MISSING) & (col <= b)
        return threshold, np.where(col == MISSING, c.best.default_left, left)
