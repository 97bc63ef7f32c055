"""Group fairness at the frozen threshold, per attribute, with group sizes.

Per group: n, selection rate, TPR, FPR, accuracy, AUROC, and versus the attribute's
reference group: ``disparate_impact``, ``eod_sum`` (|dTPR| + |dFPR|, seed definition) and
``equal_opportunity_ratio_gap``. Per attribute (``group=None``): the largest ``eod_sum``
and ``equal_opportunity_ratio_gap``, fairlearn's ``equalized_odds_difference_max`` and
``demographic_parity_difference``, ``demographic_parity_ratio`` (min/max selection rate),
and ``worst_group_auroc`` / ``worst_group_accuracy`` over groups of at least
``min_group_size`` samples (the eligible groups are fixed on the full split). Groups seen
in any scored split are reported in every split; an empty one is NaN with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.predictions import SplitPredictions
from benchmark.probes.base import Probe, ScoringContext, emit
from benchmark.report import MetricResult, ProbeResult
from benchmark.stats import GroupedScorer, ratio

GROUP_METRICS = [
    "selection_rate",
    "tpr",
    "fpr",
    "accuracy",
    "auroc",
    "disparate_impact",
    "eod_sum",
    "equal_opportunity_ratio_gap",
]
SUMMARY_METRICS = [
    "eod_sum",
    "equal_opportunity_ratio_gap",
    "equalized_odds_difference_max",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "worst_group_auroc",
    "worst_group_accuracy",
]


def _spread(x: np.ndarray) -> np.ndarray:
    """max - min over groups (axis 1), ignoring undefined groups."""
    ok = ~np.isnan(x)
    hi = np.where(ok, x, -np.inf).max(1)
    lo = np.where(ok, x, np.inf).min(1)
    return np.where(ok.sum(1) > 0, hi - lo, np.nan)


def _nan_reduce(x: np.ndarray, how: str) -> np.ndarray:
    ok = ~np.isnan(x)
    fill = -np.inf if how == "max" else np.inf
    red = getattr(np.where(ok, x, fill), how)(axis=1, initial=fill)  # no groups: NaN
    return np.where(ok.any(1), red, np.nan)


@dataclass
class FairnessProbe(Probe):
    min_group_size: int | None = None  # None: the task's min_group_size

    name = "fairness"

    def _attribute(
        self, ctx: ScoringContext, split: str, attr: str, universe: list[str]
    ) -> tuple[list[MetricResult], list[str]]:
        p: SplitPredictions = ctx.predictions[split]
        labels = p.groups[attr]
        ref = ctx.spec.attributes[attr].reference
        min_size = self.min_group_size or ctx.spec.min_group_size
        present = sorted(set(labels.tolist()))
        scorer = GroupedScorer(p.y, p.score, ctx.threshold, labels)
        assert list(scorer.labels) == present
        sizes = {g: int((labels == g).sum()) for g in present}
        positives = {g: int(((labels == g) & (p.y == 1)).sum()) for g in present}
        eligible = np.array([sizes[g] >= min_size for g in present])
        r = present.index(ref) if ref in present else None
        warnings = [
            f"{split}: {attr}={g} has {sizes[g]} samples (< min_group_size {min_size}); "
            "left out of the worst-group metrics, its own values are unreliable"
            for g in present
            if sizes[g] < min_size
        ]

        def fn(w: np.ndarray) -> np.ndarray:
            c, auroc = scorer.score_batch(w)
            sel, tpr, fpr, acc = c.selection_rate, c.tpr, c.fpr, c.accuracy
            nan = np.full_like(sel, np.nan)
            ref_of = (lambda x: x[:, [r]]) if r is not None else (lambda x: nan[:, :1])
            di = ratio(sel, ref_of(sel))
            eod = np.abs(tpr - ref_of(tpr)) + np.abs(fpr - ref_of(fpr))
            ed = ratio(np.abs(tpr - ref_of(tpr)), ref_of(tpr))
            per_group = np.stack([sel, tpr, fpr, acc, auroc, di, eod, ed], axis=2)  # b, G, M
            not_ref = np.arange(len(present)) != r
            summary = np.column_stack(
                [
                    _nan_reduce(eod[:, not_ref], "max"),
                    _nan_reduce(ed[:, not_ref], "max"),
                    np.fmax(_spread(tpr), _spread(fpr)),
                    _spread(sel),
                    ratio(_nan_reduce(sel, "min"), _nan_reduce(sel, "max")),
                    _nan_reduce(auroc[:, eligible], "min") if eligible.any() else nan[:, 0],
                    _nan_reduce(acc[:, eligible], "min") if eligible.any() else nan[:, 0],
                ]
            )
            return np.hstack([per_group.reshape(len(w), -1), summary])

        point, reps = ctx.bootstrap(split, fn)
        m = len(GROUP_METRICS)
        rows: list[MetricResult] = []
        for i, g in enumerate(present):
            cols = slice(i * m, (i + 1) * m)
            rows += emit(
                self.name,
                split,
                GROUP_METRICS,
                point[cols],
                reps[:, cols],
                ctx.level,
                reasons=self._group_reasons(g, sizes[g], positives[g], ref, r),
                attribute=attr,
                group=g,
                n=sizes[g],
            )
        for g in universe:
            if g not in sizes:
                rows += [
                    MetricResult(
                        probe=self.name,
                        metric=name,
                        split=split,
                        attribute=attr,
                        group=g,
                        value=None,
                        n=0,
                        reason=f"no {attr}={g} samples in {split}",
                    )
                    for name in GROUP_METRICS
                ]
        tail = slice(len(present) * m, None)
        no_ref = f"reference group {attr}={ref} has no samples in {split}" if r is None else None
        rows += emit(
            self.name,
            split,
            SUMMARY_METRICS,
            point[tail],
            reps[:, tail],
            ctx.level,
            reasons={
                **dict.fromkeys(SUMMARY_METRICS, no_ref or "undefined for every group"),
                "worst_group_auroc": f"no group of >= {min_size} samples with both classes",
                "worst_group_accuracy": f"no group of >= {min_size} samples",
            },
            attribute=attr,
            n=len(p),
        )
        return rows, warnings

    @staticmethod
    def _group_reasons(g: str, n: int, n_pos: int, ref: str, r: int | None) -> dict[str, str]:
        one_class = f"group {g} has only {'positives' if n_pos else 'negatives'} ({n} samples)"
        reasons = {
            "auroc": one_class,
            "tpr": f"group {g} has no positives",
            "fpr": f"group {g} has no negatives",
            "eod_sum": f"TPR or FPR undefined for group {g} or the reference {ref}",
            "equal_opportunity_ratio_gap": f"TPR of {g} undefined, or reference {ref} TPR is 0",
            "disparate_impact": f"reference group {ref} selects no one",
        }
        if r is None:
            for k in ("disparate_impact", "eod_sum", "equal_opportunity_ratio_gap"):
                reasons[k] = f"reference group {ref} has no samples in this split"
        return reasons

    def run(self, ctx: ScoringContext) -> ProbeResult:
        rows: list[MetricResult] = []
        warnings: list[str] = []
        for attr in ctx.spec.attributes:
            universe = sorted({g for pr in ctx.predictions.values() for g in pr.groups[attr]})
            for split in ctx.test_splits:
                r, w = self._attribute(ctx, split, attr, universe)
                rows += r
                warnings += w
        return ProbeResult(name=self.name, config=self.config(), metrics=rows, warnings=warnings)
