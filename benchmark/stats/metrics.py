"""Binary metrics for batches of bootstrap weights.

Every function takes replicate weights ``w`` of shape ``(b, n)`` (row weights; all ones is
the point estimate) and returns an array of shape ``(b,)`` or ``(b, k)``. At unit weights
each equals its reference on the same inputs (tests compare to 1e-9): sklearn
``average_precision_score``, ``brier_score_loss``, ``f1_score(zero_division=nan)``,
``roc_curve`` and ``calibration_curve``. Conventions are stated in
:mod:`benchmark.common.conventions`; an undefined value is NaN, never an exception.

Scores are sorted once per split (:class:`RankedScores`); a replicate only sums weights
per distinct score ("level") and takes prefix sums, so nothing is re-sorted per replicate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_curve

from benchmark.errors import MedFailError
from benchmark.stats.bootstrap import ratio


class RankedScores:
    """``(y, p)`` sorted once by ``p`` ascending, with tied scores merged into levels."""

    def __init__(self, y: np.ndarray, p: np.ndarray) -> None:
        p = np.asarray(p, dtype=np.float64)
        self._order = np.argsort(p, kind="stable")
        ps = p[self._order]
        self._starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]]) if len(p) else np.array([])
        self.levels = ps[self._starts.astype(np.intp)]  # distinct scores, ascending
        self._is_pos = np.asarray(y)[self._order] == 1

    def counts(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positive and negative weight per level, each (b, n_levels), float64."""
        ws = np.take(np.asarray(w, dtype=np.float64), self._order, axis=1)
        if ws.shape[1] == 0:
            empty = np.zeros((ws.shape[0], 0))
            return empty, empty
        pos = np.add.reduceat(np.where(self._is_pos, ws, 0.0), self._starts, axis=1)
        return pos, np.add.reduceat(ws, self._starts, axis=1) - pos


def _descending_rates(ranked: RankedScores, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """TP and FP at each threshold, highest first; plus the class totals P and N, (b, 1)."""
    pos, neg = ranked.counts(w)
    tp = np.cumsum(pos[:, ::-1], axis=1)
    fp = np.cumsum(neg[:, ::-1], axis=1)
    return tp, fp, pos.sum(1, keepdims=True), neg.sum(1, keepdims=True)


def average_precision(ranked: RankedScores, w: np.ndarray) -> np.ndarray:
    """AP = sum_k (R_k - R_{k-1}) P_k over thresholds, highest first; NaN without positives."""
    tp, fp, n_pos, _ = _descending_rates(ranked, w)
    recall = ratio(tp, n_pos)
    d_recall = np.diff(recall, axis=1, prepend=0.0)
    precision = ratio(tp, tp + fp)
    # a level with no weight in this replicate adds no recall; its precision is 0/0
    ap = np.where(d_recall > 0, d_recall * np.nan_to_num(precision), 0.0).sum(1)
    return np.where(n_pos[:, 0] > 0, ap, np.nan)


def roc_points(ranked: RankedScores, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TPR and FPR at each distinct score as threshold, highest first: (b, n_levels) each.

    Rates are ``tp / tp[-1]`` as in sklearn ``roc_curve`` (the leading ``inf`` threshold,
    TPR = FPR = 0, is left out).
    """
    tp, fp, n_pos, n_neg = _descending_rates(ranked, w)
    return ratio(tp, n_pos), ratio(fp, n_neg)


def sensitivity_at_specificity(
    ranked: RankedScores, w: np.ndarray, specificity: float = 0.9
) -> np.ndarray:
    """Largest TPR over thresholds with ``1 - FPR >= specificity`` (0 if only the inf one)."""
    tpr, fpr = roc_points(ranked, w)
    ok = (1 - fpr) >= specificity
    best = np.where(ok, tpr, 0.0).max(axis=1, initial=0.0)
    undefined = np.isnan(tpr[:, -1]) | np.isnan(fpr[:, -1]) if tpr.shape[1] else True
    return np.where(undefined, np.nan, best)


def youden_threshold(ranked: RankedScores, w: np.ndarray) -> np.ndarray:
    """The score maximising TPR - FPR, ties to the higher threshold; NaN if a class is empty."""
    tp, fp, n_pos, n_neg = _descending_rates(ranked, w)
    if tp.shape[1] == 0:
        return np.full(len(tp), np.nan)
    j = ratio(tp, n_pos) - ratio(fp, n_neg)
    # a score with no weight in this replicate is not a threshold (as sklearn drops it)
    empty = np.diff(tp + fp, axis=1, prepend=0.0) == 0
    best = np.argmax(np.where(empty | np.isnan(j), -np.inf, j), axis=1)  # first = highest
    threshold = ranked.levels[::-1][best]
    return np.where(np.isnan(j).all(axis=1), np.nan, threshold)


def specificity_threshold(ranked: RankedScores, w: np.ndarray, specificity: float) -> np.ndarray:
    """The lowest score whose specificity (1 - FPR) is >= the target; NaN if none or a class
    is empty (the ``fixed_specificity`` rule, as :func:`choose_threshold` applies it)."""
    tp, fp, n_pos, n_neg = _descending_rates(ranked, w)
    if tp.shape[1] == 0:
        return np.full(len(tp), np.nan)
    ok = (1 - ratio(fp, n_neg)) >= specificity
    ok &= np.diff(tp + fp, axis=1, prepend=0.0) != 0  # a score with no weight is no threshold
    ok &= ~np.isnan(ratio(tp, n_pos))
    last = ok.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1)  # the lowest qualifying score
    return np.where(ok.any(axis=1), ranked.levels[::-1][last], np.nan)


def brier(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted mean of (p - y)^2; NaN for an empty sample."""
    sq = (np.asarray(p, dtype=np.float64) - (np.asarray(y) == 1)) ** 2
    w = np.asarray(w, dtype=np.float64)
    return ratio(w @ sq, w.sum(1))


def confusion_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN); NaN when the denominator is 0."""
    return ratio(2 * tp, 2 * tp + fp + fn)


def calibration_bins(p: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    """Bin index of each score, exactly as sklearn ``calibration_curve`` assigns it."""
    p = np.asarray(p, dtype=np.float64)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        edges = np.percentile(p, np.linspace(0, 1, n_bins + 1) * 100)
    else:
        raise MedFailError(f"unknown binning strategy {strategy!r}: use uniform or quantile")
    return np.searchsorted(edges[1:-1], p)


@dataclass(frozen=True)
class BinSums:
    """Per-bin weighted count, sum of p and sum of y, each (b, n_bins)."""

    count: np.ndarray
    sum_p: np.ndarray
    sum_y: np.ndarray

    @property
    def ece(self) -> np.ndarray:
        """sum_b (n_b/N) |mean(y)_b - mean(p)_b| = sum_b |sum_y_b - sum_p_b| / N."""
        return ratio(np.abs(self.sum_y - self.sum_p).sum(1), self.count.sum(1))


def bin_sums(y: np.ndarray, p: np.ndarray, bins: np.ndarray, n_bins: int, w: np.ndarray) -> BinSums:
    """Weighted per-bin sums for a batch of weights (b, n)."""
    onehot = np.zeros((len(bins), n_bins))
    onehot[np.arange(len(bins)), bins] = 1.0
    w = np.asarray(w, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)[:, None]
    yy = (np.asarray(y) == 1)[:, None]
    return BinSums(w @ onehot, w @ (onehot * p), w @ (onehot * yy))


def choose_threshold(
    rule: str, y: np.ndarray, p: np.ndarray, *, specificity: float | None, value: float | None
) -> float:
    """The operating threshold from ``val`` (``rule`` as in the task card); decisions ``p >= t``.

    ``youden``: the distinct score maximising TPR - FPR, ties to the higher one;
    ``fixed_specificity``: the lowest distinct score whose specificity is >= the target;
    ``fixed``: ``value``.
    """
    if rule == "fixed":
        assert value is not None
        return float(value)
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        raise MedFailError(f"cannot choose the {rule} threshold: the val split has only one class")
    fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=False)
    fpr, tpr, thresholds = fpr[1:], tpr[1:], thresholds[1:]  # drop the leading inf
    if rule == "youden":
        return float(thresholds[np.argmax(tpr - fpr)])
    if rule == "fixed_specificity":
        assert specificity is not None
        ok = np.flatnonzero(1 - fpr >= specificity)
        if not len(ok):
            raise MedFailError(
                f"no threshold on val reaches specificity {specificity:g}: "
                "the highest score is shared by too many negatives"
            )
        return float(thresholds[ok[-1]])
    raise MedFailError(f"unknown threshold rule {rule!r}")
