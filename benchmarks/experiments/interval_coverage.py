"""Coverage study: do the scorer's 95% intervals cover, for small subgroups?

Simulated clinical test sets with known population values (issue 26). A design is a test
set of ``n_ref`` reference-group and ``n_sub`` subgroup patients, each with 1 to
``max_images`` images (uniform), spread over ``n_sites`` sites; a patient is diseased with
probability ``prevalence`` and all their images carry that label. An image's score is
``sigmoid(-1.5 + 2.5 y - effect * y * subgroup + u_patient + s_site + e)``, with
``u ~ N(0, 1)`` (a patient effect), site offsets evenly spread over [-0.4, 0.4] and
``e ~ N(0, 0.5^2)``; decisions are ``score >= 0.5`` (a threshold frozen elsewhere).

Population values come from one draw 2,000 times the design's size. Each cell then draws
``--reps`` independent test sets and, for each, computes every metric's interval by each
method from the same ``--n-boot`` replicates:

- ``percentile``: patients resampled within sites (the probes' bootstrap), percentile CI;
- ``bca``: the same replicates, BCa with a leave-one-patient-out jackknife
  (:mod:`benchmark.stats.intervals`);
- ``row``: rows resampled independently (what fairlearn's MetricFrame bootstrap does);
- ``wilson_eff`` (rates only): Wilson's interval on the cluster-adjusted effective size.

Metrics (image level, as the probes compute them): AUROC (all images), TPR and FPR of the
subgroup and of the reference group, the TPR gap (subgroup minus reference), EOD (the sum
form, |dTPR| + |dFPR|), disparate impact (selection rate ratio) and ECE (15 equal-width
bins). An interval that cannot be computed counts as withheld, not as a miss.

Run: ``.venv/bin/python benchmarks/experiments/interval_coverage.py [--reps 400] [--out F]``
(a CSV with one row per cell x metric x method; ``--grid small`` for a quick look).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "performance"))

from machine import cpu_name  # benchmarks/performance/machine.py

from benchmark.scoring.probes.calibration import calibration_batch
from benchmark.stats.bootstrap import GroupedScorer, Resampler, percentile_ci, ratio
from benchmark.stats.intervals import (
    bca_interval,
    effective_size,
    jackknife_weights,
    wilson_interval,
)

METRICS = ["auroc", "tpr_sub", "tpr_ref", "fpr_sub", "fpr_ref", "tpr_gap", "eod", "di", "ece"]
RATES = {"tpr_sub": (1, "sub"), "tpr_ref": (1, "ref"), "fpr_sub": (0, "sub"), "fpr_ref": (0, "ref")}
THRESHOLD = 0.5
LEVEL = 0.95


@dataclass(frozen=True)
class Design:
    n_sub: int = 30
    n_ref: int = 270
    max_images: int = 10
    prevalence: float = 0.3
    n_sites: int = 3
    effect: float = 1.0


@dataclass
class Sample:
    y: np.ndarray
    score: np.ndarray
    group: np.ndarray  # "ref" / "sub"
    patient: np.ndarray
    site: np.ndarray


def draw(d: Design, rng: np.random.Generator, scale: int = 1) -> Sample:
    n_sub, n_ref = d.n_sub * scale, d.n_ref * scale
    n = n_sub + n_ref
    sub = np.arange(n) < n_sub
    diseased = rng.random(n) < d.prevalence
    site = rng.integers(0, d.n_sites, n)
    offsets = np.linspace(-0.4, 0.4, d.n_sites) if d.n_sites > 1 else np.zeros(1)
    u = rng.normal(0.0, 1.0, n)
    images = rng.integers(1, d.max_images + 1, n)
    p = np.repeat(np.arange(n), images)
    y = diseased[p].astype(np.int8)
    logit = -1.5 + 2.5 * y - d.effect * y * sub[p] + u[p] + offsets[site[p]]
    logit += rng.normal(0.0, 0.5, len(p))
    return Sample(
        y=y,
        score=1.0 / (1.0 + np.exp(-logit)),
        group=np.where(sub[p], "sub", "ref"),
        patient=p,
        site=site[p],
    )


def metric_fn(s: Sample) -> Callable[[np.ndarray], np.ndarray]:
    """Weights (b, n) -> METRICS (b, 9)."""
    groups = GroupedScorer(s.y, s.score, THRESHOLD, s.group)  # labels sorted: ref, sub
    overall = GroupedScorer(s.y, s.score, THRESHOLD)
    cal = calibration_batch(s.y, s.score, np.arange(len(s.y)), 15)

    def fn(w: np.ndarray) -> np.ndarray:
        c, _ = groups.score_batch(w)
        _, auroc = overall.score_batch(w)
        tpr, fpr, sel = c.tpr, c.fpr, c.selection_rate
        gap = tpr[:, 1] - tpr[:, 0]
        eod = np.abs(gap) + np.abs(fpr[:, 1] - fpr[:, 0])
        di = ratio(sel[:, 1], sel[:, 0])
        ece = cal(w)[:, 0]
        return np.column_stack(
            [auroc[:, 0], tpr[:, 1], tpr[:, 0], fpr[:, 1], fpr[:, 0], gap, eod, di, ece]
        )

    return fn


def population(d: Design, seed: int, scale: int = 2000) -> np.ndarray:
    s = draw(d, np.random.default_rng(seed), scale)
    return metric_fn(s)(np.ones((1, len(s.y)), dtype=np.int32))[0]


def _replicates(fn: Callable[[np.ndarray], np.ndarray], resampler: Resampler) -> np.ndarray:
    return np.concatenate([fn(w) for w in resampler.weights()])


def intervals(s: Sample, n_boot: int, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """method -> (low, high) per metric (NaN: withheld)."""
    fn = metric_fn(s)
    n = len(s.y)
    point = fn(np.ones((1, n), dtype=np.int32))[0]
    reps = _replicates(
        fn, Resampler(n, clusters=s.patient, strata=s.site, n_boot=n_boot, seed=seed)
    )
    rows = _replicates(fn, Resampler(n, n_boot=n_boot, seed=seed))
    jack = np.concatenate([fn(w) for w in jackknife_weights(s.patient, n, seed=seed)])
    out = {
        "percentile": percentile_ci(reps, LEVEL),
        "bca": bca_interval(point, reps, jack, LEVEL),
        "row": percentile_ci(rows, LEVEL),
    }
    lo, hi = np.full(len(METRICS), np.nan), np.full(len(METRICS), np.nan)
    for name, (label, group) in RATES.items():
        keep = (s.y == label) & (s.group == group)
        if not keep.any():
            continue
        hit = (s.score[keep] >= THRESHOLD).astype(float)
        _, idx = np.unique(s.patient[keep], return_inverse=True)
        k = np.bincount(idx, weights=hit)
        m = np.bincount(idx).astype(float)
        n_eff = effective_size(k, m)
        j = METRICS.index(name)
        lo[j], hi[j] = wilson_interval(hit.mean() * n_eff, n_eff, LEVEL)
    out["wilson_eff"] = (lo, hi)
    # withheld where the percentile engine withholds: more than 5% undefined replicates
    undefined = np.isnan(reps).mean(axis=0) > 0.05
    for m in ("percentile", "bca"):
        out[m] = (np.where(undefined, np.nan, out[m][0]), np.where(undefined, np.nan, out[m][1]))
    return out


def positive_patients(s: Sample) -> int:
    """Diseased subgroup patients in the test set (the clusters behind its TPR)."""
    return len(np.unique(s.patient[(s.y == 1) & (s.group == "sub")]))


def grid(kind: str) -> list[Design]:
    base = Design()
    if kind == "small":
        return [replace(base, n_sub=n) for n in (10, 30)]
    cells = [replace(base, n_sub=n) for n in (5, 10, 20, 30, 50, 100, 200)]
    cells += [replace(base, max_images=m) for m in (1, 4)]
    cells += [replace(base, prevalence=p) for p in (0.05, 0.5)]
    cells += [replace(base, n_sites=1), replace(base, effect=0.0)]
    cells += [replace(base, n_sub=100, n_ref=100, max_images=4)]  # 4 images, 50% subgroup
    return cells


def run(designs: list[Design], reps: int, n_boot: int, seed: int) -> list[dict[str, object]]:
    rows = []
    for i, d in enumerate(designs):
        t0 = time.perf_counter()
        truth = population(d, seed + 10_000 + i)
        rng = np.random.default_rng(seed + i)
        hits: dict[str, list[np.ndarray]] = {}
        widths: dict[str, list[np.ndarray]] = {}
        k_pos = []
        for r in range(reps):
            s = draw(d, rng)
            k_pos.append(positive_patients(s))
            for method, (lo, hi) in intervals(s, n_boot, seed + r).items():
                ok = np.isfinite(lo) & np.isfinite(hi)
                hits.setdefault(method, []).append(
                    np.where(ok, (lo <= truth) & (truth <= hi), np.nan)
                )
                widths.setdefault(method, []).append(np.where(ok, hi - lo, np.nan))
        for method in hits:
            h, w = np.array(hits[method]), np.array(widths[method])
            for j, metric in enumerate(METRICS):
                if method == "wilson_eff" and metric not in RATES:
                    continue
                shown = np.isfinite(h[:, j])
                rows.append(
                    {
                        **asdict(d),
                        "metric": metric,
                        "method": method,
                        "truth": round(float(truth[j]), 4),
                        "coverage": round(float(np.nanmean(h[:, j])), 3) if shown.any() else "",
                        "mean_width": round(float(np.nanmean(w[:, j])), 4) if shown.any() else "",
                        "withheld": round(float(1 - shown.mean()), 3),
                        "median_positive_sub_patients": int(np.median(k_pos)),
                        "reps": reps,
                    }
                )
        print(f"cell {i + 1}/{len(designs)} {d} in {time.perf_counter() - t0:.0f}s", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=400, help="test sets per cell")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--grid", choices=["full", "small"], default="full")
    ap.add_argument("--out", type=Path, default=Path("interval_coverage.csv"))
    args = ap.parse_args()
    print(f"machine: {cpu_name()}; reps {args.reps}, n_boot {args.n_boot}", flush=True)
    rows = run(grid(args.grid), args.reps, args.n_boot, args.seed)
    tmp = args.out.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
