"""Performance at the frozen operating threshold, and threshold drift.

Metrics (conventions in :mod:`benchmark.common.conventions`): ``auroc``, ``auprc``, ``accuracy``,
``f1``, ``sensitivity_at_specificity`` and ``threshold_drift``, each on every test split.
Every one needs both classes, so the patients behind each (interval withholding) are those
of the rarer class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.results.report import ProbeResult
from benchmark.scoring.predictions import SplitPredictions
from benchmark.scoring.probes.base import (
    BatchFn,
    Draws,
    Probe,
    ScoringContext,
    class_clusters,
    class_counts_reason,
    emit,
)
from benchmark.stats import metrics
from benchmark.stats.bootstrap import GroupedScorer
from benchmark.tasks.spec import ThresholdSpec

METRICS = ["auroc", "auprc", "accuracy", "f1", "sensitivity_at_specificity", "threshold_drift"]


def performance_batch(
    p: SplitPredictions,
    threshold: float,
    specificity: float,
    rule: ThresholdSpec | None = None,
) -> BatchFn:
    """Replicate weights (b, n) -> the METRICS columns (b, 6).

    ``threshold_drift`` applies the task's own threshold ``rule`` to the scored rows (Youden
    when no rule is given); a ``fixed`` rule has no data-driven optimum, so its drift is NaN.
    """
    ranked = metrics.RankedScores(p.y, p.score)
    scorer = GroupedScorer(p.y, p.score, threshold)

    def best(w: np.ndarray) -> np.ndarray:
        if rule is None or rule.rule == "youden":
            return metrics.youden_threshold(ranked, w)
        if rule.rule == "fixed_specificity":
            assert rule.specificity is not None
            return metrics.specificity_threshold(ranked, w, rule.specificity)
        return np.full(len(w), np.nan)

    def fn(w: np.ndarray) -> np.ndarray:
        conf, auroc = scorer.score_batch(w)
        return np.column_stack(
            [
                auroc[:, 0],
                metrics.average_precision(ranked, w),
                conf.accuracy[:, 0],
                metrics.confusion_f1(conf.tp, conf.fp, conf.fn)[:, 0],
                metrics.sensitivity_at_specificity(ranked, w, specificity),
                best(w) - threshold,
            ]
        )

    return fn


def bootstrap_performance(ctx: ScoringContext, split: str, specificity: float) -> Draws:
    """METRICS on ``split`` (6 columns), computed once per evaluation and shared by every
    probe that asks (performance, shift)."""
    fn = performance_batch(ctx.predictions[split], ctx.threshold, specificity, ctx.spec.threshold)
    return ctx.bootstrap(split, fn, key=("performance", specificity))


@dataclass
class PerformanceProbe(Probe):
    specificity: float = 0.9

    name = "performance"

    def run(self, ctx: ScoringContext) -> ProbeResult:
        rows = []
        for split in ctx.test_splits:
            p = ctx.predictions[split]
            draws = bootstrap_performance(ctx, split, self.specificity)
            why = class_counts_reason(p) or "undefined on this split"
            reasons = dict.fromkeys(METRICS, why)
            if ctx.spec.threshold.rule == "fixed" and why == "undefined on this split":
                reasons["threshold_drift"] = "a fixed threshold has no optimum to drift from"
            rows += emit(
                self.name,
                split,
                METRICS,
                draws,
                ctx.level,
                reasons=reasons,
                support=ctx.support([class_clusters(p)] * len(METRICS)),
                n=len(p),
            )
        return ProbeResult(name=self.name, config=self.config(), metrics=rows)
