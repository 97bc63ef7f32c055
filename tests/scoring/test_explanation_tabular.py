"""The explanation probe on a tabular task: SHAP through TreeExplainer for gradient boosting
and a permutation explainer for any other model (both additive: the values sum to the
model's output minus its base value), DiCE counterfactuals that all flip the decision at
the frozen threshold without touching immutable features, numbers recomputed from the
examples table, and the stability of feature importance across seeds (Fleiss' kappa
equal to statsmodels')."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from baselines import tabular
from benchmark.models.adapters import as_model
from benchmark.results.report import Report
from benchmark.scoring import explain_tabular
from benchmark.scoring.evaluate import evaluate
from benchmark.scoring.explanation_stability import importance, stability
from benchmark.scoring.probes.explanation import ExplanationProbe
from benchmark.scoring.rescore import recheck
from benchmark.tasks.task import Task

PROBE = ExplanationProbe(max_samples=40, background=30, max_counterfactuals=6)


class Logistic:
    """p = sigmoid(w1 x1 + w2 x2 + b_sex): a model that is not a tree ensemble."""

    def __init__(self, w1: float = 1.5, w2: float = -0.7, b: float = 0.4) -> None:
        self.w1, self.w2, self.b = w1, w2, b

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        x1 = pd.to_numeric(X["x1"]).to_numpy(float)
        x2 = pd.to_numeric(X["x2"]).to_numpy(float)
        z = self.w1 * x1 + self.w2 * x2 + self.b * (X["sex"].astype(str) == "F").to_numpy()
        p = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p, p])


def test_shap_values_are_additive_for_both_explainers(tiny_task: Task) -> None:
    train, _, _ = tiny_task.split("train")
    X, _, _ = tiny_task.split("ood_test")
    X = X.iloc[:12]
    gbm = as_model(tabular.train_gbm(tiny_task, 0))
    values, how = explain_tabular.shap_values(gbm, tiny_task.spec, train, X, background=30, seed=0)
    assert "TreeExplainer" in how and values.shape == (12, 3)
    pipeline = gbm.estimator
    raw = pipeline[-1].decision_function(pipeline[:-1].transform(X))
    base = raw - values.sum(axis=1)
    assert np.allclose(base, base[0], atol=1e-6)  # one expected value: additive
    model = Logistic()
    values, how = explain_tabular.shap_values(
        model, tiny_task.spec, train, X, background=30, seed=0
    )
    assert "PermutationExplainer" in how
    p = model.predict_proba(X)[:, 1]
    base = p - values.sum(axis=1)
    assert np.allclose(base, base[0], atol=1e-9)
    assert np.abs(values[:, 0]).mean() > np.abs(values[:, 1]).mean()  # |w1| > |w2|


def test_every_counterfactual_flips_at_the_threshold_and_keeps_sex(tiny_task: Task) -> None:
    pytest.importorskip("dice_ml")
    train, y, _ = tiny_task.split("train")
    X, yt, _ = tiny_task.split("ood_test")
    model = Logistic()
    t = 0.7
    p = model.predict_proba(X)[:, 1]
    queries = X[(yt == 1) & (p < t)].iloc[:5]
    assert len(queries) >= 3
    assert explain_tabular.immutable_features(tiny_task.spec) == ["sex"]
    found = explain_tabular.counterfactuals(
        model, tiny_task.spec, train, y, queries, t, total=3, seed=0
    )
    assert sum(cf is not None for cf in found) >= 3
    for (_, query), cf in zip(queries.iterrows(), found, strict=True):
        if cf is None:
            continue
        assert (model.predict_proba(cf)[:, 1] >= t).all()  # every one flips the decision
        assert (cf["sex"].astype(str) == str(query["sex"])).all()  # immutable: unchanged


def test_the_probe_reports_shap_and_counterfactuals_and_replays(
    tiny_task: Task, tmp_path: Path
) -> None:
    report = evaluate(Logistic(), tiny_task, probes=[PROBE], n_boot=100)
    result = report.probe("explanation")
    features = {m.attribute for m in result.metrics if m.metric == "shap_importance"}
    assert features == {"x1", "x2", "sex"}
    x1 = report.metric("shap_importance", "ood_test", probe="explanation", attribute="x1")
    shap_rows = result.examples[
        (result.examples.method == "shap") & (result.examples.split == "ood_test")
    ]
    assert x1.value == pytest.approx(shap_rows["shap:x1"].abs().mean())
    if "dice" in result.config["measured"]["methods"]:
        valid = report.metric("counterfactual_validity", "ood_test", probe="explanation")
        assert valid.value == 1.0
        changed = report.metric(
            "counterfactual_changed", "ood_test", probe="explanation", attribute="sex"
        )
        assert changed.value == 0.0
    report.save(tmp_path, predictions=True)
    assert recheck(Report.load(tmp_path), tiny_task.spec, full=True) == []


def test_seeds_agree_on_importance_as_scipy_and_statsmodels_count_it(tiny_task: Task) -> None:
    reports = {
        seed: evaluate(
            Logistic(w1=1.5 + 0.1 * seed, w2=-0.2 * seed), tiny_task, probes=[PROBE], n_boot=40
        )
        for seed in range(3)
    }
    found = stability(reports, split="ood_test", k=1)
    table = pd.DataFrame({s: importance(r, "ood_test") for s, r in reports.items()})
    assert found.pairs[0].rank_correlation == pytest.approx(spearmanr(table[0], table[1]).statistic)
    top = (table.rank(ascending=False, method="first") <= 1).to_numpy()
    counts = np.column_stack([3 - top.sum(axis=1), top.sum(axis=1)])
    assert found.fleiss_kappa_top_k == pytest.approx(sm_fleiss_kappa(counts, method="fleiss"))
    assert found.features[0].feature == "x1" and found.features[0].top_k_share == 1.0
    with pytest.raises(Exception, match="2 or more seeds"):
        stability({0: reports[0]}, split="ood_test")
