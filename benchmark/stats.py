"""The bootstrap engine: seeded replicate weights and grouped metrics computed from them.

A bootstrap replicate is a vector of non-negative integer row weights (how often each row
was drawn). Every metric here is written once, for a batch of weight vectors of shape
``(n_replicates, n_rows)``, so the point estimate is the same code with all weights 1 and
two reports that use the same :class:`Resampler` (same seed, same clusters) see the same
resamples, which makes paired differences exact.

Resampling units:

- rows (``clusters=None``);
- clusters, e.g. patients: a cluster is drawn as a whole, so a patient with many rows
  moves as one (all its rows get the cluster's count);
- optionally within strata, e.g. sites: each stratum keeps its number of clusters, which
  keeps the site mix of the scored split fixed.

Speed (hand-written on purpose; measured in ``benchmarks/bench_bootstrap.py``): weights are
drawn with ``Generator.integers`` + ``bincount`` per chunk of replicates, confusion counts are
a sparse product, and AUROC uses one sort of the scores plus cumulative sums of the negative
weights, with exact tie handling (ties count 1/2), so no replicate re-sorts anything.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Resampler:
    """Seeded bootstrap weights over rows, or over clusters within optional strata.

    Parameters
    ----------
    n_rows : number of rows being scored.
    clusters : array of shape (n_rows,), the cluster (patient) of each row, or None.
    strata : array of shape (n_rows,), the stratum (site) of each row, or None. A cluster
        must lie in one stratum.
    n_boot : number of replicates (default 1,000).
    seed : the bootstrap seed; the same seed gives the same replicates.
    chunk : replicates generated at a time (memory is about ``chunk * n_rows * 4`` bytes).
    """

    n_rows: int
    clusters: np.ndarray | None = None
    strata: np.ndarray | None = None
    n_boot: int = 1000
    seed: int = 0
    chunk: int = 64

    def _units(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """Unit index per row, and the unit ids of each stratum."""
        if self.clusters is None:
            unit = np.arange(self.n_rows)
        else:
            _, unit = np.unique(np.asarray(self.clusters), return_inverse=True)
        n_units = int(unit.max()) + 1 if self.n_rows else 0
        if self.strata is None:
            return unit, [np.arange(n_units)]
        _, stratum = np.unique(np.asarray(self.strata), return_inverse=True)
        stratum_of_unit = np.full(n_units, -1)
        stratum_of_unit[unit] = stratum
        if np.any(stratum_of_unit[unit] != stratum):
            raise ValueError("a cluster spans several strata; clusters must nest in strata")
        return unit, [np.flatnonzero(stratum_of_unit == s) for s in range(stratum.max() + 1)]

    def weights(self) -> Iterator[np.ndarray]:
        """Yield int32 arrays of shape (b, n_rows): row j is replicate j's row weights."""
        unit, groups = self._units()
        n_units = sum(len(g) for g in groups)
        rng = np.random.default_rng(self.seed)
        # int32 prefix sums downstream: cap b * (largest possible replicate total) < 2**31
        max_total = n_units * int(np.bincount(unit).max()) if self.n_rows else 1
        chunk = max(1, min(self.chunk, (2**31 - 1) // max_total))
        done = 0
        while done < self.n_boot:
            b = min(chunk, self.n_boot - done)
            draws = np.concatenate(
                [g[rng.integers(0, len(g), size=(b, len(g)))] for g in groups], axis=1
            )
            draws += (np.arange(b) * n_units)[:, None]
            counts = np.bincount(draws.ravel(), minlength=b * n_units).astype(np.int32)
            counts = counts.reshape(b, n_units)
            yield counts if self.clusters is None else np.take(counts, unit, axis=1)
            done += b


def _group_index(groups: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Group labels (sorted) and the index of each row's group."""
    if groups is None:
        return np.array(["all"], dtype=object), np.zeros(n, dtype=np.intp)
    labels, index = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    return labels, index


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise, NaN where den is 0 (an empty group or class)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


@dataclass(frozen=True)
class Confusion:
    """Weighted confusion counts per replicate and group, each of shape (b, n_groups)."""

    tp: np.ndarray
    fp: np.ndarray
    tn: np.ndarray
    fn: np.ndarray

    @property
    def n(self) -> np.ndarray:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def accuracy(self) -> np.ndarray:
        return _ratio(self.tp + self.tn, self.n)

    @property
    def selection_rate(self) -> np.ndarray:
        return _ratio(self.tp + self.fp, self.n)

    @property
    def tpr(self) -> np.ndarray:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def fpr(self) -> np.ndarray:
        return _ratio(self.fp, self.fp + self.tn)


class GroupedScorer:
    """Confusion counts and AUROC per group for batches of replicate weights.

    Parameters
    ----------
    y_true : array (n,) of 0/1 labels.
    score : array (n,) of positive-class scores.
    threshold : decisions are ``score >= threshold``.
    groups : array (n,) of group labels, or None for one group "all".

    Rows are ordered once by (group, score) and tied scores within a group form *levels*.
    Per replicate, positive and negative weights are summed per level (``P_L``, ``N_L``);
    then ``AUROC_g = sum_{L in g} P_L (2 * N_below_L + N_L) / (2 * P_g * N_g)``, which is
    sklearn's ``roc_auc_score`` (ties count 1/2) at unit weights. Decisions are a suffix of
    each group's levels, so the confusion counts are differences of prefix sums.
    """

    def __init__(
        self,
        y_true: np.ndarray,
        score: np.ndarray,
        threshold: float,
        groups: np.ndarray | None = None,
    ) -> None:
        y = np.asarray(y_true)
        s = np.asarray(score, dtype=np.float64)
        n = len(y)
        self.labels, g = _group_index(groups, n)
        self.n_groups = n_groups = len(self.labels)
        self._order = order = np.lexsort((s, g))
        gs, ss = g[order], s[order]
        self._is_pos = (y[order] == 1)[None, :]
        new_level = np.ones(n, dtype=bool)
        new_level[1:] = (gs[1:] != gs[:-1]) | (ss[1:] != ss[:-1])
        self._level_starts = np.flatnonzero(new_level)
        self._has_ties = len(self._level_starts) < n
        level_group = gs[self._level_starts]
        self._level_bounds = np.searchsorted(level_group, np.arange(n_groups + 1))
        self._levels_per_group = np.diff(self._level_bounds)
        level_score = ss[self._level_starts]
        # first level of each group whose score reaches the threshold
        self._cut = np.array(
            [
                lo + np.searchsorted(level_score[lo:hi], threshold)
                for lo, hi in zip(self._level_bounds[:-1], self._level_bounds[1:], strict=True)
            ],
            dtype=np.intp,
        )

    def score_batch(self, w: np.ndarray) -> tuple[Confusion, np.ndarray]:
        """Confusion counts and AUROC, each of shape (b, n_groups), for weights (b, n)."""
        # int32 halves memory traffic: each replicate's weights sum to at most n, so the
        # flattened prefix sums stay below b * n < 2**31 (Resampler caps its chunk so)
        ws = np.take(np.asarray(w, dtype=np.int32), self._order, axis=1)
        pos = np.where(self._is_pos, ws, 0)
        neg = ws - pos
        if self._has_ties:
            pos = np.add.reduceat(pos, self._level_starts, axis=1)
            neg = np.add.reduceat(neg, self._level_starts, axis=1)
        b, k = neg.shape
        # prefix sums of one flattened 1-D array (much faster than a 2-D cumsum); only
        # differences inside a replicate are used, so earlier replicates' totals cancel
        base = (np.arange(b) * k)[:, None]
        cum_neg = np.zeros(b * k + 1, dtype=np.int32)
        np.cumsum(neg.ravel(), out=cum_neg[1:])
        cum_pos = np.zeros(b * k + 1, dtype=np.int32)
        np.cumsum(pos.ravel(), out=cum_pos[1:])
        lo, hi, cut = self._level_bounds[:-1], self._level_bounds[1:], self._cut
        n_lo, n_cut, n_hi = (cum_neg[base + i] for i in (lo, cut, hi))
        p_lo, p_cut, p_hi = (cum_pos[base + i] for i in (lo, cut, hi))
        confusion = Confusion(tp=p_hi - p_cut, fp=n_hi - n_cut, tn=n_cut - n_lo, fn=p_cut - p_lo)
        below = cum_neg[:-1].reshape(b, k) - np.repeat(n_lo, self._levels_per_group, axis=1)
        inner = np.multiply(pos, 2 * below + neg, dtype=np.int64)  # can pass 2**31 on ties
        num = np.zeros((b, self.n_groups))
        nonempty = self._levels_per_group > 0
        if k:
            num[:, nonempty] = np.add.reduceat(inner, lo[nonempty], axis=1, dtype=np.int64)
        den = 2.0 * (p_hi - p_lo).astype(np.float64) * (n_hi - n_lo)
        return confusion, _ratio(num, den)


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over axis 0, ignoring NaN replicates (NaN if all are NaN)."""
    lo, hi = 50 * (1 - level), 50 * (1 + level)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN
        return np.nanpercentile(samples, lo, axis=0), np.nanpercentile(samples, hi, axis=0)
