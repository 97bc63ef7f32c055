"""Paired comparison of two models, or of two multi-seed entries, on one task version.

Every number comes from the stored predictions: each report is re-scored with its own probe
configs on every probe that needs only predictions (performance, calibration, fairness,
shift; :data:`benchmark.scoring.rescore.RECOMPUTABLE`), and on the worst-case scores the
adversarial probe stores as pseudo-splits (``id_test@linf=4/255``: performance at the same
frozen threshold), under the bootstrap seed both share, so replicate ``i`` of A and
replicate ``i`` of B resample the same patients and ``A_i - B_i`` is a paired difference.

Entries (several training seeds each) are paired by training seed. The point value is the
mean over the paired seeds of ``A_s - B_s``. Its interval is a two-level percentile
bootstrap: replicate ``i`` draws the seeds with replacement (one seeded draw shared by
every metric) and averages ``A_s,i - B_s,i`` over the drawn seeds, so it covers training
seeds and test-set resampling together. With one seed it is the ordinary paired bootstrap.

McNemar's test compares per-sample correctness at each model's own frozen threshold (exact
two-sided binomial test on the discordant pairs, scipy ``binomtest``), per paired seed; it
assumes independent samples, so on tasks with several rows per patient read the paired
bootstrap CI instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
from scipy.stats import binomtest

from benchmark.common.conventions import MIN_SUPPORT
from benchmark.common.schema import StrictModel
from benchmark.errors import MedFailError, one_line
from benchmark.results.report import Report
from benchmark.scoring.predictions import SplitPredictions, from_frame
from benchmark.scoring.probes import PROBES, default_config
from benchmark.scoring.probes.base import (
    Draws,
    MetricKey,
    Replicates,
    interval,
    recording,
    split_seed,
)
from benchmark.scoring.rescore import RECOMPUTABLE, replay_context, rerun
from benchmark.tasks.registry import resolve
from benchmark.tasks.spec import TaskSpec, ValidityClaim
from benchmark.tasks.validity import failure_claim

#: Seed of the seed draw of the two-level bootstrap, mixed with the bootstrap seed.
SEED_DRAW = "compare:seeds"


class PairedDifference(StrictModel):
    """``A - B`` of one metric: means over the paired seeds, the two-level CI, and each
    seed's own difference (None where the metric is undefined)."""

    probe: str
    metric: str
    split: str
    attribute: str | None = None
    group: str | None = None
    a: float | None
    b: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    per_seed: list[float | None]


class McNemar(StrictModel):
    seed: int
    split: str
    only_a_correct: int
    only_b_correct: int
    p_value: float


class Recovery(StrictModel):
    """Performance recovery of A over the reference B (ERM) under shift:
    ``(A_ood - B_ood) / (B_id - B_ood)``, means over the paired seeds; 1 closes B's gap
    between ``id_test`` and ``ood_test``, 0 changes nothing, below 0 widens it. The interval
    is the two-level percentile bootstrap of the ratio of the replicates' means (seeds
    drawn, then patients). Withheld (None, with ``reason``) when B shows no gap: its
    ID - OOD interval reaches 0."""

    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    reference_gap: float | None
    reason: str = ""


class Comparison(StrictModel):
    task: str
    content_sha256: str
    a: str
    b: str
    seeds: list[int]
    n_boot: int
    level: float
    differences: list[PairedDifference]
    mcnemar: list[McNemar]
    recovery: list[Recovery] = []


def _spec(report: Report) -> TaskSpec:
    """The task spec ``report`` was scored under (fairness needs its reference groups)."""
    try:
        spec = resolve(report.task.ref).spec
    except MedFailError as e:
        raise MedFailError(f"compare needs the spec of {report.task.ref}: {one_line(e)}") from e
    if spec.sha256() != report.task.spec_sha256:
        raise MedFailError(
            f"the reports were scored under other spec content than this installation's "
            f"{report.task.ref}; compare them where that spec is installed"
        )
    return spec


def _check_pair(a: Report, b: Report) -> None:
    if (a.task.ref, a.task.content_sha256) != (b.task.ref, b.task.content_sha256):
        raise MedFailError(
            f"reports are for different task builds: {a.task.ref} ({a.task.content_sha256[:12]}) "
            f"vs {b.task.ref} ({b.task.content_sha256[:12]})"
        )
    if a.predictions is None or b.predictions is None:
        raise MedFailError("both reports need their predictions (evaluate --save-predictions)")
    if a.bootstrap.seed != b.bootstrap.seed:
        raise MedFailError("the reports used different bootstrap seeds; resamples would differ")
    configs = [
        {p.name: _settings(p.name, p.config) for p in r.probes if p.name in RECOMPUTABLE}
        for r in (a, b)
    ]
    shared = configs[0].keys() & configs[1].keys()
    differ = sorted(k for k in shared if configs[0][k] != configs[1][k])
    if differ or a.bootstrap.level != b.bootstrap.level:
        what = f"the {', '.join(differ)} probe settings" if differ else "the CI levels"
        raise MedFailError(f"the reports differ in {what}; re-score them alike")


def _settings(probe: str, config: dict[str, Any]) -> dict[str, Any]:
    """A probe's stored config without what its run measured (two models differ there)."""
    derived = PROBES[probe].derived_config
    return {k: v for k, v in config.items() if k not in derived}


def _same_rows(x: SplitPredictions, y: SplitPredictions) -> bool:
    return (
        np.array_equal(x.sample_id, y.sample_id)
        and np.array_equal(x.y, y.y)
        and np.array_equal(x.patient_id, y.patient_id)
        and x.groups.keys() == y.groups.keys()
        and all(np.array_equal(x.groups[k], y.groups[k]) for k in x.groups)
    )


def _replicates(
    report: Report, spec: TaskSpec, n_boot: int, probes: set[str]
) -> tuple[Replicates, float]:
    """Every summary metric of ``probes`` (per-group rows left out, but for the metric of
    the task's failure claim), point and replicates, and the frozen threshold re-derived
    from val."""
    assert report.predictions is not None
    preds = from_frame(report.predictions, list(report.task.classes))
    if "val" not in preds:
        raise MedFailError(f"{report.model.name}: its predictions have no val rows")
    ctx = replay_context(report, spec, preds, n_boot=n_boot)
    pseudo = tuple(s for s in preds if "@" in s)  # worst-case scores under attack
    with recording() as found:
        for stored in report.probes:
            if stored.name in probes:
                rerun(stored, ctx)
        if pseudo:  # their performance, at the same frozen threshold
            attacked = replace(ctx, predictions={s: preds[s] for s in pseudo}, test_splits=pseudo)
            PROBES["performance"](**_performance_config(report)).run(attacked)
    claim = failure_claim(spec)
    kept = None if claim is None else claim_key(claim)
    return {k: v for k, v in found.items() if k[4] is None or k == kept}, ctx.threshold


def claim_key(claim: ValidityClaim) -> MetricKey:
    """The report key of the metric a failure claim is about."""
    return (claim.probe, claim.metric, claim.split, claim.attribute, claim.group)


def _performance_config(report: Report) -> dict[str, Any]:
    try:
        return report.probe("performance").config
    except KeyError:
        return default_config("performance")


def _mcnemar(seed: int, a: Report, b: Report, ta: float, tb: float) -> list[McNemar]:
    assert a.predictions is not None and b.predictions is not None
    classes = list(a.task.classes)
    pa, pb = from_frame(a.predictions, classes), from_frame(b.predictions, classes)
    tests = []
    for split in [s for s in pa if s in pb and s != "val"]:
        if not _same_rows(pa[split], pb[split]):
            raise MedFailError(
                f"split {split}: the two prediction files disagree on the samples, labels, "
                "patients or groups of the same task build"
            )
        if "@" in split:  # worst-case scores: compared through the paired bootstrap only
            continue
        y = pa[split].y == 1
        ok_a = (pa[split].score >= ta) == y
        ok_b = (pb[split].score >= tb) == y
        n10, n01 = int((ok_a & ~ok_b).sum()), int((~ok_a & ok_b).sum())
        p = binomtest(n10, n10 + n01, 0.5).pvalue if n10 + n01 else 1.0
        tests.append(
            McNemar(seed=seed, split=split, only_a_correct=n10, only_b_correct=n01, p_value=p)
        )
    return tests


def _clean(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


#: Replicates already computed, by (report identity, n_boot, probes): see compare_runs.
ReplicateCache = dict[tuple[int, int, frozenset[str]], tuple[Replicates, float]]


def compare_runs(
    a: Mapping[int, Report],
    b: Mapping[int, Report],
    *,
    names: tuple[str, str] | None = None,
    probes: set[str] | None = None,
    cache: ReplicateCache | None = None,
) -> Comparison:
    """``a`` minus ``b``, each a mapping training seed -> report, paired on the seeds both
    have (at least one); every report needs its predictions. ``probes`` limits the probes
    re-scored (default: every recomputable one both carry); ``cache`` keeps each report's
    replicates for the next call (many methods compared with one ERM entry), valid while
    the reports live."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise MedFailError(
            f"no training seed in common (A: {sorted(a)}, B: {sorted(b)}); entries are "
            "paired by seed"
        )
    first = a[seeds[0]]
    for s in seeds:
        _check_pair(first, a[s])
        _check_pair(first, b[s])
    spec = _spec(first)
    n_boot = min(r.bootstrap.n_boot for s in seeds for r in (a[s], b[s]))
    wanted = {p.name for p in first.probes if p.name in RECOMPUTABLE}
    for s in seeds:
        wanted &= {p.name for p in a[s].probes} & {p.name for p in b[s].probes}
    if probes is not None:
        wanted &= probes
    cache = {} if cache is None else cache

    def replicates(report: Report) -> tuple[Replicates, float]:
        key = (id(report), n_boot, frozenset(wanted))
        if key not in cache:
            cache[key] = _replicates(report, spec, n_boot, wanted)
        return cache[key]

    per_seed, tests = [], []
    for s in seeds:
        ra, ta = replicates(a[s])
        rb, tb = replicates(b[s])
        per_seed.append((ra, rb))
        tests += _mcnemar(s, a[s], b[s], ta, tb)
    rng = np.random.default_rng(split_seed(first.bootstrap.seed, SEED_DRAW))
    draw = rng.integers(0, len(seeds), size=(n_boot, len(seeds)))
    keys = [k for k in per_seed[0][0] if all(k in ra and k in rb for ra, rb in per_seed)]
    differences = [_difference(k, per_seed, draw, first.bootstrap.level) for k in keys]
    withheld = {  # recovery is withheld where the difference it divides is
        d.metric
        for d in differences
        if (d.probe, d.split, d.attribute) == ("performance", "ood_test", None) and d.ci_low is None
    }
    return Comparison(
        task=first.task.ref,
        content_sha256=first.task.content_sha256,
        a=names[0] if names else a[seeds[0]].model.name,
        b=names[1] if names else b[seeds[0]].model.name,
        seeds=seeds,
        n_boot=n_boot,
        level=first.bootstrap.level,
        differences=differences,
        mcnemar=tests,
        recovery=[
            _recovery(m, per_seed, draw, first.bootstrap.level)
            if m not in withheld
            else Recovery(
                metric=m,
                value=None,
                ci_low=None,
                ci_high=None,
                reference_gap=None,
                reason="no interval for the difference on ood_test (too few patients)",
            )
            for m in RECOVERY_METRICS
            if all(_key(m, split) in keys for split in ("id_test", "ood_test"))
        ],
    )


#: Performance metrics whose recovery under shift a comparison reports.
RECOVERY_METRICS = ("auroc", "accuracy")


def _key(metric: str, split: str) -> MetricKey:
    return ("performance", metric, split, None, None)


def _recovery(
    metric: str, per_seed: list[tuple[Replicates, Replicates]], draw: np.ndarray, level: float
) -> Recovery:
    """:class:`Recovery` of ``metric`` from the paired seeds' replicates."""
    ident, ood = _key(metric, "id_test"), _key(metric, "ood_test")
    gain = [ra[ood].reps[:, 0] - rb[ood].reps[:, 0] for ra, rb in per_seed]
    gap = [rb[ident].reps[:, 0] - rb[ood].reps[:, 0] for _, rb in per_seed]
    gain_pt = np.mean([ra[ood].point[0] - rb[ood].point[0] for ra, rb in per_seed])
    gap_pt = np.mean([rb[ident].point[0] - rb[ood].point[0] for _, rb in per_seed])
    gap_reps, gain_reps = _two_level(gap, draw), _two_level(gain, draw)
    alpha = (1 - level) / 2
    gap_lo = np.nanquantile(gap_reps, alpha) if np.isfinite(gap_reps).any() else np.nan
    if not (np.isfinite(gap_pt) and gap_pt > 0 and gap_lo > 0):
        return Recovery(
            metric=metric,
            value=None,
            ci_low=None,
            ci_high=None,
            reference_gap=_clean(gap_pt),
            reason="the reference shows no ID - OOD gap (its interval reaches 0)",
        )
    ratio = gain_reps / gap_reps
    lo, hi = np.nanquantile(ratio, [alpha, 1 - alpha])
    return Recovery(
        metric=metric,
        value=_clean(gain_pt / gap_pt),
        ci_low=_clean(lo),
        ci_high=_clean(hi),
        reference_gap=_clean(gap_pt),
    )


def _two_level(per_seed: list[np.ndarray], draw: np.ndarray) -> np.ndarray:
    """Replicate ``i``: the mean over the seeds ``draw[i]`` drew of each drawn seed's own
    replicate ``i`` (``per_seed``: one replicate vector per paired seed)."""
    stacked = np.stack(per_seed)
    return stacked[draw, np.arange(draw.shape[0])[:, None]].mean(axis=1)


def _difference(
    key: MetricKey, per_seed: list[tuple[Replicates, Replicates]], draw: np.ndarray, level: float
) -> PairedDifference:
    """``A - B`` of one metric over the paired seeds: the seeds' mean difference, its
    two-level replicates (seeds drawn by ``draw``, then each seed's patient replicates),
    and the interval by the method the reports' scorer uses: BCa when both carry a
    jackknife (the jackknife of the mean difference over seeds: the same patients are
    left out in every seed), withheld on the fewest patients behind either side."""
    a = [ra[key] for ra, _ in per_seed]
    b = [rb[key] for _, rb in per_seed]
    pa = np.array([x.point[0] for x in a])
    pb = np.array([x.point[0] for x in b])
    pooled = _two_level([x.reps[:, 0] - y.reps[:, 0] for x, y in zip(a, b, strict=True)], draw)
    jack = None
    if all(x.jack is not None for x in a + b):
        jack = np.mean([x.jack - y.jack for x, y in zip(a, b, strict=True)], axis=0)
    supports = [int(x.support[0]) for x in a + b if x.support is not None]
    support = np.array([min(supports)]) if supports else None
    # the least support the metric's own interval needs (recorded by emit)
    minimum = max(
        (int(x.minimum[0]) for x in a + b if x.minimum is not None),
        default=MIN_SUPPORT["rarer_class"],
    )
    diff = Draws(np.array([(pa - pb).mean()]), pooled[:, None], jack)
    lo, hi, _, _ = interval(diff, level, support, minimum)
    probe, metric, split, attribute, group = key
    return PairedDifference(
        probe=probe,
        metric=metric,
        split=split,
        attribute=attribute,
        group=group,
        a=_clean(pa.mean()),
        b=_clean(pb.mean()),
        diff=_clean((pa - pb).mean()),
        ci_low=_clean(lo[0]),
        ci_high=_clean(hi[0]),
        per_seed=[_clean(x) for x in pa - pb],
    )


def compare(a: Report, b: Report) -> Comparison:
    """``a`` minus ``b``: two single reports, paired whatever their training seeds."""
    seed = a.seeds.get("train", 0)
    return compare_runs({seed: a}, {seed: b})
