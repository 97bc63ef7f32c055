"""Interval methods against their references: scipy's BCa, statsmodels' Wilson interval."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import bootstrap
from statsmodels.stats.proportion import proportion_confint

from benchmark.stats.intervals import (
    bca_interval,
    effective_size,
    jackknife_weights,
    wilson_interval,
)

TOL = 1e-12


def _weighted(stat: str, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted mean or (population) standard deviation of x per weight row."""
    mean = (w @ x) / w.sum(axis=1)
    if stat == "mean":
        return mean
    return np.sqrt((w @ x**2) / w.sum(axis=1) - mean**2)


@pytest.mark.parametrize("stat", ["mean", "std"])
def test_bca_equals_scipy_on_scipys_own_replicates(stat: str) -> None:
    x = np.random.default_rng(3).exponential(size=60)
    fn = np.mean if stat == "mean" else np.std
    res = bootstrap((x,), fn, method="BCa", n_resamples=999, rng=np.random.default_rng(0))
    jack = np.concatenate([_weighted(stat, x, w) for w in jackknife_weights(None, len(x))])
    lo, hi = bca_interval(np.array([fn(x)]), res.bootstrap_distribution[:, None], jack[:, None])
    assert (lo[0], hi[0]) == pytest.approx(tuple(res.confidence_interval), abs=TOL)
    plain = np.quantile(res.bootstrap_distribution, [0.025, 0.975])
    assert not np.allclose([lo[0], hi[0]], plain)  # skewed data: BCa moves the interval


def test_bca_leaves_out_nan_replicates_and_refuses_a_one_sided_distribution() -> None:
    reps = np.array([[0.1, 1.0], [0.2, 1.1], [np.nan, 1.2], [0.3, 1.3]])
    lo, hi = bca_interval(np.array([0.2, 0.5]), reps, np.zeros((5, 2)))
    assert lo[0] == pytest.approx(np.quantile([0.1, 0.2, 0.3], 0.025))  # a = 0, z0 = 0
    assert np.isnan(lo[1]) and np.isnan(hi[1])  # every replicate above the estimate


def test_jackknife_leaves_out_one_cluster_or_one_block() -> None:
    clusters = np.array(["p1", "p1", "p2", "p3", "p3", "p3"])
    rows = np.concatenate(list(jackknife_weights(clusters, 6)))
    assert rows.tolist() == [[0, 0, 1, 1, 1, 1], [1, 1, 0, 1, 1, 1], [1, 1, 1, 0, 0, 0]]
    many = np.repeat(np.arange(500), 2)
    blocks = np.concatenate(list(jackknife_weights(many, 1000, max_blocks=50)))
    assert blocks.shape == (50, 1000)
    assert np.all(blocks.reshape(50, 500, 2).min(axis=2) == blocks.reshape(50, 500, 2).max(axis=2))
    assert np.all((blocks == 0).sum(axis=0) == 1)  # every row left out exactly once


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (9, 10), (37, 120), (120, 120)])
def test_wilson_equals_statsmodels(k: int, n: int) -> None:
    lo, hi = wilson_interval(k, n)
    ref = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert (float(lo), float(hi)) == pytest.approx(ref, abs=TOL)


def test_effective_size_counts_clusters_not_rows() -> None:
    ones = np.ones(40)
    y = (np.arange(40) % 4 == 0).astype(float)
    assert effective_size(y, ones) == pytest.approx(39)  # independent trials: n - 1
    agree = np.array([5.0] * 5 + [0.0] * 5)  # 10 patients, 5 rows each, rows agree
    assert effective_size(agree, np.full(10, 5.0)) == pytest.approx(9)
    mixed = np.array([3.0, 2.0, 3.0, 2.0])  # rows disagree within patients: more evidence
    assert effective_size(mixed, np.full(4, 5.0)) == 20  # capped at the rows
    assert effective_size(np.full(6, 4.0), np.full(6, 4.0)) == 6  # p = 1: the clusters
