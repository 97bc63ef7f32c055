"""The bootstrap engine: metric parity with scikit-learn, and the resampling contract."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, recall_score, roc_auc_score

from benchmark.stats.bootstrap import GroupedScorer, Resampler, percentile_ci


def data(n: int, seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
    if ties:
        s = np.round(s, 1)
    return y, s, rng.integers(0, 4, n)


@pytest.mark.parametrize("ties", [False, True])
def test_unit_weights_equal_sklearn(ties: bool) -> None:
    y, s, g = data(3000, 0, ties)
    scorer = GroupedScorer(y, s, 0.5, g)
    conf, auroc = scorer.score_batch(np.ones((1, len(y)), dtype=np.int32))
    for k, label in enumerate(scorer.labels):
        m = g.astype(str) == label
        assert auroc[0, k] == pytest.approx(roc_auc_score(y[m], s[m]), abs=1e-12)
        assert conf.accuracy[0, k] == pytest.approx(accuracy_score(y[m], s[m] >= 0.5), abs=1e-12)
        assert conf.tpr[0, k] == pytest.approx(recall_score(y[m], s[m] >= 0.5), abs=1e-12)
        fpr = ((s[m] >= 0.5) & (y[m] == 0)).sum() / (y[m] == 0).sum()
        assert conf.fpr[0, k] == pytest.approx(fpr, abs=1e-12)
        assert conf.selection_rate[0, k] == pytest.approx((s[m] >= 0.5).mean(), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 60), ties=st.booleans())
def test_any_integer_weights_equal_sklearn_sample_weight(seed: int, n: int, ties: bool) -> None:
    """Every bootstrap replicate is a weighted score; check it against sklearn's weighting."""
    y, s, _ = data(n, seed, ties)
    w = np.random.default_rng(seed + 1).integers(0, 4, size=(3, n)).astype(np.int32)
    conf, auroc = GroupedScorer(y, s, 0.5).score_batch(w)
    for j in range(3):
        keep = w[j] > 0
        if len(np.unique(y[keep])) < 2:
            assert np.isnan(auroc[j, 0])
        else:
            want = roc_auc_score(y, s, sample_weight=w[j])
            assert auroc[j, 0] == pytest.approx(want, abs=1e-12)
        if keep.any():
            want = accuracy_score(y, s >= 0.5, sample_weight=w[j])
            assert conf.accuracy[j, 0] == pytest.approx(want, abs=1e-12)


def test_single_class_and_empty_groups_give_nan_not_crash() -> None:
    y = np.array([1, 1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.2, 0.7, 0.4])
    g = np.array(["a", "a", "b", "c", "c"])  # a: positives only, b: negatives only
    conf, auroc = GroupedScorer(y, s, 0.5, g).score_batch(np.ones((1, 5), dtype=np.int32))
    assert np.isnan(auroc[0, 0]) and np.isnan(auroc[0, 1]) and auroc[0, 2] == 1.0
    assert np.isnan(conf.fpr[0, 0]) and np.isnan(conf.tpr[0, 1])
    w = np.array([[0, 0, 1, 1, 1]], dtype=np.int32)  # group a drawn zero times
    conf, _ = GroupedScorer(y, s, 0.5, g).score_batch(w)
    assert np.isnan(conf.accuracy[0, 0]) and conf.accuracy[0, 1] == 1.0


def test_same_seed_same_replicates_and_weights_sum_to_n() -> None:
    a = np.concatenate(list(Resampler(50, n_boot=100, seed=3, chunk=16).weights()))
    b = np.concatenate(list(Resampler(50, n_boot=100, seed=3, chunk=16).weights()))
    c = np.concatenate(list(Resampler(50, n_boot=100, seed=4, chunk=16).weights()))
    assert a.shape == (100, 50)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.all(a.sum(axis=1) == 50)


def test_a_patient_with_many_rows_moves_as_one() -> None:
    patients = np.array([0, 0, 0, 0, 1, 2, 3, 3, 4, 5])
    w = np.concatenate(list(Resampler(10, clusters=patients, n_boot=500, seed=0).weights()))
    for p in np.unique(patients):
        rows = w[:, patients == p]
        assert np.all(rows == rows[:, :1])  # every row of the patient has its count
    # six patients drawn six times per replicate
    first_rows = [np.flatnonzero(patients == p)[0] for p in np.unique(patients)]
    assert np.all(w[:, first_rows].sum(axis=1) == 6)
    # the four-row patient is absent in about (5/6)**6 of replicates, as a unit
    absent = np.mean(w[:, 0] == 0)
    assert absent == pytest.approx((5 / 6) ** 6, abs=0.06)


def test_strata_keep_their_cluster_counts() -> None:
    patients = np.arange(12) // 2
    sites = np.where(patients < 2, "A", "B")  # 2 patients at A, 4 at B
    w = np.concatenate(list(Resampler(12, clusters=patients, strata=sites, n_boot=200).weights()))
    assert np.all(w[:, sites == "A"].sum(axis=1) == 4)  # 2 patients x 2 rows
    assert np.all(w[:, sites == "B"].sum(axis=1) == 8)
    with pytest.raises(ValueError, match="clusters must nest in strata"):
        list(
            Resampler(
                4, clusters=np.array([0, 0, 1, 1]), strata=np.array(["A", "B", "B", "B"])
            ).weights()
        )


def test_bootstrap_ci_covers_the_point_and_shrinks_with_n() -> None:
    widths = []
    for n in (200, 5000):
        y, s, _ = data(n, 1, False)
        scorer = GroupedScorer(y, s, 0.5)
        point = scorer.score_batch(np.ones((1, n), dtype=np.int32))[1][0, 0]
        reps = np.concatenate([scorer.score_batch(w)[1] for w in Resampler(n, seed=0).weights()])
        lo, hi = percentile_ci(reps)
        assert lo[0] < point < hi[0]
        widths.append(hi[0] - lo[0])
    assert widths[1] < widths[0] / 3


def test_percentile_ci_ignores_nan_replicates() -> None:
    samples = np.array([[np.nan, np.nan], [1.0, np.nan], [3.0, np.nan]])
    lo, hi = percentile_ci(samples)
    assert lo[0] == pytest.approx(1.05) and hi[0] == pytest.approx(2.95)
    assert np.isnan(lo[1]) and np.isnan(hi[1])


@pytest.mark.parametrize(
    "clusters, strata",
    [
        (None, None),
        (np.arange(30) // 3, None),
        (None, np.where(np.arange(30) % 3 == 0, "A", "B")),
        # sites interleaved in row order: site A holds patients 0, 3, 6, 9, site B the others
        (np.arange(30) // 3, np.where((np.arange(30) // 3) % 3 == 0, "A", "B")),
    ],
)
def test_ordered_weights_select_columns_of_the_row_weights(clusters, strata) -> None:
    """weights(order) is weights()[:, order], and the replicates do not depend on chunk."""
    order = np.random.default_rng(0).integers(0, 30, 45)  # any rows, repeats allowed
    kw = {"clusters": clusters, "strata": strata, "n_boot": 50, "seed": 7}
    rows = np.concatenate(list(Resampler(30, chunk=8, **kw).weights()))
    ordered = np.concatenate(list(Resampler(30, chunk=3, **kw).weights(order=order)))
    assert rows.dtype == ordered.dtype == np.int32
    assert rows.shape == (50, 30) and np.array_equal(ordered, rows[:, order])
    assert np.all(rows.sum(axis=1) == 30)  # every replicate draws as many units as there are
    for p in [] if clusters is None else np.unique(clusters):
        assert np.all(rows[:, clusters == p] == rows[:, [3 * p]])  # a patient moves as one
    if strata is not None:
        for site in np.unique(strata):
            assert np.all(rows[:, strata == site].sum(axis=1) == np.sum(strata == site))


@pytest.mark.parametrize("ties", [False, True])
def test_ordered_scoring_equals_sklearn_per_replicate(ties: bool) -> None:
    """The fast path (weights in scorer order) against sklearn with sample_weight, replicate
    by replicate, per group, for a patient bootstrap."""
    y, s, g = data(400, 2, ties)
    scorer = GroupedScorer(y, s, 0.5, g)
    resampler = Resampler(400, clusters=np.arange(400) // 4, n_boot=40, seed=1, chunk=6)
    fast = [scorer.score_ordered(w) for w in resampler.weights(order=scorer.order)]
    conf = {m: np.concatenate([getattr(c, m) for c, _ in fast]) for m in ("tp", "fp", "tn", "fn")}
    auroc = np.concatenate([a for _, a in fast])
    weights = np.concatenate(list(resampler.weights()))
    for j, w in enumerate(weights):
        for k, label in enumerate(scorer.labels):
            m = g.astype(str) == label
            yy, yhat, ww = y[m], s[m] >= 0.5, w[m]
            want = roc_auc_score(yy, s[m], sample_weight=ww)
            assert auroc[j, k] == pytest.approx(want, abs=1e-12)
            assert conf["tp"][j, k] == np.sum(ww * (yy == 1) * yhat)
            assert conf["fn"][j, k] == np.sum(ww * (yy == 1) * ~yhat)
            assert conf["fp"][j, k] == np.sum(ww * (yy == 0) * yhat)
            assert conf["tn"][j, k] == np.sum(ww * (yy == 0) * ~yhat)
    batch_conf, batch_auroc = scorer.score_batch(weights)
    assert np.array_equal(batch_auroc, auroc) and np.array_equal(batch_conf.tp, conf["tp"])
