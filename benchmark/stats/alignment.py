"""Explanation alignment: how well attribution maps agree with ground-truth masks.

Every metric takes a batch of attribution maps ``attr`` (n, H, W), float, higher = more
relevant, and a batch of boolean masks ``mask`` (n, H, W) (a lesion, a rater's outline, a
shortcut marker), and returns one value per example (n,), vectorised over the batch (no
Python loop per image). Conventions:

- :func:`dice_top_k`: the ``k`` highest-attributed pixels (default: as many as the mask
  has, so a perfect map scores 1) against the mask, Dice = 2|A ∩ M| / (|A| + |M|); ties
  at the cut are broken by pixel order (row-major), so exactly ``k`` pixels are taken.
- :func:`pointing_game`: 1 if a pixel of maximal attribution lies within ``tolerance``
  pixels (Chebyshev distance) of the mask, else 0 (Zhang et al., 2018); with several maxima
  the first in row-major order counts.
- :func:`relevance_mass`: the share of positive attribution inside the mask (relevance
  mass accuracy, Arras et al., 2022); NaN when no attribution is positive.
- :func:`pixel_auroc`: the attribution as a pixel-level detector of the mask, AUROC with
  ties counting 1/2 (sklearn's ``roc_auc_score`` per example); NaN for an empty or full mask.
- :func:`rank_correlation`: Spearman's rank correlation between two maps of the same
  example (average ranks for ties, as ``scipy.stats.spearmanr``); NaN for a constant map.

The human ceiling: :func:`rater_ceiling` scores each rater's mask as if it were an
attribution map against the other raters' majority (leave-one-rater-out), so a model's
numbers can be read as a fraction of what the raters achieve among themselves, and
:func:`pixel_kappa` gives the raters' agreement over an image's pixels (Fleiss' kappa).

An example whose mask is empty gets NaN from every metric, never 0; :func:`degenerate`
names the maps that cannot be scored (NaN values, or constant).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy.ndimage import maximum_filter
from scipy.stats import rankdata


def _flat(attr: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(attr, dtype=np.float64)
    m = np.asarray(mask, dtype=bool)
    if a.shape != m.shape or a.ndim != 3:
        raise ValueError(f"attributions {a.shape} and masks {m.shape} must both be (n, H, W)")
    return a.reshape(len(a), -1), m.reshape(len(m), -1)


def degenerate(attr: np.ndarray) -> np.ndarray:
    """Per example: True where the map has a NaN or infinite value, or is constant."""
    a = np.asarray(attr, dtype=np.float64).reshape(len(attr), -1)
    bad = ~np.isfinite(a).all(axis=1)
    flat = np.where(bad[:, None], 0.0, a)
    return bad | (flat.max(axis=1) == flat.min(axis=1))


def dice_top_k(attr: np.ndarray, mask: np.ndarray, k: np.ndarray | int | None = None) -> np.ndarray:
    """Dice of the top-``k`` attributed pixels against the mask; ``k`` per example or one
    for all (default: each mask's own area)."""
    a, m = _flat(attr, mask)
    area = m.sum(axis=1)
    k = area if k is None else np.broadcast_to(np.asarray(k), area.shape)
    # rank 0 is the most attributed pixel; a stable sort keeps row-major order among ties
    order = np.argsort(-a, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(a.shape[1])[None, :], axis=1)
    top = rank < k[:, None]
    hit = (top & m).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = 2.0 * hit / (k + area)
    return np.where(area > 0, dice, np.nan)


def dice_curve(attr: np.ndarray, mask: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Dice of the top fraction ``f`` of pixels against the mask, per example and ``f``:
    shape (n, len(fractions)); ``k = round(f * H * W)``, at least 1."""
    n_pixels = np.asarray(attr).shape[1] * np.asarray(attr).shape[2]
    ks = np.maximum(1, np.round(np.asarray(fractions) * n_pixels).astype(int))
    return np.column_stack([dice_top_k(attr, mask, int(k)) for k in ks])


def pointing_game(attr: np.ndarray, mask: np.ndarray, tolerance: int = 0) -> np.ndarray:
    """1.0 where the first maximal pixel lies within ``tolerance`` pixels of the mask."""
    a, m = _flat(attr, mask)
    target = np.asarray(mask, dtype=bool)
    if tolerance > 0:  # dilate each mask on its own plane: no growth across the batch axis
        size = (1, 2 * tolerance + 1, 2 * tolerance + 1)
        target = maximum_filter(target, size=size, mode="constant", cval=False)
    peak = np.argmax(a, axis=1)
    inside = target.reshape(len(target), -1)[np.arange(len(a)), peak]
    return np.where(m.any(axis=1), inside.astype(np.float64), np.nan)


def relevance_mass(attr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Positive attribution inside the mask over all positive attribution."""
    a, m = _flat(attr, mask)
    pos = np.clip(a, 0.0, None)
    total = pos.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = (pos * m).sum(axis=1) / total
    return np.where((total > 0) & m.any(axis=1), share, np.nan)


def pixel_auroc(attr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """AUROC of the attribution separating mask pixels from the rest (Mann-Whitney U from
    average ranks, so ties count 1/2)."""
    a, m = _flat(attr, mask)
    ranks = rankdata(a, axis=1)  # average ranks
    n_pos = m.sum(axis=1)
    n_neg = m.shape[1] - n_pos
    u = (ranks * m).sum(axis=1) - n_pos * (n_pos + 1) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = u / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho between maps ``a`` and ``b`` (n, H, W), per example."""
    x = rankdata(np.asarray(a, dtype=np.float64).reshape(len(a), -1), axis=1)
    y = rankdata(np.asarray(b, dtype=np.float64).reshape(len(b), -1), axis=1)
    x -= x.mean(axis=1, keepdims=True)
    y -= y.mean(axis=1, keepdims=True)
    den = np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (x * y).sum(axis=1) / den, np.nan)


def majority(masks: np.ndarray) -> np.ndarray:
    """Pixels marked by at least half of the raters: masks (n, R, H, W) -> (n, H, W)."""
    m = np.asarray(masks, dtype=bool)
    return 2 * m.sum(axis=1) >= m.shape[1]


def rater_ceiling(
    rater_masks: np.ndarray, metric: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """``metric`` of each rater's mask against the majority of the others, averaged over
    the raters (NaN ones left out): (n, R, H, W) -> (n,). Needs at least 2 raters."""
    m = np.asarray(rater_masks, dtype=bool)
    if m.ndim != 4 or m.shape[1] < 2:
        raise ValueError(f"rater masks must be (n, raters >= 2, H, W); got shape {m.shape}")
    scores = [
        metric(m[:, r].astype(np.float64), majority(np.delete(m, r, axis=1)))
        for r in range(m.shape[1])
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an example NaN for every rater
        return np.nanmean(np.column_stack(scores), axis=1)


def pixel_kappa(rater_masks: np.ndarray) -> np.ndarray:
    """Fleiss' kappa of the raters over each image's pixels (two categories: marked or
    not), vectorised over images; equals :func:`benchmark.stats.agreement.fleiss_kappa`
    on each image's table. NaN where every rating is the same."""
    m = np.asarray(rater_masks, dtype=bool)
    n, r = m.shape[:2]
    marked = m.reshape(n, r, -1).sum(axis=1).astype(np.float64)  # (n, pixels)
    counts = np.stack([r - marked, marked], axis=2)  # (n, pixels, 2)
    p_cat = counts.sum(axis=1) / (marked.shape[1] * r)  # (n, 2)
    agree = ((counts**2).sum(axis=2) - r) / (r * (r - 1))  # (n, pixels)
    p_e = (p_cat**2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(p_e < 1, (agree.mean(axis=1) - p_e) / (1 - p_e), np.nan)
