"""The adversarial probe's robust metrics from worst-case scores, torch-free: the probe
computes them after its attacks, and :mod:`benchmark.scoring.rescore` recomputes them from
the worst-case scores a report keeps with its predictions (pseudo-splits such as
``id_test@linf=4/255``), so a stored robust accuracy can never drift from its data. The
per-attack accuracy rows need each attack's scores, which are not kept: those are
range-checked only.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from benchmark.results.report import MetricResult, ProbeResult
from benchmark.scoring.predictions import SplitPredictions
from benchmark.scoring.probes.base import (
    BatchFn,
    ScoringContext,
    bootstrap,
    class_clusters,
    class_counts_reason,
    emit,
    split_seed,
)
from benchmark.stats import metrics
from benchmark.stats.bootstrap import GroupedScorer, ratio

EPS_METRICS = [
    "robust_accuracy",
    "robust_auroc",
    "robust_f1",
    "robust_sensitivity",
    "attack_success_rate",
]


def attacked_split(split: str, norm: str, eps: float) -> str:
    """The name under which worst-case scores are saved with the predictions, e.g.
    ``id_test@linf=4/255`` or ``id_test@l2=0.5``; ``medfail compare`` pairs them like splits."""
    if norm == "Linf":
        return f"{split}@linf={eps * 255:.4g}/255"
    return f"{split}@l2={eps:.4g}"


def _eps_metrics(
    y: np.ndarray, worst: np.ndarray, flipped: np.ndarray, threshold: float
) -> BatchFn:
    """Replicate weights (b, n) -> EPS_METRICS columns, from worst-case scores per example."""
    scorer = GroupedScorer(y, worst, threshold)
    was_correct = ~flipped[0]  # row 0: correct on clean inputs
    broken = flipped[1]

    def fn(w: np.ndarray) -> np.ndarray:
        conf, auroc = scorer.score_batch(w)
        wf = np.asarray(w, dtype=np.float64)
        success = ratio(wf @ (was_correct & broken), wf @ was_correct)
        return np.column_stack(
            [
                conf.accuracy[:, 0],
                auroc[:, 0],
                metrics.confusion_f1(conf.tp, conf.fp, conf.fn)[:, 0],
                ratio(conf.tp, conf.tp + conf.fn)[:, 0],
                success,
            ]
        )

    return fn


def robust_rows(
    ctx: ScoringContext, base: SplitPredictions, worst: np.ndarray, norm: str, eps: float
) -> list[MetricResult]:
    """The :data:`EPS_METRICS` rows of one radius from each example's worst-case score
    (``base``: the clean predictions of the attacked sample; Linf rows have no attribute,
    L2 rows ``attribute = "L2"``; ``group`` is the radius)."""
    y, t = base.y, ctx.threshold
    clean_ok = (base.score >= t) == (y == 1)
    flipped = np.stack([~clean_ok, (worst >= t) != (y == 1)])
    seed = split_seed(ctx.seed, base.split)
    draws = bootstrap(
        base, _eps_metrics(y, worst, flipped, t), ctx.n_boot, seed, jackknife=ctx.jackknife
    )
    undefined = class_counts_reason(base, f"the attacked {base.split} sample") or "undefined here"
    return emit(
        "adversarial",
        base.split,
        EPS_METRICS,
        draws,
        ctx.level,
        reasons=dict.fromkeys(EPS_METRICS, undefined),
        support=ctx.support([class_clusters(base)] * len(EPS_METRICS)),
        attribute=None if norm == "Linf" else norm,
        group=f"{eps:.6g}",
        n=len(base),
    )


def replay_robust(
    stored: ProbeResult, ctx: ScoringContext, preds: dict[str, SplitPredictions]
) -> list[MetricResult]:
    """The stored probe's :data:`EPS_METRICS` rows recomputed from the clean and the
    worst-case scores in ``preds`` (a MedFailError-free KeyError when a radius's scores are
    missing: the caller names it)."""
    split = stored.config["split"]
    attacked = [p for name, p in preds.items() if name.startswith(f"{split}@")]
    radii = sorted(
        {(m.attribute or "Linf", m.group) for m in stored.metrics if m.metric in EPS_METRICS}
    )
    if not attacked or not radii:
        return []
    clean = preds[split]
    position = {sample: i for i, sample in enumerate(clean.sample_id)}
    rows = np.array([position[s] for s in attacked[0].sample_id])
    base = replace(attacked[0], split=split, proba=clean.proba[rows])
    grids = {"Linf": stored.config.get("eps", []), "L2": stored.config.get("l2_eps", [])}
    out = []
    for norm, group in radii:
        # the exact radius from the config (a group string is a rounded one)
        eps = next((float(e) for e in [0.0, *grids[norm]] if f"{float(e):.6g}" == group), None)
        if eps is None:
            raise KeyError(f"radius {group} ({norm}) is not in the probe's config")
        worst = base.score if eps == 0 else preds[attacked_split(split, norm, eps)].score
        out += robust_rows(ctx, base, worst, norm, eps)
    return out
