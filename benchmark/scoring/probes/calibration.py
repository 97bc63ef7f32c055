"""Calibration of P(positive): ECE with equal-width and equal-mass bins, Brier, reliability.

Overall and per group of every attribute, on every test split. Equal-mass bin edges are
the quantiles of the scored rows (the group's own rows for a group) and stay fixed across
bootstrap replicates; reliability curves give per-bin mean p, mean y and count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.results.report import Curve, MetricResult, ProbeResult
from benchmark.scoring.probes.base import BatchFn, Probe, ScoringContext, clusters, emit
from benchmark.stats import metrics
from benchmark.stats.intervals import MIN_SUPPORT

METRICS = ["ece_equal_width", "ece_equal_mass", "brier"]
STRATEGIES = {"ece_equal_width": "uniform", "ece_equal_mass": "quantile"}


def calibration_batch(y: np.ndarray, p: np.ndarray, idx: np.ndarray, n_bins: int) -> BatchFn:
    """Weights (b, n) -> METRICS (b, 3) computed on rows ``idx``."""
    yy, pp = y[idx], p[idx]
    bins = {s: metrics.calibration_bins(pp, n_bins, s) for s in STRATEGIES.values()}

    def fn(w: np.ndarray) -> np.ndarray:
        ws = w[:, idx]
        eces = [metrics.bin_sums(yy, pp, bins[s], n_bins, ws).ece for s in STRATEGIES.values()]
        return np.column_stack([*eces, metrics.brier(yy, pp, ws)])

    return fn


@dataclass
class CalibrationProbe(Probe):
    n_bins: int = 15

    name = "calibration"

    def _curves(self, y: np.ndarray, p: np.ndarray, split: str, **keys: str) -> list[Curve]:
        out = []
        for strategy in STRATEGIES.values():
            bins = metrics.calibration_bins(p, self.n_bins, strategy)
            s = metrics.bin_sums(y, p, bins, self.n_bins, np.ones((1, len(y))))
            keep = s.count[0] > 0
            c = s.count[0, keep]
            out.append(
                Curve(
                    probe=self.name,
                    name=f"reliability_{strategy}",
                    split=split,
                    x=(s.sum_p[0, keep] / c).tolist(),
                    y=(s.sum_y[0, keep] / c).tolist(),
                    count=c.tolist(),
                    **keys,
                )
            )
        return out

    def run(self, ctx: ScoringContext) -> ProbeResult:
        rows: list[MetricResult] = []
        curves: list[Curve] = []
        for split in ctx.test_splits:
            pr = ctx.predictions[split]
            y, p = pr.y, pr.score
            cells = [({}, np.arange(len(y)))]
            for attr, labels in pr.groups.items():
                cells += [
                    ({"attribute": attr, "group": g}, np.flatnonzero(labels == g))
                    for g in np.unique(labels)
                ]
            fns = [calibration_batch(y, p, idx, self.n_bins) for _, idx in cells]
            draws = ctx.bootstrap(split, lambda w, fns=fns: np.hstack([f(w) for f in fns]))
            for i, (keys, idx) in enumerate(cells):
                cols = slice(3 * i, 3 * i + 3)
                in_cell = np.zeros(len(y), dtype=bool)
                in_cell[idx] = True
                rows += emit(
                    self.name,
                    split,
                    METRICS,
                    draws.cols(cols),
                    ctx.level,
                    reasons=dict.fromkeys(METRICS, "no samples"),
                    support=ctx.support([clusters(pr, in_cell)] * len(METRICS)),
                    minimum=MIN_SUPPORT["group"],  # over every patient of the cell
                    n=len(idx),
                    **keys,
                )
                curves += self._curves(y[idx], p[idx], split, **keys)
        return ProbeResult(name=self.name, config=self.config(), metrics=rows, curves=curves)
