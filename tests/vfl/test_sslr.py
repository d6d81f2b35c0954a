"""The SS logistic regression training core (vfl/sslr.py) over the in-process transport: with 2
and 3 parties it reaches scikit-learn's training loss of the same objective within 10⁻³ and its
AUC within 0.002, on data whose scores leave the sigmoid recipe's interval (clipped first), and
refuses when the rows do not outnumber the columns."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from parties.transport.inprocess import InProcessNetwork
from protocols.mpc.ring import decode
from vfl.mpc import MpcSession
from vfl.sslr import fit_shared


def _table(n, columns, seed, scale):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, columns))
    x[:, 1] += 0.5 * x[:, 0]
    w = scale * rng.normal(size=columns)
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ w - 0.3)))).astype(float)
    return (x - x.mean(0)) / x.std(0), y


@pytest.mark.parametrize("parties,scale,iterations", [(2, 2.5, 10), (3, 2.0, 15)])
def test_shared_training_reaches_scikit_learns_optimum(parties, scale, iterations):
    """Scores reach 9.5 and 12 at the optimum: every iteration clips some of them."""
    names = ["bank", "insurer", "telco"][:parties]
    n, alpha = 400, 1e-3
    x, y = _table(n, 2 * parties, seed=parties, scale=scale)
    blocks = {p: x[:, 2 * k:2 * k + 2] for k, p in enumerate(names)}

    def role(p):
        def run(t):
            s = MpcSession(t, names, key_bits=1024, min_key_bits=1024, workers=1)
            return fit_shared(s, blocks[p], y if p == names[0] else None, {q: 2 for q in names}, alpha=alpha,
                              iterations=iterations, ahead=4), s
        return run

    out = InProcessNetwork(names, timeout=300).run({p: role(p) for p in names})
    for p in names:          # everything over OT made offline, exactly what the iterations used
        fit, session = out[p]
        assert fit.timing["online_ot_multiplications"] == 0 and len(fit.timing["online"]) == iterations
        assert fit.triples["left"] == 0 and session.bit_triples_waiting() == 0
        assert session.masked_products_waiting() == 0
    out = {p: fit for p, (fit, _) in out.items()}
    w = np.concatenate([out[p].coef for p in names])
    assert all(out[p].intercept is None for p in names[1:])
    z = x @ w + out[names[0]].intercept
    reference = LogisticRegression(C=1 / (alpha * n), max_iter=10000, tol=1e-10).fit(x, y)
    zs = reference.decision_function(x)

    def loss(scores):
        return np.mean(np.logaddexp(0, scores) - y * scores)
    assert np.abs(zs).max() > 8                                     # scores beyond the recipe's interval
    assert abs(loss(z) - loss(zs)) < 1e-3
    assert abs(roc_auc_score(y, z) - roc_auc_score(y, zs)) < 0.002


def test_it_refuses_when_the_rows_do_not_outnumber_the_columns_and_tables_too_wide():
    names = ["bank", "insurer"]

    def role(p):
        def run(t):
            s = MpcSession(t, names, key_bits=1024, min_key_bits=1024, workers=1)
            with pytest.raises(ValueError, match="more rows than columns"):
                fit_shared(s, np.zeros((5, 2)), np.zeros(5) if p == "bank" else None, {"bank": 2, "insurer": 2},
                           alpha=0.0)
            wide = {"bank": 30, "insurer": 34}                     # 65 with the intercept
            with pytest.raises(ValueError, match="takes at most 64"):
                fit_shared(s, np.zeros((500, wide[p])), np.zeros(500) if p == "bank" else None, wide, alpha=0.0)
            return s.ot_multiplications == s.cross_products == 0      # refused before any cryptography
        return run
    assert all(InProcessNetwork(names, timeout=30).run({p: role(p) for p in names}).values())


@pytest.mark.parametrize("passives,shared", [(1, False), (2, False), (1, True), (2, True)],
                         ids=["2p", "3p", "2p-shared", "3p-shared"])
def test_a_job_file_trains_and_scores_ss_logistic_regression(tmp_path, small_keypair, passives, shared):
    """model = "ss_logistic_regression" through the job flow: the report's held-out AUC is
    scikit-learn's within 0.002 (its baseline on the joined table, the same objective). With
    shared_model no party's file holds a weight, and scoring on the shares gives the scores of
    the weights the shares add up to."""
    import dataclasses

    import pandas as pd
    from jobs.test_flow import run_training

    from vfl.jobs.baseline import centralized_baseline
    from vfl.jobs.spec import parse_job
    x, y = _table(500, 2 + 2 * passives, seed=7, scale=1.0)
    ids = [f"c{i}" for i in range(500)]
    frames = {"bank": pd.DataFrame({"id": ids, "a0": x[:, 0], "a1": x[:, 1], "y": y.astype(int)})}
    parties = {"bank": {"role": "active", "data": "a.csv", "label": "y"}}
    for k in range(passives):
        name = f"p{k}"
        frames[name] = pd.DataFrame({"id": ids, f"{name}_0": x[:, 2 + 2 * k], f"{name}_1": x[:, 3 + 2 * k]})
        parties[name] = {"role": "passive", "data": f"{name}.csv", "alias": name}
    raw = {"job": {"name": "sslr", "model": "ss_logistic_regression"}, "evaluation": {"test_size": 0.3, "seed": 1},
           "model": {"iterations": 8, "alpha": 1e-3, "key_bits": 1024, "shared_model": shared}, "parties": parties}
    spec = dataclasses.replace(parse_job(raw), output_dir=str(tmp_path))
    _, out = run_training(spec, frames, tmp_path, small_keypair[1])
    result = out["bank"]
    baseline = centralized_baseline(spec, frames, result)
    ours, theirs = result.evaluation.metrics["auc"], baseline.evaluation.metrics["auc"]
    assert abs(ours - theirs) < 0.002, (ours, theirs)
    mpc = result.summary.figures["mpc"]
    assert mpc["iterations"] == 8 and mpc["bit_triples"] > 0 and mpc["online_ot_multiplications"] == 0
    assert mpc["offline_seconds"] > 0 and mpc["online_seconds"] > 0
    # the saved parts score new rows as the fitted ones did (what vfl predict loads)
    family = spec.family
    active = family.load_active(tmp_path / "model" / "bank.json")
    parts = {f"p{k}": family.load_passive(tmp_path / "model" / f"p{k}.json") for k in range(passives)}
    names = ["bank", *parts]
    rows = {name: frames[name].drop(columns=["id", "y"], errors="ignore").iloc[:50] for name in names}
    roles = {"bank": lambda t: active.decision_function(rows["bank"], transport=t, passives=list(parts))}
    roles.update({p: (lambda t, p=p: parts[p].serve_scores(rows[p], transport=t, active="bank")) for p in parts})
    scores = InProcessNetwork(names, timeout=30).run(roles)["bank"]
    joined = np.hstack([rows[name].to_numpy() for name in names])
    standardized = ((joined - np.concatenate([active.mean_, *(m.mean_ for m in parts.values())]))
                    / np.concatenate([active.scale_, *(m.scale_ for m in parts.values())]))
    if not shared:
        expected = standardized @ np.concatenate([active.coef_, *(m.coef_ for m in parts.values())]) + active.intercept_
        np.testing.assert_allclose(scores, expected, atol=1e-9)
        return
    files = [json.loads((tmp_path / "model" / f"{name}.json").read_text()) for name in names]
    assert all("coef" not in f["arrays"] and "intercept" not in f["scalars"] for f in files)
    assert not hasattr(active, "coef_") and active.parties_ == names
    w = decode(sum((np.asarray(f["scalars"]["weight_shares"], np.int64).astype(np.uint64) for f in files),
                   np.zeros(2 + 2 * passives + 1, np.uint64)), 12)
    order = np.r_[0:2, 3:len(w)]                             # the active's block ends with the intercept
    expected = standardized @ w[order] + w[2]
    np.testing.assert_allclose(scores, expected, atol=5e-3)
