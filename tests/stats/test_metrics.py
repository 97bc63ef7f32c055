"""Weighted batch metrics equal their sklearn references on the same inputs (to 1e-9)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, f1_score, roc_curve

from benchmark.errors import MedFailError
from benchmark.stats import metrics

TOL = 1e-9


def _data(seed: int, n: int = 300, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1)
    return y, (np.round(p, 1) if ties else p)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), ties=st.booleans(), n=st.integers(2, 60))
def test_curve_metrics_match_sklearn_with_weights(seed: int, ties: bool, n: int) -> None:
    y, p = _data(seed, n, ties)
    y[0], y[1] = 0, 1
    w = np.random.default_rng(seed + 1).integers(0, 3, (3, n))
    w[:, :2] = 1  # both classes keep weight
    ranked = metrics.RankedScores(y, p)
    ap = metrics.average_precision(ranked, w)
    sens = metrics.sensitivity_at_specificity(ranked, w, 0.9)
    youden = metrics.youden_threshold(ranked, w)
    for i in range(len(w)):
        assert ap[i] == pytest.approx(average_precision_score(y, p, sample_weight=w[i]), abs=TOL)
        fpr, tpr, thr = roc_curve(y, p, sample_weight=w[i], drop_intermediate=False)
        assert sens[i] == pytest.approx(tpr[(1 - fpr) >= 0.9].max(), abs=TOL)
        j = (tpr - fpr)[1:]
        assert youden[i] == thr[1:][np.argmax(j)]


def test_brier_f1_and_binning_match_sklearn() -> None:
    y, p = _data(3, 500)
    w = np.ones((1, len(y)))
    assert metrics.brier(y, p, w)[0] == pytest.approx(brier_score_loss(y, p), abs=TOL)
    d = p >= 0.5
    tp, fp, fn = (np.sum(d & (y == 1)), np.sum(d & (y == 0)), np.sum(~d & (y == 1)))
    assert metrics.confusion_f1(tp, fp, fn) == pytest.approx(f1_score(y, d), abs=TOL)
    for strategy in ("uniform", "quantile"):
        bins = metrics.calibration_bins(p, 15, strategy)
        sums = metrics.bin_sums(y, p, bins, 15, w)
        nonzero = sums.count[0] > 0
        prob_true, prob_pred = calibration_curve(y, p, n_bins=15, strategy=strategy)
        np.testing.assert_allclose(sums.sum_y[0, nonzero] / sums.count[0, nonzero], prob_true)
        np.testing.assert_allclose(sums.sum_p[0, nonzero] / sums.count[0, nonzero], prob_pred)
        # ECE from the reference curve: sum_b (n_b / N) |acc_b - conf_b|
        n_b = np.bincount(bins, minlength=15)[nonzero]
        ref = np.sum(n_b / len(y) * np.abs(prob_true - prob_pred))
        assert sums.ece[0] == pytest.approx(ref, abs=TOL)


def test_undefined_values_are_nan_not_errors() -> None:
    y = np.zeros(5, dtype=int)
    p = np.linspace(0.1, 0.9, 5)
    w = np.ones((1, 5))
    ranked = metrics.RankedScores(y, p)
    assert np.isnan(metrics.average_precision(ranked, w)[0])
    assert np.isnan(metrics.sensitivity_at_specificity(ranked, w)[0])
    assert np.isnan(metrics.youden_threshold(ranked, w)[0])
    assert np.isnan(metrics.confusion_f1(0, 0, 0))
    assert np.isnan(metrics.brier(y, p, np.zeros((1, 5)))[0])


def test_threshold_rules_on_val() -> None:
    y, p = _data(5, 400)
    fpr, tpr, thr = roc_curve(y, p, drop_intermediate=False)
    t = metrics.choose_threshold("youden", y, p, specificity=None, value=None)
    assert t == thr[1:][np.argmax((tpr - fpr)[1:])]
    t90 = metrics.choose_threshold("fixed_specificity", y, p, specificity=0.9, value=None)
    spec = np.mean(p[y == 0] < t90)
    assert spec >= 0.9
    lower = p[p < t90].max()  # the next lower score would break the target
    assert np.mean(p[y == 0] < lower) < 0.9
    assert metrics.choose_threshold("fixed", y, p, specificity=None, value=0.3) == 0.3
    with pytest.raises(MedFailError, match="only one class"):
        metrics.choose_threshold("youden", np.zeros(4), p[:4], specificity=None, value=None)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), ties=st.booleans(), target=st.sampled_from([0.5, 0.8, 0.9]))
def test_specificity_threshold_is_the_val_rule_applied_to_the_scored_rows(
    seed: int, ties: bool, target: float
) -> None:
    y, p = _data(seed, 80, ties)
    y[0], y[1] = 0, 1
    ranked = metrics.RankedScores(y, p)

    def rule(y: np.ndarray, p: np.ndarray) -> float:
        """The val rule, NaN where it refuses (ties at the top make the target unreachable)."""
        try:
            return metrics.choose_threshold(
                "fixed_specificity", y, p, specificity=target, value=None
            )
        except MedFailError:
            return float("nan")

    got = metrics.specificity_threshold(ranked, np.ones((1, len(y))), target)[0]
    np.testing.assert_equal(got, rule(y, p))
    # with replicate weights it equals the rule applied to the expanded sample
    w = np.random.default_rng(seed).integers(0, 3, (2, len(y)))
    w[:, :2] = 1
    for i in range(2):
        rows = np.repeat(np.arange(len(y)), w[i])
        expected = rule(y[rows], p[rows])
        np.testing.assert_equal(
            metrics.specificity_threshold(ranked, w[i : i + 1], target)[0], expected
        )
