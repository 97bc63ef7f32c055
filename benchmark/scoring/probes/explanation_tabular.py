"""The explanation probe's numbers on tabular tasks, from its per-example table alone.

Rows of method ``shap`` hold one explained row's SHAP value per feature (columns
``shap:<feature>``); rows of method ``dice`` one false negative's counterfactual scores
(``cf_found`` 0/1, and where found ``cf_valid``, ``cf_proximity``, ``cf_sparsity`` and
``cf_changed:<feature>``; :mod:`benchmark.scoring.explain_tabular`). Reported per test
split, each a mean over patients resampled as every probe's (BCa, seeded by
``explanation:<split>``): ``shap_importance`` per feature (mean |SHAP|, ``attribute`` = the
feature), ``counterfactual_found``, and over the queries with a counterfactual
``counterfactual_validity``, ``counterfactual_proximity``, ``counterfactual_sparsity`` and
``counterfactual_changed`` per feature.
"""

from __future__ import annotations

import pandas as pd

from benchmark.results.report import MetricResult
from benchmark.scoring.probes.base import ScoringContext
from benchmark.scoring.probes.explanation_scores import Scorer, as_predictions

#: The methods of a tabular examples table (image tables name attribution methods).
TABULAR_METHODS = frozenset({"shap", "dice"})
SHAP_PREFIX = "shap:"
CHANGED_PREFIX = "cf_changed:"
CF_MEANS = {
    "cf_valid": "counterfactual_validity",
    "cf_proximity": "counterfactual_proximity",
    "cf_sparsity": "counterfactual_sparsity",
}


def _features(rows: pd.DataFrame, prefix: str) -> list[str]:
    return [
        c[len(prefix) :] for c in rows.columns if c.startswith(prefix) and rows[c].notna().any()
    ]


def _shap(s: Scorer, rows: pd.DataFrame) -> list[MetricResult]:
    out = []
    for feature in _features(rows, SHAP_PREFIX):
        frame = pd.DataFrame({"shap_importance": rows[SHAP_PREFIX + feature].abs()})
        out += s.means(frame, ["shap_importance"], "no explained row", attribute=feature)
    return out


def _dice(s: Scorer, rows: pd.DataFrame) -> list[MetricResult]:
    out = s.means(
        rows.rename(columns={"cf_found": "counterfactual_found"}),
        ["counterfactual_found"],
        "no false negative",
    )
    found = rows.rename(columns=CF_MEANS)
    out += s.means(found, list(CF_MEANS.values()), "no counterfactual found")
    for feature in _features(rows, CHANGED_PREFIX):
        frame = pd.DataFrame({"counterfactual_changed": rows[CHANGED_PREFIX + feature]})
        out += s.means(
            frame, ["counterfactual_changed"], "no counterfactual found", attribute=feature
        )
    return out


def score_tabular(ctx: ScoringContext, examples: pd.DataFrame) -> list[MetricResult]:
    """Every number of the tabular explanation from its examples table."""
    metrics: list[MetricResult] = []
    for split in [s for s in ctx.test_splits if s in set(examples["split"])]:
        part = examples[examples["split"] == split]
        for method, score in (("shap", _shap), ("dice", _dice)):
            rows = part[part["method"] == method].reset_index(drop=True)
            if len(rows):
                metrics += score(Scorer(ctx, split, as_predictions(rows, split)), rows)
    return metrics
