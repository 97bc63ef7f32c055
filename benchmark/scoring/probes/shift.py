"""Distribution shift: the drop of every performance metric from id_test to ood_test.

``shift_robustness_<m>`` = (m_ID - m_OOD) / m_ID (0: no drop; positive: a drop) and
``ood_minus_id_<m>`` = m_OOD - m_ID, reported on the OOD split. The two splits are resampled
independently (each with its own seed), replicate i of one paired with replicate i of
the other; the per-split values themselves are in the performance probe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.results.report import ProbeResult
from benchmark.scoring.probes.base import Probe, ScoringContext, emit
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
        out = {}
        for s in (self.id_split, self.ood_split):
            point, reps = bootstrap_performance(ctx, s, self.specificity)
            out[s] = (point[keep], reps[:, keep])
        (pi, ri), (po, ro) = out[self.id_split], out[self.ood_split]
        point = np.concatenate([ratio(pi - po, pi), po - pi])
        reps = np.hstack([ratio(ri - ro, ri), ro - ri])
        names = [f"shift_robustness_{m}" for m in SHIFTED] + [f"ood_minus_id_{m}" for m in SHIFTED]
        rows = emit(
            self.name,
            self.ood_split,
            names,
            point,
            reps,
            ctx.level,
            reasons=dict.fromkeys(names, "the metric is undefined on a test split, or 0 on ID"),
        )
        return ProbeResult(name=self.name, config=self.config(), metrics=rows)
