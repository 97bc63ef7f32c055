"""Explanation-alignment metrics against hand-computed values and sklearn; Fleiss' kappa
against statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from benchmark.stats.agreement import fleiss_kappa, rater_table
from benchmark.stats.alignment import (
    degenerate,
    dice_curve,
    dice_top_k,
    majority,
    pixel_auroc,
    pixel_kappa,
    pointing_game,
    rank_correlation,
    rater_ceiling,
    relevance_mass,
)


def _small() -> tuple[np.ndarray, np.ndarray]:
    """Three 4x4 examples: a perfect map, a map peaking next to the mask, an empty mask."""
    mask = np.zeros((3, 4, 4), dtype=bool)
    mask[0, 0, 0:2] = True  # two pixels
    mask[1, 1, 1] = True  # one pixel
    attr = np.zeros((3, 4, 4))
    attr[0, 0, 0], attr[0, 0, 1], attr[0, 3, 3] = 3.0, 2.0, 1.0
    attr[1, 1, 2], attr[1, 1, 1], attr[1, 0, 0] = 5.0, 4.0, -2.0
    attr[2, 2, 2] = 1.0
    return attr, mask


def test_metrics_equal_hand_computed_values() -> None:
    attr, mask = _small()
    dice = dice_top_k(attr, mask)
    # 0: top 2 = both mask pixels; 1: top 1 = (1, 2), not the mask pixel (1, 1)
    assert dice[:2].tolist() == [1.0, 0.0] and np.isnan(dice[2])
    assert dice_top_k(attr, mask, 2)[1] == pytest.approx(2 * 1 / (2 + 1))  # (1,2),(1,1)
    point = pointing_game(attr, mask)
    assert point[:2].tolist() == [1.0, 0.0] and np.isnan(point[2])
    assert pointing_game(attr, mask, tolerance=1)[1] == 1.0  # (1, 2) touches (1, 1)
    mass = relevance_mass(attr, mask)
    assert mass[0] == pytest.approx(5.0 / 6.0) and mass[1] == pytest.approx(4.0 / 9.0)
    assert np.isnan(mass[2])
    auc = pixel_auroc(attr, mask)
    # 1: the mask pixel (4.0) beats 14 of the 15 others (all but 5.0)
    assert auc[0] == 1.0 and auc[1] == pytest.approx(14 / 15) and np.isnan(auc[2])


def test_pixel_auroc_equals_sklearn_per_example_with_ties() -> None:
    rng = np.random.default_rng(0)
    attr = np.round(rng.normal(size=(6, 8, 8)), 1)  # ties
    mask = rng.random((6, 8, 8)) < 0.2
    want = [roc_auc_score(m.ravel(), a.ravel()) for a, m in zip(attr, mask, strict=True)]
    np.testing.assert_allclose(pixel_auroc(attr, mask), want, atol=1e-12)


def test_dice_curve_matches_top_k_and_degenerate_maps_are_named() -> None:
    attr, mask = _small()
    curve = dice_curve(attr, mask, np.array([1 / 16, 2 / 16]))
    assert curve.shape == (3, 2)
    np.testing.assert_array_equal(curve[:, 1], dice_top_k(attr, mask, 2))
    bad = np.stack([attr[0], np.ones((4, 4)), np.full((4, 4), np.nan)])
    assert degenerate(bad).tolist() == [False, True, True]
    with pytest.raises(ValueError, match=r"\(n, H, W\)"):
        dice_top_k(attr[0], mask[0])


def test_fleiss_kappa_equals_statsmodels() -> None:
    rng = np.random.default_rng(1)
    for n_cat in (2, 3, 5):
        ratings = rng.integers(0, n_cat, size=(4, 50))  # 4 raters, 50 subjects
        table = rater_table(ratings, n_cat)
        assert table.sum(axis=1).tolist() == [4] * 50
        want = sm_fleiss_kappa(table, method="fleiss")
        assert fleiss_kappa(table) == pytest.approx(want, abs=1e-12)
    masks = np.zeros((3, 16), dtype=int)
    masks[:, :4] = 1  # three raters agree on every pixel
    assert fleiss_kappa(rater_table(masks)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same number of raters"):
        fleiss_kappa(np.array([[2, 1], [1, 1]]))


def test_rank_correlation_equals_scipy_spearman() -> None:
    rng = np.random.default_rng(2)
    a = np.round(rng.normal(size=(5, 6, 6)), 1)
    b = a + rng.normal(scale=0.5, size=a.shape)
    want = [spearmanr(x.ravel(), y.ravel()).statistic for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(rank_correlation(a, b), want, atol=1e-12)
    assert np.isnan(rank_correlation(np.ones((1, 3, 3)), a[:1, :3, :3]))[0]


def test_rater_ceiling_and_pixel_kappa() -> None:
    rng = np.random.default_rng(4)
    raters = rng.random((5, 3, 6, 6)) < 0.3
    kappa = pixel_kappa(raters)
    want = [fleiss_kappa(rater_table(r.reshape(3, -1).astype(int))) for r in raters]
    np.testing.assert_allclose(kappa, want, atol=1e-12)
    same = np.repeat(raters[:, :1], 3, axis=1)  # three identical raters
    np.testing.assert_allclose(rater_ceiling(same, dice_top_k)[same[:, 0].any(axis=(1, 2))], 1.0)
    assert np.allclose(pixel_kappa(same)[same[:, 0].any(axis=(1, 2))], 1.0)
    # by hand: rater 0 marks (0, 0) and (0, 1); raters 1 and 2 mark only (0, 0)
    masks = np.zeros((1, 3, 2, 2), dtype=bool)
    masks[0, :, 0, 0] = True
    masks[0, 0, 0, 1] = True
    # relevance mass: rater 0 against the majority of raters 1 and 2 ({(0, 0)}) puts 1 of
    # its 2 units inside: 0.5; raters 1 and 2 against the majority of the other two (at
    # least half of 2 raters: {(0, 0), (0, 1)}) put all of theirs inside: 1.0
    assert rater_ceiling(masks, relevance_mass)[0] == pytest.approx((0.5 + 1 + 1) / 3)
    assert majority(masks)[0].tolist() == [[True, False], [False, False]]
    with pytest.raises(ValueError, match="raters >= 2"):
        rater_ceiling(masks[:, :1], dice_top_k)
