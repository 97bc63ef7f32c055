"""Two-sample shift statistics: MMD² and its permutation test against a direct reference."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.stats import shift


def reference_mmd2(k: np.ndarray, n: int) -> float:
    """Unbiased MMD² straight from a full kernel matrix, reference rows first (the
    formula of alibi-detect's ``mmd2_from_kernel_matrix`` with a zeroed diagonal)."""
    k = k - np.diag(np.diag(k))
    m = len(k) - n
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[n:, :n]
    return kxx.sum() / (n * (n - 1)) + kyy.sum() / (m * (m - 1)) - 2 * kxy.mean()


def samples(seed: int, n: int = 40, m: int = 30, d: int = 4, move: float = 0.0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d)) + move


def test_mmd2_and_every_permutation_equal_the_direct_formula(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = samples(0, move=0.3)
    z = np.concatenate([a, b])
    sigma = shift.median_bandwidth(a)
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    k = np.exp(-d2 / (2 * sigma**2))
    perms = shift.permutations(len(z), 50, seed=3)
    null = [reference_mmd2(k[p][:, p], len(a)) for p in perms]
    monkeypatch.setattr(shift, "KERNEL_BLOCK_ROWS", 16)  # several blocks
    test = shift.mmd_test(a, b, perms=perms, alpha=0.1)
    assert test.mmd2 == pytest.approx(reference_mmd2(k, len(a)), rel=1e-10, abs=1e-12)
    observed = reference_mmd2(k, len(a))
    assert test.p_value == np.mean(np.array(null) >= observed)
    assert test.threshold == pytest.approx(np.quantile(null, 0.9), rel=1e-9)
    assert test.n_permutations == 50 and test.shifted == (test.p_value < 0.1)


def test_the_bandwidth_is_alibis_median_heuristic() -> None:
    a, _ = samples(1)
    d2 = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
    n = len(a)
    expected = np.sqrt(0.5 * np.sort(d2.ravel())[n + (n * n - n) // 2 - 1])  # alibi's index
    assert shift.median_bandwidth(a) == pytest.approx(expected, rel=1e-12)


def test_false_alarms_near_alpha_and_a_known_shift_flagged() -> None:
    alarms = [shift.mmd_test(*samples(s), n_permutations=200, seed=s).shifted for s in range(40)]
    assert sum(alarms) <= 6  # alpha 0.05: 2 expected of 40; P(>= 7) < 0.005
    caught = [
        shift.mmd_test(*samples(s, n=100, m=100, move=0.6), n_permutations=200, seed=s).shifted
        for s in range(10)
    ]
    assert all(caught)


def test_undefined_tests_say_why() -> None:
    a, b = samples(2)
    with pytest.raises(ValueError, match="NaN"):
        shift.mmd_test(a, np.where(b > 1, np.nan, b))
    with pytest.raises(ValueError, match="at least 2 rows"):
        shift.mmd_test(a[:1], b)
    with pytest.raises(ValueError, match="bandwidth is 0"):
        shift.mmd_test(np.ones((5, 4)), b)
    with pytest.raises(ValueError, match="equal features"):
        shift.mmd_test(a, b[:, :2])


def test_kl_and_wasserstein_equal_scipys_per_feature() -> None:
    from scipy.stats import entropy, wasserstein_distance

    a, b = samples(4, n=80, m=60, d=3, move=0.5)
    kl = shift.kl_divergence(a, b)
    for j in range(3):
        p, q = shift.histograms(a[:, j], b[:, j])
        assert kl[j] == pytest.approx(entropy(q, p), rel=1e-12)
        assert shift.wasserstein(a, b)[j] == wasserstein_distance(a[:, j], b[:, j])
    p, q = shift.histograms(a[:, 0], b[:, 0])
    assert len(p) == shift.KL_BINS and p.min() > 0 and q.sum() == pytest.approx(1.0)
    b[0, 1] = np.nan  # a missing value: the feature's finite values are compared
    assert shift.wasserstein(a, b)[1] == wasserstein_distance(a[:, 1], b[1:, 1])
    b[:-1, 2] = np.nan  # one finite value left: undefined
    assert np.isnan(shift.kl_divergence(a, b)[2]) and np.isnan(shift.wasserstein(a, b)[2])
    same = shift.kl_divergence(np.ones((5, 1)), np.ones((4, 1)))  # a constant feature
    assert same[0] == pytest.approx(0.0)


def test_the_domain_classifier_separates_only_shifted_samples() -> None:
    from sklearn.metrics import roc_auc_score

    held, labels, scores = shift.domain_scores(*samples(5, n=200, m=200, move=1.0))
    assert len(held) == 200 and labels.sum() == 100  # a stratified half
    assert roc_auc_score(labels, scores) > 0.8
    null = [
        roc_auc_score(*shift.domain_scores(*samples(s, n=200, m=100), seed=s)[1:])
        for s in range(20)
    ]
    assert abs(np.mean(null) - 0.5) < 0.03  # unbiased under no shift


def test_black_box_shift_estimation_recovers_a_known_prevalence() -> None:
    """A classifier with a fixed confusion (sensitivity 0.8, specificity 0.9) on val with
    prevalence 0.3, deployed where prevalence is 0.6: BBSE finds 0.6."""
    rng = np.random.default_rng(6)

    def predict(y: np.ndarray) -> np.ndarray:
        hit = rng.random(len(y))
        return np.where(y == 1, hit < 0.8, hit >= 0.9).astype(int)

    y_val = (rng.random(20_000) < 0.3).astype(int)
    y_target = (rng.random(20_000) < 0.6).astype(int)
    q = shift.label_shift(y_val, predict(y_val), predict(y_target))
    assert q[1] == pytest.approx(0.6, abs=0.02) and q.sum() == pytest.approx(1.0)
    never = shift.label_shift(y_val, np.zeros_like(y_val), predict(y_target))
    assert np.isnan(never).all()  # a class never predicted on val: C is singular
    rows = np.random.default_rng(1).integers(0, 20_000, (2, 20_000))
    weights = [np.bincount(r, minlength=20_000)[None, :] for r in rows]
    pv, pt = predict(y_val), predict(y_target)
    weighted = shift.label_shift(y_val, pv, pt, w_val=weights[0], w_target=weights[1])
    direct = shift.label_shift(y_val[rows[0]], pv[rows[0]], pt[rows[1]])
    assert weighted.shape == (1, 2) and np.allclose(weighted[0], direct)  # weights = a resample
