"""Group fairness at the frozen threshold, per attribute, with group sizes.

Per group: n, selection rate, TPR, FPR, accuracy, AUROC, and versus the attribute's
reference group: ``disparate_impact``, ``eod_sum`` (|dTPR| + |dFPR|, seed definition) and
``equal_opportunity_ratio_gap``, and the signed gaps ``tpr_gap``, ``fpr_gap`` and
``auroc_gap`` (group minus reference; paired within each replicate). Per attribute
(``group=None``): the largest ``eod_sum`` and ``equal_opportunity_ratio_gap``, fairlearn's
``equalized_odds_difference_max`` and
``demographic_parity_difference``, ``demographic_parity_ratio`` (min/max selection rate),
and ``worst_group_auroc`` / ``worst_group_accuracy`` over groups of at least
``min_group_size`` samples (the eligible groups are fixed on the full split). Groups seen
in any scored split are reported in every split; an empty one is NaN with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.results.report import MetricResult, ProbeResult
from benchmark.scoring.predictions import SplitPredictions
from benchmark.scoring.probes.base import Probe, ScoringContext, class_clusters, clusters, emit
from benchmark.stats.bootstrap import GroupedScorer, ratio
from benchmark.stats.intervals import MIN_SUPPORT

#: per-group metrics that compare the group with the attribute's reference group
VS_REFERENCE = (
    "disparate_impact",
    "eod_sum",
    "equal_opportunity_ratio_gap",
    "tpr_gap",
    "fpr_gap",
    "auroc_gap",
)
GROUP_METRICS = [
    "selection_rate",
    "tpr",
    "fpr",
    "accuracy",
    "auroc",
    *VS_REFERENCE,
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


def _over(x: np.ndarray, mask: np.ndarray, how: str) -> np.ndarray:
    """max/min/spread over the groups in ``mask`` (axis 1); NaN if the mask is empty.

    The mask holds the groups where the value is defined on the full split; a replicate in
    which one of them is undefined gives NaN (so the 5% cap on undefined replicates sees it),
    never a value over fewer groups.
    """
    if not mask.any():
        return np.full(len(x), np.nan)
    sub = x[:, mask]
    if how == "spread":
        return sub.max(axis=1) - sub.min(axis=1)
    return getattr(sub, how)(axis=1)


#: What each metric's support counts (its minimum: :data:`MIN_SUPPORT`); distances from
#: parity over both rates take the positives' minimum (their intervals are approximate).
SUPPORT_KIND = {
    "selection_rate": "group",
    "tpr": "positive",
    "fpr": "negative",
    "accuracy": "group",
    "auroc": "rarer_class",
    "disparate_impact": "group",
    "eod_sum": "positive",
    "equal_opportunity_ratio_gap": "positive",
    "tpr_gap": "positive",
    "fpr_gap": "negative",
    "auroc_gap": "rarer_class",
    "equalized_odds_difference_max": "positive",
    "demographic_parity_difference": "group",
    "demographic_parity_ratio": "group",
    "worst_group_auroc": "rarer_class",
    "worst_group_accuracy": "group",
}


def least(metric: str) -> int:
    """The support ``metric``'s interval needs (:mod:`benchmark.stats.intervals`)."""
    return MIN_SUPPORT[SUPPORT_KIND[metric]]


def group_support(
    p: SplitPredictions, labels: np.ndarray, present: list[str], ref: str
) -> dict[str, dict[str, int]]:
    """Per group and GROUP_METRICS metric, the patients behind it (interval withholding),
    counted from labels and groups alone, never from the predictions (withholding on a
    count the estimate moves would keep the intervals of lucky draws only): a rate counts
    its denominator's patients (TPR: the group's positive patients), AUROC the group's
    rarer class, a comparison with the reference the fewest of either side's terms."""
    out: dict[str, dict[str, int]] = {}
    for g in present:
        in_g = labels == g
        out[g] = {
            "selection_rate": clusters(p, in_g),
            "tpr": clusters(p, in_g & (p.y == 1)),
            "fpr": clusters(p, in_g & (p.y != 1)),
            "accuracy": clusters(p, in_g),
            "auroc": class_clusters(p, in_g),
        }
    for g in present:
        own, other = out[g], out[ref if ref in present else g]  # no reference: undefined
        own |= {
            "disparate_impact": min(own["selection_rate"], other["selection_rate"]),
            "eod_sum": min(x[k] for x in (own, other) for k in ("tpr", "fpr")),
            "equal_opportunity_ratio_gap": min(own["tpr"], other["tpr"]),
            "tpr_gap": min(own["tpr"], other["tpr"]),
            "fpr_gap": min(own["fpr"], other["fpr"]),
            "auroc_gap": min(own["auroc"], other["auroc"]),
        }
    return out


def summary_support(
    support: dict[str, dict[str, int]], present: list[str], ref: str, eligible: np.ndarray
) -> list[int]:
    """SUMMARY_METRICS' support: the fewest patients behind any group term they take."""
    others = [g for g in present if g != ref] or present
    chosen = [g for g, ok in zip(present, eligible, strict=True) if ok] or present

    def fewest(groups: list[str], *metrics: str) -> int:
        return min(support[g][k] for g in groups for k in metrics)

    return [
        fewest(others, "eod_sum"),
        fewest(others, "equal_opportunity_ratio_gap"),
        fewest(present, "tpr", "fpr"),
        fewest(present, "selection_rate"),
        fewest(present, "selection_rate"),
        fewest(chosen, "auroc"),
        fewest(chosen, "accuracy"),
    ]


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
        min_size = self.effective_min_size(ctx)
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

        not_ref = np.arange(len(present)) != r

        def by_group(w: np.ndarray) -> np.ndarray:
            """GROUP_METRICS per group: (b, G, M)."""
            c, auroc = scorer.score_batch(w)
            sel, tpr, fpr = c.selection_rate, c.tpr, c.fpr
            nan = np.full((len(w), 1), np.nan)
            ref_of = (lambda x: x[:, [r]]) if r is not None else (lambda x: nan)
            di = ratio(sel, ref_of(sel))
            eod = np.abs(tpr - ref_of(tpr)) + np.abs(fpr - ref_of(fpr))
            ed = ratio(np.abs(tpr - ref_of(tpr)), ref_of(tpr))
            gaps = [tpr - ref_of(tpr), fpr - ref_of(fpr), auroc - ref_of(auroc)]
            return np.stack([sel, tpr, fpr, c.accuracy, auroc, di, eod, ed, *gaps], axis=2)

        at_point = by_group(np.ones((1, len(p)), dtype=np.int32))[0]
        ok = {k: ~np.isnan(at_point[:, i]) for i, k in enumerate(GROUP_METRICS)}

        def fn(w: np.ndarray) -> np.ndarray:
            per_group = by_group(w)
            v = dict(zip(GROUP_METRICS, np.moveaxis(per_group, 2, 0), strict=True))
            summary = np.column_stack(
                [
                    _over(v["eod_sum"], ok["eod_sum"] & not_ref, "max"),
                    _over(
                        v["equal_opportunity_ratio_gap"],
                        ok["equal_opportunity_ratio_gap"] & not_ref,
                        "max",
                    ),
                    np.maximum(
                        _over(v["tpr"], ok["tpr"], "spread"), _over(v["fpr"], ok["fpr"], "spread")
                    ),
                    _over(v["selection_rate"], ok["selection_rate"], "spread"),
                    ratio(
                        _over(v["selection_rate"], ok["selection_rate"], "min"),
                        _over(v["selection_rate"], ok["selection_rate"], "max"),
                    ),
                    _over(v["auroc"], ok["auroc"] & eligible, "min"),
                    _over(v["accuracy"], ok["accuracy"] & eligible, "min"),
                ]
            )
            return np.hstack([per_group.reshape(len(w), -1), summary])

        draws = ctx.bootstrap(split, fn)
        m = len(GROUP_METRICS)
        support = group_support(p, labels, present, ref)
        rows: list[MetricResult] = []
        for i, g in enumerate(present):
            cols = slice(i * m, (i + 1) * m)
            rows += emit(
                self.name,
                split,
                GROUP_METRICS,
                draws.cols(cols),
                ctx.level,
                reasons=self._group_reasons(g, sizes[g], positives[g], ref, r),
                support=ctx.support([support[g][k] for k in GROUP_METRICS]),
                minimum=[least(k) for k in GROUP_METRICS],
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
            draws.cols(tail),
            ctx.level,
            support=ctx.support(summary_support(support, present, ref, eligible)),
            minimum=[least(k) for k in SUMMARY_METRICS],
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
            "tpr_gap": f"TPR undefined for group {g} or the reference {ref}",
            "fpr_gap": f"FPR undefined for group {g} or the reference {ref}",
            "auroc_gap": f"AUROC undefined for group {g} or the reference {ref}",
        }
        if r is None:
            for k in VS_REFERENCE:
                reasons[k] = f"reference group {ref} has no samples in this split"
        return reasons

    def effective_min_size(self, ctx: ScoringContext) -> int:
        return ctx.spec.min_group_size if self.min_group_size is None else self.min_group_size

    def run(self, ctx: ScoringContext) -> ProbeResult:
        rows: list[MetricResult] = []
        warnings: list[str] = []
        for attr in ctx.spec.attributes:
            universe = sorted({g for pr in ctx.predictions.values() for g in pr.groups[attr]})
            for split in ctx.test_splits:
                r, w = self._attribute(ctx, split, attr, universe)
                rows += r
                warnings += w
        config = {**self.config(), "min_group_size": self.effective_min_size(ctx)}
        return ProbeResult(name=self.name, config=config, metrics=rows, warnings=warnings)
