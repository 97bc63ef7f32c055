"""Bootstrap speed: MedFail's engine against fairlearn's MetricFrame (issue 4, section 6).

Five metrics (accuracy, selection rate, TPR, FPR, AUROC), overall and per group, with
percentile CIs over ``--n-boot`` replicates, on ``--n`` predictions in ``--groups`` groups.
MetricFrame is slow (about 2.7 s per replicate at 100k rows), so it runs ``--fairlearn-boot``
replicates and its time is scaled linearly to ``--n-boot``; the script says so.

Run: ``.venv/bin/python benchmarks/performance/bootstrap.py`` (not part of the test suite).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
from machine import cpu_name  # benchmarks/performance/machine.py (the script's own folder)
from sklearn.metrics import accuracy_score, roc_auc_score

from benchmark.stats.bootstrap import GroupedScorer, Resampler, percentile_ci


def medfail(y, s, g, thr, n_boot, clusters=None):
    by_group = GroupedScorer(y, s, thr, g)
    overall = GroupedScorer(y, s, thr)
    ones = np.ones((1, len(y)), dtype=np.int32)
    point = (*by_group.score_batch(ones), *overall.score_batch(ones))
    # each batch of weights comes already in both scorers' row orders, side by side
    n = len(y)
    order = np.concatenate([by_group.order, overall.order])
    reps = []
    for w in Resampler(n, clusters=clusters, n_boot=n_boot, seed=0).weights(order=order):
        c, a = by_group.score_ordered(w[:, :n])
        co, ao = overall.score_ordered(w[:, n:])
        reps.append(np.stack([c.accuracy, c.selection_rate, c.tpr, c.fpr, a]))
        reps.append(np.stack([co.accuracy, co.selection_rate, co.tpr, co.fpr, ao]))
    cis = percentile_ci(np.concatenate(reps[0::2], axis=1).transpose(1, 0, 2))
    cis_all = percentile_ci(np.concatenate(reps[1::2], axis=1).transpose(1, 0, 2))
    return point, cis, cis_all


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--groups", type=int, default=8)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--fairlearn-boot", type=int, default=100)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n = args.n
    y = rng.integers(0, 2, n)
    s = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
    g = rng.integers(0, args.groups, n).astype(str)
    thr = 0.5

    t0 = time.perf_counter()
    (conf, auroc, conf_all, auroc_all), _, _ = medfail(y, s, g, thr, args.n_boot)
    t_rows = time.perf_counter() - t0
    t0 = time.perf_counter()
    medfail(y, s, g, thr, args.n_boot, clusters=np.arange(n) // 3)
    t_cluster = time.perf_counter() - t0

    metrics = {
        "accuracy": accuracy_score,
        "selection_rate": selection_rate,
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
    }
    yhat = (s >= thr).astype(int)
    t0 = time.perf_counter()
    shared = {
        "y_true": y,
        "sensitive_features": g,
        "n_boot": args.fairlearn_boot,
        "ci_quantiles": [0.025, 0.975],
        "random_state": 0,
    }
    mf = MetricFrame(metrics=metrics, y_pred=yhat, **shared)
    mf_auc = MetricFrame(metrics={"auroc": roc_auc_score}, y_pred=s, **shared)
    t_fl = (time.perf_counter() - t0) * args.n_boot / args.fairlearn_boot

    # the metric names above are the Confusion attribute names
    diffs = [np.max(np.abs(mf.by_group[m].to_numpy() - getattr(conf, m)[0])) for m in metrics]
    diffs += [abs(mf.overall[m] - getattr(conf_all, m)[0, 0]) for m in metrics]
    diffs.append(np.max(np.abs(mf_auc.by_group["auroc"].to_numpy() - auroc[0])))
    diffs.append(abs(mf_auc.overall["auroc"] - auroc_all[0, 0]))
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, {platform.system()}")
    print(f"data: {n} predictions x {args.groups} groups, {args.n_boot} replicates, 5 metrics")
    print(f"medfail, row bootstrap:      {t_rows:8.2f} s")
    print(f"medfail, patient bootstrap:  {t_cluster:8.2f} s  ({t_cluster / t_rows:.2f}x rows)")
    print(
        f"fairlearn MetricFrame:       {t_fl:8.2f} s  (timed at n_boot={args.fairlearn_boot},"
        f" scaled x{args.n_boot / args.fairlearn_boot:g})"
    )
    print(f"speed-up: {t_fl / t_rows:.0f}x")
    print(
        f"point values match fairlearn/sklearn: {max(diffs) < 1e-9} (max |diff| {max(diffs):.1e})"
    )


if __name__ == "__main__":
    main()
