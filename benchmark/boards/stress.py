"""The underspecification stress test (D'Amour et al., 2022): one recipe, many training
seeds, equal in distribution; how far do they spread, and more under shift than in
distribution?

From an entry's reports (one per training seed), per performance metric and test split:
the mean, the sample SD and the range (max − min) over seeds, each spread with a
percentile bootstrap CI over seeds (``n_boot`` resamples of the K seeds, seeded); and the
Spearman rank correlation between each seed's id_test and ood_test value, with its
bootstrap CI (near 1: in-distribution validation picks the models that hold up under shift;
near 0 or below: it cannot). With K seeds the intervals are wide and K is stated.
Headline: "ID AUROC spread x, OOD AUROC spread y" (spread = range). A pure function of the
stored reports, so it is recomputed, never stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.results.report import Report

#: The performance metrics summarised (the performance probe's, without threshold drift).
METRICS = ("auroc", "auprc", "accuracy", "f1", "sensitivity_at_specificity")
SPLITS = ("id_test", "ood_test")


@dataclass(frozen=True)
class Spread:
    """One metric on one split over the seeds: the values by seed, their mean, SD and
    range, and the SD's and range's bootstrap CIs over seeds."""

    metric: str
    split: str
    values: dict[int, float]
    mean: float
    sd: float
    sd_ci: tuple[float, float]
    range: float
    range_ci: tuple[float, float]


@dataclass(frozen=True)
class Stress:
    """An entry's stress test: the spreads, and Spearman's ρ of ID against OOD per metric."""

    seeds: list[int]
    spreads: list[Spread]
    rho: dict[str, tuple[float, float, float]]  # metric -> (rho, ci_low, ci_high)

    def spread(self, metric: str, split: str) -> Spread | None:
        return next((s for s in self.spreads if (s.metric, s.split) == (metric, split)), None)

    @property
    def headline(self) -> str:
        parts = []
        for split, label in (("id_test", "ID"), ("ood_test", "OOD")):
            s = self.spread("auroc", split)
            if s is not None:
                parts.append(f"{label} AUROC spread {s.range:.3f} (SD {s.sd:.3f})")
        return ", ".join(parts) + f" over {len(self.seeds)} seeds"


def _value(report: Report, metric: str, split: str) -> float:
    try:
        value = report.metric(metric, split, probe="performance").value
    except KeyError:
        return float("nan")
    return float("nan") if value is None else float(value)


def _interval(reps: np.ndarray, level: float) -> tuple[float, float]:
    finite = reps[np.isfinite(reps)]
    if len(finite) < 2:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def stress(
    reports: dict[int, Report], *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> Stress:
    """The stress test of one entry's reports by training seed (module docstring)."""
    seeds = sorted(reports)
    picks = np.random.default_rng(seed).integers(0, len(seeds), (n_boot, len(seeds)))
    spreads, rho = [], {}
    for metric in METRICS:
        table = {
            split: np.array([_value(reports[s], metric, split) for s in seeds]) for split in SPLITS
        }
        for split, v in table.items():
            if not np.isfinite(v).any():
                continue
            resampled = v[picks]
            with np.errstate(all="ignore"):
                sds = np.nanstd(resampled, axis=1, ddof=1)
                ranges = np.nanmax(resampled, axis=1) - np.nanmin(resampled, axis=1)
            spreads.append(
                Spread(
                    metric,
                    split,
                    dict(zip(seeds, map(float, v), strict=True)),
                    float(np.nanmean(v)),
                    float(np.nanstd(v, ddof=1)) if np.isfinite(v).sum() > 1 else float("nan"),
                    _interval(sds, level),
                    float(np.nanmax(v) - np.nanmin(v)),
                    _interval(ranges, level),
                )
            )
        ind, ood = table["id_test"], table["ood_test"]
        if np.isfinite(ind).all() and np.isfinite(ood).all():
            reps = np.array([_spearman(ind[p], ood[p]) for p in picks])
            rho[metric] = (_spearman(ind, ood), *_interval(reps, level))
    return Stress(seeds, spreads, rho)
