"""Paired comparison of two reports on the same task version, from their predictions.

Both models are re-scored on the *same* bootstrap resamples (same seed, same patients), so
each replicate gives a paired difference ``A - B``; its percentile interval is the CI of the
difference. McNemar's test compares per-sample correctness at each model's own frozen
threshold (exact two-sided binomial test on the discordant pairs, scipy ``binomtest``);
it assumes independent samples, so on tasks with several rows per patient read the paired
bootstrap CI instead.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

from benchmark.common.schema import StrictModel
from benchmark.errors import MedFailError
from benchmark.results.report import Report
from benchmark.scoring.predictions import SplitPredictions, from_frame
from benchmark.scoring.probes.base import BatchFn, bootstrap, interval, split_seed
from benchmark.scoring.probes.calibration import calibration_batch
from benchmark.scoring.probes.performance import METRICS as PERF_METRICS
from benchmark.scoring.probes.performance import performance_batch

METRICS = [m for m in PERF_METRICS if m != "threshold_drift"] + ["ece_equal_mass", "brier"]


class PairedDifference(StrictModel):
    split: str
    metric: str
    a: float | None
    b: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None


class McNemar(StrictModel):
    split: str
    only_a_correct: int
    only_b_correct: int
    p_value: float


class Comparison(StrictModel):
    task: str
    content_sha256: str
    a: str
    b: str
    n_boot: int
    level: float
    differences: list[PairedDifference]
    mcnemar: list[McNemar]


def _config(report: Report, probe: str, key: str, default: float) -> float:
    """A probe setting as the report ran it (the probe's default if it did not run)."""
    try:
        return report.probe(probe).config[key]
    except KeyError:
        return default


def _batch(p: SplitPredictions, threshold: float, specificity: float, n_bins: int) -> BatchFn:
    perf = performance_batch(p, threshold, specificity)
    keep = [PERF_METRICS.index(m) for m in METRICS[:-2]]
    cal = calibration_batch(p.y, p.score, np.arange(len(p)), n_bins)
    return lambda w: np.hstack([perf(w)[:, keep], cal(w)[:, 1:]])


def _clean(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def compare(a: Report, b: Report) -> Comparison:
    """``a`` minus ``b`` on every test split both scored; both need their predictions."""
    if (a.task.ref, a.task.content_sha256) != (b.task.ref, b.task.content_sha256):
        raise MedFailError(
            f"reports are for different task builds: {a.task.ref} ({a.task.content_sha256[:12]}) "
            f"vs {b.task.ref} ({b.task.content_sha256[:12]})"
        )
    if a.predictions is None or b.predictions is None:
        raise MedFailError("both reports need their predictions (evaluate --save-predictions)")
    if a.bootstrap.seed != b.bootstrap.seed:
        raise MedFailError("the reports used different bootstrap seeds; resamples would differ")
    classes = a.task.classes
    pa, pb = from_frame(a.predictions, classes), from_frame(b.predictions, classes)
    settings = [
        (_config(r, "performance", "specificity", 0.9), _config(r, "calibration", "n_bins", 15))
        for r in (a, b)
    ]
    if settings[0] != settings[1] or a.bootstrap.level != b.bootstrap.level:
        raise MedFailError(
            "the reports used different probe settings or CI levels "
            f"(specificity, bins: {settings[0]} vs {settings[1]}; level "
            f"{a.bootstrap.level} vs {b.bootstrap.level}); re-score them alike"
        )
    specificity, n_bins = settings[0]
    n_boot = min(a.bootstrap.n_boot, b.bootstrap.n_boot)
    level = a.bootstrap.level
    diffs, tests = [], []
    for split in [s for s in pa if s in pb and s != "val"]:
        x, y = pa[split], pb[split]
        same = (
            np.array_equal(x.sample_id, y.sample_id)
            and np.array_equal(x.y, y.y)
            and np.array_equal(x.patient_id, y.patient_id)
            and x.groups.keys() == y.groups.keys()
            and all(np.array_equal(x.groups[k], y.groups[k]) for k in x.groups)
        )
        if not same:
            raise MedFailError(
                f"split {split}: the two prediction files disagree on the samples, labels, "
                "patients or groups of the same task build"
            )
        fa = _batch(pa[split], a.threshold.value, specificity, int(n_bins))
        fb = _batch(pb[split], b.threshold.value, specificity, int(n_bins))
        seed = split_seed(a.bootstrap.seed, split)
        both = lambda w, fa=fa, fb=fb: np.hstack([fa(w), fb(w)])  # noqa: E731
        point, reps = bootstrap(pa[split], both, n_boot, seed)
        k = len(METRICS)
        d_point, d_reps = point[:k] - point[k:], reps[:, :k] - reps[:, k:]
        lo, hi, _ = interval(d_reps, level)
        diffs += [
            PairedDifference(
                split=split,
                metric=m,
                a=_clean(point[i]),
                b=_clean(point[k + i]),
                diff=_clean(d_point[i]),
                ci_low=_clean(lo[i]),
                ci_high=_clean(hi[i]),
            )
            for i, m in enumerate(METRICS)
        ]
        y = pa[split].y == 1
        ok_a = (pa[split].score >= a.threshold.value) == y
        ok_b = (pb[split].score >= b.threshold.value) == y
        n10, n01 = int((ok_a & ~ok_b).sum()), int((~ok_a & ok_b).sum())
        p = binomtest(n10, n10 + n01, 0.5).pvalue if n10 + n01 else 1.0
        tests.append(McNemar(split=split, only_a_correct=n10, only_b_correct=n01, p_value=p))
    return Comparison(
        task=a.task.ref,
        content_sha256=a.task.content_sha256,
        a=a.model.name,
        b=b.model.name,
        n_boot=n_boot,
        level=level,
        differences=diffs,
        mcnemar=tests,
    )
