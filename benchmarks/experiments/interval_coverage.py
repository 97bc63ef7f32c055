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

Each metric also gets two counts of its *support* (:func:`support`: the patients behind
it, e.g. the subgroup's positive patients for its TPR, and its events), and coverage is
tallied per pair of support bins, which is what the scorer's withholding rule is read from
(``docs/intervals.md``).

Run: ``.venv/bin/python benchmarks/experiments/interval_coverage.py [--reps 400] [--out F]``
(a CSV with one row per cell x metric x method x support bins: reps, intervals shown,
intervals covering the truth, summed width; finished cells are kept, so an interrupted run
resumes; ``--grid small`` for a quick look).
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


#: support bins (lower edges): coverage is reported per bin of a metric's support
SUPPORT_BINS = (1, 3, 6, 10, 15, 20, 30, 50)


def rate_support(clusters: np.ndarray, hit: np.ndarray, rows: np.ndarray) -> int:
    """The events of a clustered proportion over ``rows`` (a mask): the number of clusters
    with at least one hit and the number with at least one miss, whichever is smaller."""
    ids, h = clusters[rows], hit[rows]
    return min(len(np.unique(ids[h])), len(np.unique(ids[~h])))


def support(s: Sample) -> tuple[np.ndarray, np.ndarray]:
    """Per metric, two counts of the patients (clusters) behind it.

    - *patients*: those of its denominator, fixed by labels and groups alone (TPR: the
      group's positive patients; a gap or EOD the fewest of its rates'; DI the smaller
      group's patients; AUROC the rarer class's; ECE every patient);
    - *events*: for a rate, the fewer of its denominator's patients with a hit and with
      a miss (:func:`rate_support`), which depends on the estimate itself; AUROC and
      ECE as above. The scorer withholds on *patients* (``docs/intervals.md`` says why).
    """
    hit = s.score >= THRESHOLD

    def patients(mask: np.ndarray) -> int:
        return len(np.unique(s.patient[mask]))

    cell = {(k, g): (s.y == k) & (s.group == g) for k in (0, 1) for g in ("sub", "ref")}
    groups = [s.group == g for g in ("sub", "ref")]
    classes = min(patients(s.y == k) for k in (0, 1))
    everyone = patients(np.ones(len(s.y), dtype=bool))
    out = []
    for count in (patients, lambda m: rate_support(s.patient, hit, m)):
        r = {key: count(mask) for key, mask in cell.items()}
        out.append(
            np.array(
                [
                    classes,
                    r[1, "sub"],
                    r[1, "ref"],
                    r[0, "sub"],
                    r[0, "ref"],
                    min(r[1, "sub"], r[1, "ref"]),
                    min(r.values()),
                    min(count(g) for g in groups),
                    everyone,
                ]
            )
        )
    return out[0], out[1]


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


def run(
    designs: list[Design], reps: int, n_boot: int, seed: int, first: int = 0
) -> list[dict[str, object]]:
    """One row per cell x metric x method x support bin: hits, shown, width sum, withheld."""
    rows = []
    for i, d in enumerate(designs, start=first):
        t0 = time.perf_counter()
        truth = population(d, seed + 10_000 + i)
        rng = np.random.default_rng(seed + i)
        tally: dict[tuple[str, int, int, int], list[float]] = {}
        for r in range(reps):
            s = draw(d, rng)
            b_pat, b_ev = (np.searchsorted(SUPPORT_BINS, x, side="right") - 1 for x in support(s))
            for method, (lo, hi) in intervals(s, n_boot, seed + r).items():
                for j in range(len(METRICS)):
                    ok = bool(np.isfinite(lo[j]) and np.isfinite(hi[j]))
                    key = (method, j, int(b_pat[j]), int(b_ev[j]))
                    cell = tally.setdefault(key, [0, 0, 0.0, 0])
                    cell[3] += 1
                    if ok:
                        cell[0] += bool(lo[j] <= truth[j] <= hi[j])
                        cell[1] += 1
                        cell[2] += hi[j] - lo[j]
        for (method, j, bp, be), (hit, shown, width, total) in sorted(tally.items()):
            if method == "wilson_eff" and METRICS[j] not in RATES:
                continue
            rows.append(
                {
                    **asdict(d),
                    "metric": METRICS[j],
                    "method": method,
                    "patients_from": SUPPORT_BINS[bp] if bp >= 0 else 0,
                    "events_from": SUPPORT_BINS[be] if be >= 0 else 0,
                    "truth": round(float(truth[j]), 4),
                    "reps": total,
                    "shown": shown,
                    "covered": hit,
                    "width_sum": round(float(width), 4),
                }
            )
        print(f"cell {i + 1} {d} in {time.perf_counter() - t0:.0f}s", flush=True)
    return rows


def _write(rows: list[dict[str, object]], out: Path) -> None:
    tmp = out.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out)


def _done(out: Path) -> list[dict[str, str]]:
    if not out.exists():
        return []
    with out.open(newline="") as f:
        return list(csv.DictReader(f))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=400, help="test sets per cell")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--grid", choices=["full", "small"], default="full")
    ap.add_argument("--out", type=Path, default=Path("interval_coverage.csv"))
    ap.add_argument(
        "--cells",
        type=lambda t: {int(x) for x in t.split(",")},
        help="only these cells (0-based, comma-separated), e.g. to share the grid between "
        "processes: a cell's draws depend on its index only, so the rows are the same",
    )
    args = ap.parse_args()
    print(f"machine: {cpu_name()}; reps {args.reps}, n_boot {args.n_boot}", flush=True)
    rows: list[dict[str, object]] = list(_done(args.out))  # resume: finished cells stay
    finished = {tuple(str(r[k]) for k in asdict(Design())) for r in rows}
    for i, d in enumerate(grid(args.grid)):
        if tuple(str(v) for v in asdict(d).values()) in finished:
            continue
        if args.cells is not None and i not in args.cells:
            continue
        # each cell keeps its own seeds, so a resumed run gives the same rows
        rows += run([d], args.reps, args.n_boot, args.seed, first=i)
        _write(rows, args.out)  # after every cell: an interrupted run resumes here
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
