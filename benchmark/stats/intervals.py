"""Interval methods for bootstrap replicates, and the proportion intervals they are judged by.

Every method takes the same replicates (:class:`benchmark.stats.bootstrap.Resampler`), so
two methods, or two models, are compared on the same resamples. Conventions: ``level`` is
the two-sided coverage (0.95), ``alpha = (1 - level) / 2`` per tail, replicates that are
NaN (a metric undefined on that resample) are left out, quantiles interpolate linearly
(``numpy.quantile``'s default, as ``scipy.stats.quantile``).

- :func:`bca_interval`: Efron's bias-corrected and accelerated interval, computed exactly
  as ``scipy.stats.bootstrap(method="BCa")`` (whose source cites Efron and Tibshirani, *An
  Introduction to the Bootstrap*, 1993, sections 14.3 and 15.4): ``z0 = Phi^-1(share of
  replicates below the estimate, ties counting 1/2)`` and the acceleration
  ``a = sum(d^3) / (6 (sum(d^2))^1.5)``, ``d_i = mean(theta_(.)) - theta_(i)``, from a
  jackknife. Here the jackknife leaves out one
  *cluster* (patient) at a time (:func:`jackknife_weights`), so a patient's rows leave
  together, as they are resampled together.
- :func:`wilson_interval`: Wilson's score interval for a proportion, which
  ``statsmodels.stats.proportion.proportion_confint(method="wilson")`` equals; with
  :func:`effective_size` it takes a clustered proportion's design effect into account.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
from scipy.special import ndtr, ndtri

from benchmark.common import conventions

#: The fewest patients a metric's interval must rest on to be reported, by what the
#: metric counts (``positive``, ``negative``, ``rarer_class``, ``group``; see
#: :data:`benchmark.common.conventions.MIN_SUPPORT`): below them, the coverage study
#: (``benchmarks/experiments/interval_coverage.py``, ``docs/intervals.md``) found BCa
#: intervals covering less than 93% of the time.
MIN_SUPPORT = conventions.MIN_SUPPORT

#: At most this many jackknife leave-outs: beyond it, clusters are dealt into this many
#: seeded blocks and one block is left out at a time (a grouped jackknife), which keeps the
#: jackknife's cost at a fifth of 1,000 replicates whatever the number of patients.
MAX_JACKKNIFE_BLOCKS = 200


def jackknife_weights(
    clusters: np.ndarray | None,
    n_rows: int,
    *,
    max_blocks: int = MAX_JACKKNIFE_BLOCKS,
    seed: int = 0,
    chunk: int = 16,
) -> Iterator[np.ndarray]:
    """Yield int32 weight batches (b, n_rows): each row leaves one cluster (or one block
    of clusters, when there are more than ``max_blocks``) out; ``clusters=None``: rows."""
    unit = np.arange(n_rows) if clusters is None else np.unique(clusters, return_inverse=True)[1]
    n_units = int(unit.max(initial=-1)) + 1
    if n_units > max_blocks:  # deal the clusters into max_blocks seeded blocks
        deal = np.random.default_rng(seed).permutation(n_units) % max_blocks
        unit, n_units = deal[unit], max_blocks
    for start in range(0, n_units, chunk):
        left_out = np.arange(start, min(start + chunk, n_units))
        yield (unit[None, :] != left_out[:, None]).astype(np.int32)


def acceleration(jackknife: np.ndarray) -> np.ndarray:
    """BCa acceleration per column of jackknife estimates (k, m); NaN estimates left out,
    0 where the jackknife does not vary."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: its mean is NaN
        d = np.nanmean(jackknife, axis=0) - jackknife
    num = np.nansum(d**3, axis=0)
    den = 6.0 * np.nansum(d**2, axis=0) ** 1.5
    out = np.zeros(num.shape)
    np.divide(num, den, out=out, where=den > 0)
    return out


def bca_interval(
    point: np.ndarray, reps: np.ndarray, jackknife: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """BCa bounds per column: point (m,), replicates (n_boot, m), jackknife (k, m).

    NaN where the point or every replicate is NaN, or where the bias correction is infinite
    (every replicate on one side of the estimate)."""
    point = np.asarray(point, dtype=np.float64)
    reps = np.asarray(reps, dtype=np.float64)
    finite = np.isfinite(reps)
    n = finite.sum(axis=0)
    below = ((reps < point) & finite).sum(axis=0) + ((reps <= point) & finite).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z0 = ndtri(below / (2.0 * n))
        a = acceleration(jackknife)
        alpha = (1.0 - level) / 2.0
        bounds = []
        for z in (ndtri(alpha), -ndtri(alpha)):
            num = z0 + z
            bounds.append(ndtr(z0 + num / (1.0 - a * num)))
    lo, hi = np.full(len(point), np.nan), np.full(len(point), np.nan)
    for j in range(len(point)):
        q = np.array([bounds[0][j], bounds[1][j]])
        if n[j] and np.isfinite(point[j]) and np.all(np.isfinite(q)):
            lo[j], hi[j] = np.quantile(reps[finite[:, j], j], q)
    return lo, hi


def wilson_interval(
    successes: np.ndarray | float, n: np.ndarray | float, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson's score interval for ``successes / n`` (n may be an effective size, not an
    integer); NaN where ``n`` is 0."""
    k, m = np.asarray(successes, dtype=np.float64), np.asarray(n, dtype=np.float64)
    z = -ndtri((1.0 - level) / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / m
        centre = (p + z**2 / (2 * m)) / (1 + z**2 / m)
        half = z / (1 + z**2 / m) * np.sqrt(p * (1 - p) / m + z**2 / (4 * m**2))
    bad = ~(m > 0)
    return np.where(bad, np.nan, centre - half), np.where(bad, np.nan, centre + half)


def effective_size(successes: np.ndarray, trials: np.ndarray) -> float:
    """Effective sample size of a proportion pooled over clusters: ``p(1-p) / Var(p_hat)``
    with the ratio estimator's between-cluster variance ``Var(p_hat) = G / (G - 1) *
    sum_c (a_c - p_hat m_c)^2 / M^2`` (``a_c`` successes and ``m_c`` trials of cluster c,
    ``M = sum m_c``, ``G`` clusters with a trial), capped at ``M``. One trial per cluster
    gives ``G - 1``, and so do clusters whose trials all agree, whatever their size; a
    proportion of 0 or 1 has no spread to measure, and its size is then ``G`` (rows of one
    patient are not independent evidence)."""
    a, m = np.asarray(successes, dtype=np.float64), np.asarray(trials, dtype=np.float64)
    keep = m > 0
    a, m = a[keep], m[keep]
    g, total = len(m), m.sum()
    if g < 2:
        return float(g)
    p = a.sum() / total
    var = g / (g - 1) * np.sum((a - p * m) ** 2) / total**2
    if var <= 0:
        return float(g)
    return float(min(p * (1 - p) / var, total))
