"""A plaintext reference implementation of hetero SecureBoost's algorithm, written out plainly
(recursive growth, loops over entries) to check the federated trees split for split: same
binning, same fixed-point g/h, same gains, same row and column samples (drawn with the same
``Sampling`` calls from the same seeded generator, in the same order), same early stopping.
"""
from __future__ import annotations

import numpy as np
from scipy.special import softmax

from parties.transport.inprocess import InProcessNetwork
from vfl.holdout import validation_split
from vfl.secureboost import ActiveSecureBoostClassifier, PassiveSecureBoost
from vfl.secureboost.binning import MISSING, bin_columns
from vfl.secureboost.sampling import Sampling

PARAMS = dict(n_estimators=3, max_depth=3, learning_rate=0.3, max_bins=16, min_child_weight=1.0,
              reg_lambda=1.0, gamma=0.0, frac_bits=32)


def _gain(gl, hl, g, h, p):
    s = 2.0 ** -p["frac_bits"]
    glf, hlf, gf, hf = gl * s, hl * s, g * s, h * s
    grf, hrf = gf - glf, hf - hlf
    lam = p["reg_lambda"]
    if not ((hl > 0).all() and (hl < h).all() and hlf.sum() >= p["min_child_weight"]
            and hrf.sum() >= p["min_child_weight"]):
        return -np.inf
    return 0.5 * np.sum(glf * glf / (hlf + lam) + grf * grf / (hrf + lam) - gf * gf / (hf + lam)) - p["gamma"]


def _best_feature(codes, edges, gi, hi, g, h, p):
    """Entries in natural order: all non-missing (threshold +inf), then each non-empty bin but the last."""
    ok = codes != MISSING
    present = sorted(set(codes[ok].tolist()))
    entries = [(np.inf, gi[ok].sum(axis=0), hi[ok].sum(axis=0))]
    entries += [(float(edges[b]), gi[ok & (codes <= b)].sum(axis=0), hi[ok & (codes <= b)].sum(axis=0))
                for b in present[:-1]]
    g_miss, h_miss = g - entries[0][1], h - entries[0][2]
    best = None
    for thr, gl, hl in entries:
        for default_left, (a, b) in ((False, (gl, hl)), (True, (gl + g_miss, hl + h_miss))):
            gain = _gain(a, b, g, h, p)
            if gain > 0 and (best is None or gain > best[0]):
                best = (gain, thr, default_left)
    return best


def _gradients(loss, scores, y):
    if loss == "logistic":
        prob = 1 / (1 + np.exp(-scores))
        return (prob - y)[:, None], (prob * (1 - prob))[:, None]
    if loss == "squared":
        return (scores - y)[:, None], np.ones((len(y), 1))
    prob = softmax(scores, axis=1)
    onehot = np.eye(scores.shape[1])[y.astype(int)]
    return prob - onehot, prob * (1 - prob)


def _loss(loss, scores, y):
    if loss == "logistic":
        return float(np.mean(np.logaddexp(0, scores) - y * scores))
    if loss == "squared":
        return float(0.5 * np.mean((scores - y) ** 2))
    z = scores - scores.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-np.mean(logp[np.arange(len(y)), y.astype(int)]))


def _base(loss, y, n_classes):
    if loss == "logistic":
        return float(np.log(y.mean() / (1 - y.mean())))
    if loss == "squared":
        return float(y.mean())
    return np.log(np.bincount(y.astype(int), minlength=n_classes) / len(y)).tolist()


def reference_fit(parts, y, p, loss="logistic", n_classes=2):
    """parts: list of feature arrays in party order (active first). Returns (base, trees)."""
    binned = [bin_columns(x, p["max_bins"]) for x in parts]
    rng = np.random.default_rng(p.get("random_state"))
    train, val = validation_split(len(y), early_stopping=p.get("early_stopping", False),
                                  fraction=p.get("validation_fraction", 0.1), rng=rng)
    sampling = Sampling(**{k: p[k] for k in ("subsample", "colsample_bytree", "goss", "top_rate", "other_rate")
                           if k in p})
    base = _base(loss, y[train], n_classes)
    scores = np.tile(base, (len(y), 1)) if loss == "softmax" else np.full(len(y), base)
    trees, best, best_trees, stale = [], np.inf, 0, 0
    for t in range(p["n_estimators"]):
        g, h = _gradients(loss, scores, y)
        sample = sampling.rows(train, np.abs(g).sum(axis=1), rng)
        usable = binned[:1] if t < p.get("first_k_trees_active_only", 0) else binned
        columns = sampling.columns([codes.shape[1] for codes, _ in usable], rng)
        w = np.zeros(len(y))
        w[sample.rows] = sample.weight
        gi = np.rint(np.ldexp(g * w[:, None], p["frac_bits"])).astype(np.int64)
        hi = np.rint(np.ldexp(h * w[:, None], p["frac_bits"])).astype(np.int64)
        tree, leaf = {}, np.zeros(len(y), np.int64)
        _grow(0, 0, np.arange(len(y)), w > 0, parts, usable, columns, gi, hi, p, tree, leaf)
        values = np.array([tree[k][1] for k in leaf])
        scores = scores + (values if loss == "softmax" else values.reshape(-1))
        trees.append(tree)
        if p.get("early_stopping"):
            current = _loss(loss, scores[val], y[val])
            if current < best - p.get("tol", 1e-7):
                best, best_trees, stale = current, len(trees), 0
            else:
                stale += 1
            if stale >= p.get("n_iter_no_change", 5):
                break
    return base, trees[:best_trees] if p.get("early_stopping") else trees


def _grow(k, depth, rows, carries, parts, binned, columns, gi, hi, p, tree, leaf):
    sampled = rows[carries[rows]]
    g, h = gi[sampled].sum(axis=0), hi[sampled].sum(axis=0)
    s = 2.0 ** -p["frac_bits"]
    best = None
    if depth < p["max_depth"] and h.sum() * s >= 2 * p["min_child_weight"] and (h > 0).all() and len(sampled) >= 2:
        for party, (codes, edges) in enumerate(binned):
            for f in columns[party].tolist():
                found = _best_feature(codes[sampled, f], edges[f], gi[sampled], hi[sampled], g, h, p)
                if found and (best is None or found[0] > best[0]):
                    best = (found[0], party, f, found[1], found[2])
    if best is None:
        denom = h * s + p["reg_lambda"]
        value = np.where(denom > 0, -p["learning_rate"] * (g * s) / np.where(denom > 0, denom, 1), 0.0)
        tree[k] = ("leaf", tuple(value.tolist()) if len(value) > 1 else float(value[0]))
        leaf[rows] = k
        return
    _, party, f, thr, dl = best
    tree[k] = ("split", party, f, thr, dl)
    left = _go_left(parts[party][rows, f], thr, dl)
    _grow(2 * k + 1, depth + 1, rows[left], carries, parts, binned, columns, gi, hi, p, tree, leaf)
    _grow(2 * k + 2, depth + 1, rows[~left], carries, parts, binned, columns, gi, hi, p, tree, leaf)


def _go_left(v, thr, dl):
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(v), dl, v <= thr)


def reference_predict(base, trees, parts):
    n = len(parts[0])
    z = np.tile(base, (n, 1)) if isinstance(base, list) else np.full(n, base)
    for tree in trees:
        for i in range(n):
            k = 0
            while tree[k][0] == "split":
                _, party, f, thr, dl = tree[k]
                k = 2 * k + 1 if _go_left(parts[party][i:i + 1, f], thr, dl)[0] else 2 * k + 2
            z[i] += tree[k][1]
    return z


# -- helpers -------------------------------------------------------------------------------------
def make_data(n=200, n_features=(3, 3), missing=0.05, seed=0, n_classes=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, sum(n_features)))
    x[:, 1] = np.round(x[:, 1])                      # few distinct values: empty bins in nodes
    x[:, -2] = np.round(2 * x[:, -2]) / 2            # (one column at the active, one at a passive)
    signal = x[:, 0] + x[:, -1] - 0.7 * x[:, 2] + x[:, -2] ** 2 - 1 + 0.3 * rng.normal(size=n)
    if n_classes == 2:
        y = (signal > 0).astype(float)
    else:                                            # classes by quantiles of the signal
        y = np.searchsorted(np.quantile(signal, np.linspace(0, 1, n_classes + 1)[1:-1]), signal).astype(float)
    x[rng.random(x.shape) < missing] = np.nan
    bounds = np.cumsum((0,) + tuple(n_features))
    return [x[:, a:b] for a, b in zip(bounds[:-1], bounds[1:])], y


def federated_tree(model, passives, t):
    """The federated tree in the reference's shape (thresholds from each party's own part)."""
    tree, out = model.trees_[t], {}
    for k in np.flatnonzero(tree.owner >= -1).tolist():
        owner = int(tree.owner[k])
        if owner == -1:
            v = tree.value[k]
            out[k] = ("leaf", tuple(v.tolist()) if np.ndim(v) else float(v))
        elif owner == 0:
            out[k] = ("split", 0, int(tree.feature[k]), float(tree.threshold[k]), bool(tree.default_left[k]))
        else:
            f, thr, dl = passives[owner - 1].lookup_[(t, k)]
            out[k] = ("split", owner, f, thr, dl)
            if (f, dl) != (int(tree.feature[k]), bool(tree.default_left[k])):
                raise AssertionError(f"tree {t} node {k}: the active and the passive disagree")
    return out


def fit_federated(parts, y, sk, names=("bank", "insurer", "telco"), cls=ActiveSecureBoostClassifier, **params):
    names = list(names)[:len(parts)]
    net = InProcessNetwork(names, timeout=60)
    active = cls(**{**PARAMS, **params}, verbose=False, workers=1)
    passives = [PassiveSecureBoost(allow_insecure_key_size_for_tests=True, workers=1) for _ in parts[1:]]
    roles = {names[0]: lambda t: active.fit(parts[0], y, transport=t, passives=names[1:], private_key=sk)}
    for name, model, x in zip(names[1:], passives, parts[1:]):
        roles[name] = lambda t, m=model, x=x: m.fit(x, transport=t, active=names[0])
    net.run(roles)
    return net, active, passives


def predict_federated(net, active, passives, parts):
    names = net.parties
    roles = {names[0]: lambda t: active.decision_function(parts[0], transport=t, passives=names[1:])}
    for name, model, x in zip(names[1:], passives, parts[1:]):
        roles[name] = lambda t, m=model, x=x: m.serve_scores(x, transport=t, active=names[0])
    return net.run(roles)[names[0]]
