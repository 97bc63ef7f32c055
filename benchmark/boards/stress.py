"""The underspecification stress test (D'Amour et al., 2022): one recipe, many training
seeds, equal in distribution; how far do they spread, and more under shift than in
distribution?

From an entry's reports (one per training seed), per performance metric and test split:
the mean, the sample SD over seeds with its 95% chi-square interval (which assumes the
seeds' values are roughly normal), and the range (max − min), descriptive (no interval: a
bootstrap over K seeds can never exceed the observed range, so it would only bound it from
below). And Spearman's ρ between each seed's id_test and ood_test value, with the Fisher-z
interval of Fieller et al. (1957), SE = sqrt(1.06 / (K − 3)), for K >= 4 seeds (near 1:
in-distribution validation picks the models that hold up under shift; near 0 or below: it
cannot). Headline: "ID AUROC spread x, OOD AUROC spread y" (spread = range). A pure function
of the stored reports, so it is recomputed, never stored.
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
    """One metric on one split over the seeds: the values by seed, their mean, SD (with its
    chi-square interval) and range."""

    metric: str
    split: str
    values: dict[int, float]
    mean: float
    sd: float
    sd_ci: tuple[float, float]
    range: float


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


def _sd_interval(sd: float, k: int, level: float) -> tuple[float, float]:
    """The chi-square interval of a normal sample's SD from ``k`` values."""
    from scipy.stats import chi2

    if k < 2 or not np.isfinite(sd):
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    scale = (k - 1) * sd**2
    return float(np.sqrt(scale / chi2.ppf(1 - tail, k - 1))), float(
        np.sqrt(scale / chi2.ppf(tail, k - 1))
    )


def _spearman(a: np.ndarray, b: np.ndarray, level: float) -> tuple[float, float, float]:
    """Spearman's rho and its Fisher-z interval (SE sqrt(1.06 / (K - 3)); NaN under 4)."""
    from scipy.stats import norm, spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan"), float("nan"), float("nan")
    rho = float(spearmanr(a, b).statistic)
    if len(a) < 4 or abs(rho) >= 1:
        return rho, float("nan"), float("nan")
    half = norm.ppf(1 - (1 - level) / 2) * np.sqrt(1.06 / (len(a) - 3))
    z = np.arctanh(rho)
    return rho, float(np.tanh(z - half)), float(np.tanh(z + half))


def stress(reports: dict[int, Report], *, level: float = 0.95) -> Stress:
    """The stress test of one entry's reports by training seed (module docstring)."""
    seeds = sorted(reports)
    spreads, rho = [], {}
    for metric in METRICS:
        table = {
            split: np.array([_value(reports[s], metric, split) for s in seeds]) for split in SPLITS
        }
        for split, v in table.items():
            finite = v[np.isfinite(v)]
            if not len(finite):
                continue
            sd = float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan")
            spreads.append(
                Spread(
                    metric,
                    split,
                    dict(zip(seeds, map(float, v), strict=True)),
                    float(finite.mean()),
                    sd,
                    _sd_interval(sd, len(finite), level),
                    float(np.ptp(finite)),
                )
            )
        ind, ood = table["id_test"], table["ood_test"]
        if np.isfinite(ind).all() and np.isfinite(ood).all():
            rho[metric] = _spearman(ind, ood, level)
    return Stress(seeds, spreads, rho)
