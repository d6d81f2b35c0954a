"""A SecureBoost passive that infers labels from the row partitions it is sent.

What the passive sees (docs/secureboost.md): for every tree and depth, the node of every
training row (``sbt.nodes``). Rows that share a node share a path, and the active chose the
path's splits to separate the labels. Given the labels of a few rows (``known_share`` of them:
customers it also serves, say), the attacker fits a logistic regression on

- **baseline**: its own columns only, what it could do without the protocol;
- **attack**: its own columns plus a one-hot code of every (tree, depth, node) a row was in.

Both are scored by AUC against the true labels of the rows it did not know. The leak is
attack AUC − baseline AUC.

Part of that gain is what the trained model says of the population, not of these rows: a
split the active chose on the passive's column says "this threshold separates the labels", and
holds for customers the model never saw. Given the passive's own splits (``own_splits``: its
model part's (column, threshold, missing-go-left) per node), a third attacker uses its columns
plus those splits' indicators, which it could compute for any row. ``gain_over_splits`` =
attack AUC − that AUC: what the partitions of the training rows add beyond the model.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from vfl.secureboost import messages as msg


def node_codes(received) -> sp.csr_matrix:
    """One-hot (rows × (tree, depth, node)) of the partitions in the ``sbt.nodes`` messages a
    passive received (``received``: messages, or (sender, message) pairs)."""
    blocks = []
    for item in received:
        m = item[1] if isinstance(item, tuple) else item
        if not isinstance(m, msg.Nodes):
            continue
        node = np.asarray(m.node_of_row, dtype=np.int64)
        inside = node >= 0                                       # rows in a node still to split
        values, index = np.unique(node[inside], return_inverse=True)
        rows = np.flatnonzero(inside)
        blocks.append(sp.csr_matrix((np.ones(len(rows)), (rows, index)), shape=(len(node), len(values))))
    if not blocks:
        raise ValueError("no sbt.nodes message among those received: nothing to attack")
    return sp.hstack(blocks).tocsr()


def split_indicators(own_x, own_splits) -> np.ndarray:
    """Per row, 1 where it goes left at each of the passive's own splits (column, threshold,
    missing goes left), as a passive can compute for any row from its model part."""
    x = np.asarray(own_x, dtype=np.float64)
    columns = []
    for feature, threshold, missing_left in own_splits:
        v = x[:, int(feature)]
        columns.append(np.where(np.isnan(v), bool(missing_left), v <= threshold))
    return np.column_stack(columns).astype(np.float64) if columns else np.zeros((len(x), 0))


def label_inference(received, own_x, y_true, *, known_share: float = 0.01, seed: int = 0,
                    own_splits=None) -> dict:
    """The attack above on one run: ``own_x`` the passive's columns of the training rows (in
    the job's training order), ``y_true`` their true labels (for scoring only), ``own_splits``
    the passive's splits for the third attacker (optional)."""
    y = np.asarray(y_true).astype(int)
    codes = node_codes(received)
    if codes.shape[0] != len(y):
        raise ValueError(f"{codes.shape[0]} rows in the partitions, {len(y)} labels")
    rng = np.random.default_rng(seed)                           # the attacker's pick, not a secret
    known = np.zeros(len(y), bool)
    for c in np.unique(y):                                      # at least one known row of each class
        rows = np.flatnonzero(y == c)
        known[rng.choice(rows, size=max(1, int(round(known_share * len(rows)))), replace=False)] = True
    own = StandardScaler().fit_transform(np.nan_to_num(np.asarray(own_x, dtype=np.float64)))
    both = sp.hstack([sp.csr_matrix(own), codes]).tocsr()
    out = {"known_rows": int(known.sum()), "rows_scored": int((~known).sum()), "known_share": known_share}
    attackers = [("baseline", own), ("attack", both)]
    if own_splits is not None:
        splits = sp.csr_matrix(split_indicators(own_x, own_splits))
        attackers += [("splits", sp.hstack([sp.csr_matrix(own), splits]).tocsr()),
                      ("splits_attack", sp.hstack([sp.csr_matrix(own), splits, codes]).tocsr())]
    for name, features in attackers:
        model = LogisticRegression(C=1.0, max_iter=2000).fit(features[known], y[known])
        out[f"{name}_auc"] = float(roc_auc_score(y[~known], model.predict_proba(features[~known])[:, 1]))
    out["gain"] = out["attack_auc"] - out["baseline_auc"]
    if own_splits is not None:
        out["own_splits"] = len(own_splits)
        out["gain_over_splits"] = out.pop("splits_attack_auc") - out["splits_auc"]
    return out
