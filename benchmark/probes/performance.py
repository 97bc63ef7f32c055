"""Performance at the frozen operating threshold, and threshold drift.

Metrics (conventions in :mod:`benchmark.definitions`): ``auroc``, ``auprc``, ``accuracy``,
``f1``, ``sensitivity_at_specificity`` and ``threshold_drift``, each on every test split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark import metrics
from benchmark.predictions import SplitPredictions
from benchmark.probes.base import BatchFn, Probe, ScoringContext, class_counts_reason, emit
from benchmark.report import ProbeResult
from benchmark.stats import GroupedScorer

METRICS = ["auroc", "auprc", "accuracy", "f1", "sensitivity_at_specificity", "threshold_drift"]


def performance_batch(p: SplitPredictions, threshold: float, specificity: float) -> BatchFn:
    """Replicate weights (b, n) -> the METRICS columns (b, 6)."""
    ranked = metrics.RankedScores(p.y, p.score)
    scorer = GroupedScorer(p.y, p.score, threshold)

    def fn(w: np.ndarray) -> np.ndarray:
        conf, auroc = scorer.score_batch(w)
        return np.column_stack(
            [
                auroc[:, 0],
                metrics.average_precision(ranked, w),
                conf.accuracy[:, 0],
                metrics.confusion_f1(conf.tp, conf.fp, conf.fn)[:, 0],
                metrics.sensitivity_at_specificity(ranked, w, specificity),
                metrics.youden_threshold(ranked, w) - threshold,
            ]
        )

    return fn


@dataclass
class PerformanceProbe(Probe):
    specificity: float = 0.9

    name = "performance"

    def run(self, ctx: ScoringContext) -> ProbeResult:
        rows = []
        for split in ctx.test_splits:
            p = ctx.predictions[split]
            point, reps = ctx.bootstrap(
                split, performance_batch(p, ctx.threshold, self.specificity)
            )
            why = class_counts_reason(p) or "undefined on this split"
            rows += emit(
                self.name,
                split,
                METRICS,
                point,
                reps,
                ctx.level,
                reasons=dict.fromkeys(METRICS, why),
                n=len(p),
            )
        return ProbeResult(name=self.name, config=self.config(), metrics=rows)
