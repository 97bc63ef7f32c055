"""The explanation probe's numbers, from its per-example table alone.

The probe (:mod:`benchmark.scoring.probes.explanation`) runs the model once to score each
attribution map against the masks, one row per (split, method, image) in an *examples*
table saved beside the report (``examples.parquet``). Everything reported follows from
that table here, so a stored report is recomputed, and two models compared pairwise, the
way predictions are: :func:`score_examples` is what the probe runs and what a replay runs.

Conventions (the card's text is :data:`benchmark.common.conventions.METRIC_DEFINITIONS`):

- Means are over the images a metric is defined on: alignment metrics over images with a
  non-empty lesion mask and a scorable map (a degenerate map, NaN or constant, is counted
  in ``degenerate_maps`` and left out, never scored as 0); ``shortcut_mass`` over images
  that carry the shortcut; counterfactual metrics over pairs (the lesion row of each).
- Intervals: patients resampled within sites (BCa with the leave-one-patient-out
  jackknife, as every probe), seeded by ``explanation:<split>``, over the patients whose
  images were explained, so two models' replicates pair. A mean of per-image scores is
  withheld below :data:`MIN_SUPPORT` ``["positive"]`` patients behind it.
- ``<metric>_of_ceiling`` is a ratio of means over the images where both the model's and
  the raters' value exist. ``trust_rank_correlation`` is Spearman's rho of p and
  ``saliency_dice`` (replicates: the weighted Pearson correlation of the full sample's
  ranks). ``saliency_dice_gap``: a group minus its attribute's reference group.
- A method that failed the sanity check (``measured["sanity"]``) has its alignment
  numbers withheld: null with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from benchmark.common.conventions import MIN_SUPPORT
from benchmark.results.report import Curve, MetricResult
from benchmark.scoring.predictions import SplitPredictions
from benchmark.scoring.probes.base import (
    BatchFn,
    Draws,
    ScoringContext,
    bootstrap,
    emit,
    split_seed,
    unrecord,
)
from benchmark.stats.bootstrap import ratio
from benchmark.tasks.spec import GROUP_PREFIX

PROBE = "explanation"
#: Per-image alignment with the lesion mask, one column each in the examples table.
ALIGNMENT = ["saliency_dice", "pointing_game", "relevance_mass", "pixel_auroc"]
RATER = [f"rater_{m}" for m in ALIGNMENT]
#: Top fractions of pixels of the Dice-vs-k curve (columns ``dice_k_<f>``).
CURVE_FRACTIONS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
MIN_PATIENTS = MIN_SUPPORT["positive"]


def curve_column(fraction: float) -> str:
    return f"dice_k_{fraction:g}"


def as_predictions(rows: pd.DataFrame, split: str) -> SplitPredictions:
    """The examples of one method on one split as the bootstrap's unit table."""
    site = rows["site"]
    return SplitPredictions(
        split=split,
        sample_id=rows["sample_id"].to_numpy(dtype=str),
        patient_id=rows["patient_id"].to_numpy(dtype=str),
        site=None if site.isna().all() else site.to_numpy(dtype=str),
        y=rows["y_true"].to_numpy(dtype=np.int64),
        proba=np.column_stack([1 - rows["score"], rows["score"]]).astype(np.float64),
        groups={
            c[len(GROUP_PREFIX) :]: rows[c].to_numpy(dtype=str)
            for c in rows.columns
            if c.startswith(GROUP_PREFIX)
        },
    )


def _means(values: np.ndarray) -> BatchFn:
    """Replicate weights (b, n) -> the weighted mean of each column of ``values`` (n, m)
    over its finite entries."""
    valid = np.isfinite(values)
    v = np.where(valid, values, 0.0)
    ok = valid.astype(np.float64)
    return lambda w: ratio(np.asarray(w, dtype=np.float64) @ v, np.asarray(w, np.float64) @ ok)


def _ratio_of_means(num: np.ndarray, den: np.ndarray) -> BatchFn:
    """Weighted sum of ``num`` over weighted sum of ``den``, per column, where both exist."""
    both = np.isfinite(num) & np.isfinite(den)
    a, b = np.where(both, num, 0.0), np.where(both, den, 0.0)
    return lambda w: ratio(np.asarray(w, np.float64) @ a, np.asarray(w, np.float64) @ b)


def _rank_correlation(x: np.ndarray, y: np.ndarray) -> BatchFn:
    """Weighted Pearson correlation of the ranks of ``x`` and ``y`` among the rows where
    both are finite (Spearman's rho at unit weights)."""
    both = np.isfinite(x) & np.isfinite(y)
    rx, ry = np.zeros(len(x)), np.zeros(len(y))
    rx[both], ry[both] = rankdata(x[both]), rankdata(y[both])

    def fn(w: np.ndarray) -> np.ndarray:
        wf = np.asarray(w, dtype=np.float64) * both
        total = wf.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mx, my = wf @ rx / total, wf @ ry / total
            cov = wf @ (rx * ry) / total - mx * my
            vx = wf @ (rx * rx) / total - mx * mx
            vy = wf @ (ry * ry) / total - my * my
            rho = cov / np.sqrt(vx * vy)
        return np.where((vx > 0) & (vy > 0), rho, np.nan)[:, None]

    return fn


def _difference(fn: BatchFn) -> BatchFn:
    """Column 0 minus column 1 of ``fn``'s output."""

    def diff(w: np.ndarray) -> np.ndarray:
        both = fn(w)
        return (both[:, 0] - both[:, 1])[:, None]

    return diff


def _patients(p: SplitPredictions, rows: np.ndarray) -> int:
    return len(np.unique(p.patient_id[rows]))


def delta_p(rows: pd.DataFrame) -> np.ndarray:
    """p(with lesion) - p(without) on each pair's lesion row (NaN on every other row)."""
    out = np.full(len(rows), np.nan)
    if "pair" not in rows:
        return out
    pair = rows["pair"].to_numpy(dtype=str)
    score = rows["score"].to_numpy(dtype=np.float64)
    off = pair == "without_lesion"
    without = dict(zip(rows["patient_id"][off], score[off], strict=True))
    for i in np.flatnonzero(pair == "with_lesion"):
        other = without.get(rows["patient_id"].iat[i])
        if other is not None:
            out[i] = score[i] - other
    return out


class Scorer:
    """Emits the rows of one split: shared bootstrap settings and the report's keys."""

    def __init__(self, ctx: ScoringContext, split: str, p: SplitPredictions) -> None:
        self.ctx, self.split, self.p = ctx, split, p
        self.seed = split_seed(ctx.seed, f"{PROBE}:{split}")

    def draws(self, fn: BatchFn) -> Draws:
        return bootstrap(self.p, fn, self.ctx.n_boot, self.seed, jackknife=self.ctx.jackknife)

    def emit(
        self,
        names: list[str],
        fn: BatchFn,
        support: list[int],
        reason: str,
        **keys: Any,
    ) -> list[MetricResult]:
        return emit(
            PROBE,
            self.split,
            names,
            self.draws(fn),
            self.ctx.level,
            reasons=dict.fromkeys(names, reason),
            support=self.ctx.support(support),
            minimum=MIN_PATIENTS,
            n=len(self.p),
            **keys,
        )

    def means(
        self, frame: pd.DataFrame, names: list[str], reason: str, **keys: Any
    ) -> list[MetricResult]:
        values = frame[names].to_numpy(dtype=np.float64)
        support = [_patients(self.p, np.isfinite(values[:, j])) for j in range(len(names))]
        return self.emit(names, _means(values), support, reason, **keys)


def _shared(s: Scorer, rows: pd.DataFrame) -> list[MetricResult]:
    """Method-independent rows: the human ceiling and the counterfactual change in p."""
    out: list[MetricResult] = []
    if RATER[0] in rows and rows[RATER[0]].notna().any():
        out += s.means(rows, [*RATER, "rater_kappa"], "no lesion image has rater masks")
    dp = delta_p(rows)
    if np.isfinite(dp).any():
        frame = pd.DataFrame({"counterfactual_delta_p": dp})
        out += s.means(frame, ["counterfactual_delta_p"], "no counterfactual pair")
    return out


def _by_group(
    s: Scorer, rows: pd.DataFrame, method: str, references: dict[str, str]
) -> list[MetricResult]:
    """Alignment per group of each attribute and per site, and each group's Dice gap to
    its attribute's reference group."""
    p, out = s.p, []
    values = rows[ALIGNMENT].to_numpy(dtype=np.float64)
    dice = values[:, 0]
    columns = dict(p.groups)
    if p.site is not None and len(np.unique(p.site)) > 1:
        columns["site"] = p.site
    for attr, labels in columns.items():
        key = f"{method}/{attr}"
        for g in sorted(set(labels)):
            inside = labels == g
            part = np.where(inside[:, None], values, np.nan)
            support = [_patients(p, np.isfinite(part[:, j])) for j in range(len(ALIGNMENT))]
            why = f"no scorable lesion image in group {attr}={g}"
            out += s.emit(ALIGNMENT, _means(part), support, why, attribute=key, group=g)
            ref = references.get(attr)
            if ref is None or g == ref:
                continue
            pair = np.column_stack(
                [np.where(inside, dice, np.nan), np.where(labels == ref, dice, np.nan)]
            )
            n_g, n_r = (_patients(p, np.isfinite(pair[:, j])) for j in (0, 1))
            out += s.emit(
                ["saliency_dice_gap"],
                _difference(_means(pair)),
                [min(n_g, n_r)],
                f"saliency_dice undefined for {attr}={g} or the reference {ref}",
                attribute=key,
                group=g,
            )
    return out


def _method(
    s: Scorer, rows: pd.DataFrame, method: str, references: dict[str, str]
) -> list[MetricResult]:
    """Every row of one attribution method on one split."""
    out = s.means(rows, ALIGNMENT, "no lesion image with a scorable map", attribute=method)
    if RATER[0] in rows and rows[RATER[0]].notna().any():
        model = rows[ALIGNMENT].to_numpy(dtype=np.float64)
        ceiling = rows[RATER].to_numpy(dtype=np.float64)
        both = np.isfinite(model) & np.isfinite(ceiling)
        names = [f"{m}_of_ceiling" for m in ALIGNMENT]
        support = [_patients(s.p, both[:, j]) for j in range(len(names))]
        fn = _ratio_of_means(model, ceiling)
        out += s.emit(names, fn, support, "no image with both values", attribute=method)
    for name, why in (
        ("shortcut_mass", "no image carries the shortcut"),
        ("counterfactual_peak_moved", "no counterfactual pair"),
    ):
        if name in rows and rows[name].notna().any():
            out += s.means(rows, [name], why, attribute=method)
    degenerate = rows[["degenerate"]].to_numpy(dtype=np.float64)
    out += s.emit(
        ["degenerate_maps"],
        _means(degenerate),
        [_patients(s.p, np.ones(len(rows), dtype=bool))],
        "no map",
        attribute=method,
    )
    score = rows["score"].to_numpy(dtype=np.float64)
    dice = rows["saliency_dice"].to_numpy(dtype=np.float64)
    out += s.emit(
        ["trust_rank_correlation"],
        _rank_correlation(score, dice),
        [_patients(s.p, np.isfinite(dice))],
        "fewer than two lesion images with distinct values",
        attribute=method,
    )
    return out + _by_group(s, rows, method, references)


#: Rows withheld when a method fails the sanity check (the human ceiling and the
#: counterfactual change in p do not depend on the method and stay).
WITHHELD = {
    *ALIGNMENT,
    *(f"{m}_of_ceiling" for m in ALIGNMENT),
    "shortcut_mass",
    "counterfactual_peak_moved",
    "trust_rank_correlation",
    "saliency_dice_gap",
}


def _withhold(rows: list[MetricResult], why: str) -> list[MetricResult]:
    """``rows`` with the alignment numbers nulled, and left out of paired comparisons."""
    unrecord([m for m in rows if m.metric in WITHHELD])
    return [
        m.model_copy(
            update={"value": None, "ci_low": None, "ci_high": None, "interval": None, "reason": why}
        )
        if m.metric in WITHHELD
        else m
        for m in rows
    ]


def _curve(rows: pd.DataFrame, split: str, method: str) -> Curve | None:
    cols = [curve_column(f) for f in CURVE_FRACTIONS]
    if not set(cols) <= set(rows.columns):
        return None
    values = rows[cols].to_numpy(dtype=np.float64)
    count = np.isfinite(values).sum(axis=0)
    if not count.any():
        return None
    with np.errstate(invalid="ignore"):
        mean = np.nansum(values, axis=0) / np.maximum(count, 1)
    return Curve(
        probe=PROBE,
        name="dice_vs_k",
        split=split,
        attribute=method,
        x=list(CURVE_FRACTIONS),
        y=[float(v) for v in mean],
        count=[float(c) for c in count],
    )


def score_examples(
    ctx: ScoringContext,
    examples: pd.DataFrame,
    sanity: dict[str, Any],
    on_split: Callable[[str], None] | None = None,
) -> tuple[list[MetricResult], list[Curve]]:
    """Every number and curve of the probe from its examples table; ``sanity``: method ->
    the sanity check's record (``passed`` False withholds the method's alignment)."""
    references = {a: spec.reference for a, spec in ctx.spec.attributes.items()}
    metrics: list[MetricResult] = []
    curves: list[Curve] = []
    for split in [s for s in ctx.test_splits if s in set(examples["split"])]:
        part = examples[examples["split"] == split]
        methods = list(dict.fromkeys(part["method"]))
        first = part[part["method"] == methods[0]].reset_index(drop=True)
        s = Scorer(ctx, split, as_predictions(first, split))
        metrics += _shared(s, first)
        for method in methods:
            rows = part[part["method"] == method].reset_index(drop=True)
            if not np.array_equal(rows["sample_id"], first["sample_id"]):
                raise ValueError(f"examples of {method} on {split} are not the same images")
            found = _method(s, rows, method, references)
            check = sanity.get(method, {})
            if check.get("passed") is False:
                found = _withhold(found, f"withheld: {method} failed the sanity check")
            metrics += found
            curve = _curve(rows, split, method)
            if curve is not None:
                curves.append(curve)
        if on_split is not None:
            on_split(split)
    return metrics, curves
