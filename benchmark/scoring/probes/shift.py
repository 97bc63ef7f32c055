"""Distribution shift: the drop of every performance metric from id_test to ood_test.

``shift_robustness_<m>`` = (m_ID - m_OOD) / m_ID (0: no drop; positive: a drop) and
``ood_minus_id_<m>`` = m_OOD - m_ID, reported on the OOD split. The two splits are resampled
independently (each with its own seed), replicate i of one paired with replicate i of
the other, with a percentile interval (BCa needs one jackknife over both splits); the
per-split values themselves are in the performance probe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.results.report import ProbeResult
from benchmark.scoring.probes.base import Draws, Probe, ScoringContext, class_clusters, emit
from benchmark.scoring.probes.performance import METRICS, bootstrap_performance
from benchmark.stats.bootstrap import ratio

SHIFTED = [m for m in METRICS if m != "threshold_drift"]


@dataclass
class ShiftProbe(Probe):
    id_split: str = "id_test"
    ood_split: str = "ood_test"
    specificity: float = 0.9

    name = "shift"

    def run(self, ctx: ScoringContext) -> ProbeResult:
        missing = [s for s in (self.id_split, self.ood_split) if s not in ctx.predictions]
        if missing:
            return ProbeResult(
                name=self.name,
                config=self.config(),
                metrics=[],
                warnings=[f"the task has no {' or '.join(missing)} split"],
            )
        keep = [METRICS.index(m) for m in SHIFTED]
        ind, ood = (
            bootstrap_performance(ctx, s, self.specificity).cols(keep)
            for s in (self.id_split, self.ood_split)
        )
        # two independently resampled splits: no joint jackknife, a percentile interval
        draws = Draws(
            np.concatenate([ratio(ind.point - ood.point, ind.point), ood.point - ind.point]),
            np.hstack([ratio(ind.reps - ood.reps, ind.reps), ood.reps - ind.reps]),
        )
        names = [f"shift_robustness_{m}" for m in SHIFTED] + [f"ood_minus_id_{m}" for m in SHIFTED]
        support = min(class_clusters(ctx.predictions[s]) for s in (self.id_split, self.ood_split))
        rows = emit(
            self.name,
            self.ood_split,
            names,
            draws,
            ctx.level,
            reasons=dict.fromkeys(names, "the metric is undefined on a test split, or 0 on ID"),
            support=ctx.support([support] * len(names)),
        )
        return ProbeResult(name=self.name, config=self.config(), metrics=rows)
