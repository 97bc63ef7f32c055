"""Probes: point values equal sklearn / fairlearn on the same inputs (to 1e-9), the frozen
threshold, bootstrap CIs, and degenerate inputs that give None with a reason."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    roc_auc_score,
    roc_curve,
)

from benchmark.common.hashing import sha256_file
from benchmark.results.report import MetricResult, ProbeResult, Report
from benchmark.scoring.evaluate import evaluate
from benchmark.scoring.predictions import SplitPredictions
from benchmark.scoring.probes import ScoringContext
from benchmark.scoring.probes.base import MAX_UNDEFINED, Draws, emit, interval, split_seed
from benchmark.scoring.probes.calibration import CalibrationProbe
from benchmark.scoring.probes.fairness import GROUP_METRICS, FairnessProbe
from benchmark.scoring.probes.performance import METRICS as PERF_METRICS
from benchmark.scoring.probes.performance import PerformanceProbe
from benchmark.scoring.probes.shift import SHIFTED, ShiftProbe
from benchmark.stats.bootstrap import Resampler
from benchmark.stats.intervals import MIN_SUPPORT, bca_interval
from benchmark.tasks.spec import TaskSpec, spec_from_text
from benchmark.tasks.task import Task
from tests.conftest import TINY_SPEC

TOL = 1e-9
TEST_SPLITS = ("id_test", "ood_test")


@pytest.fixture(scope="module")
def spec() -> TaskSpec:
    """The tiny task's spec: attribute ``sex`` with reference F, min_group_size 30."""
    s = spec_from_text(TINY_SPEC.format(version="1.0.0", shard_rows=1000))
    assert s.attributes["sex"].reference == "F" and s.min_group_size == 30
    return s


def make_split(
    split: str,
    n_patients: int,
    seed: int,
    *,
    groups: tuple[str, ...] = ("F", "M", "X"),
    sites: tuple[str, ...] | None = ("A", "B"),
    ties: bool = False,
    rows: tuple[int, int] = (1, 3),
) -> SplitPredictions:
    """Patients with 1-3 rows, one site and one group each; a score that carries signal."""
    rng = np.random.default_rng(seed)
    n_rows = rng.integers(rows[0], rows[1] + 1, n_patients)
    patient = np.repeat(np.arange(n_patients), n_rows)
    n = len(patient)
    y = (rng.random(n) < 0.4).astype(np.int64)
    s = np.clip(0.3 * y + 0.7 * rng.random(n), 0.0, 1.0)
    if ties:
        s = np.round(s, 1)
    group = np.asarray(groups)[rng.integers(0, len(groups), n_patients)][patient]
    site = None if sites is None else np.asarray(sites)[patient % len(sites)]
    return SplitPredictions(
        split=split,
        sample_id=np.array([f"{split}-{i}" for i in range(n)]),
        patient_id=np.array([f"{split}-p{p}" for p in patient]),
        site=site,
        y=y,
        proba=np.column_stack([1 - s, s]),
        groups={"sex": group},
    )


def concat(a: SplitPredictions, b: SplitPredictions) -> SplitPredictions:
    """The rows of ``a`` then those of ``b`` (both with sites, or neither)."""
    return SplitPredictions(
        a.split,
        np.concatenate([a.sample_id, b.sample_id]),
        np.concatenate([a.patient_id, b.patient_id]),
        None if a.site is None else np.concatenate([a.site, b.site]),
        np.concatenate([a.y, b.y]),
        np.concatenate([a.proba, b.proba]),
        {k: np.concatenate([a.groups[k], b.groups[k]]) for k in a.groups},
    )


def context(
    spec: TaskSpec,
    preds: dict[str, SplitPredictions],
    *,
    threshold: float = 0.5,
    n_boot: int = 100,
    seed: int = 0,
) -> ScoringContext:
    tests = tuple(s for s in TEST_SPLITS if s in preds)
    return ScoringContext(spec, None, preds, tests, threshold, n_boot, 0.95, seed)  # type: ignore[arg-type]


def three_splits(seed: int = 0, ties: bool = False, n: int = 150) -> dict[str, SplitPredictions]:
    return {s: make_split(s, n, seed + i, ties=ties) for i, s in enumerate(("val", *TEST_SPLITS))}


def by_key(result: ProbeResult) -> dict[tuple, MetricResult]:
    out = {(m.metric, m.split, m.attribute, m.group): m for m in result.metrics}
    assert len(out) == len(result.metrics), "duplicate result keys"
    return out


def value(m: MetricResult) -> float:
    assert m.value is not None, m
    return m.value


# -- 1. point values equal the references ------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
def test_performance_equals_sklearn(spec: TaskSpec, ties: bool) -> None:
    preds = three_splits(1, ties)
    t = 0.5
    res = by_key(PerformanceProbe().run(context(spec, preds, threshold=t, n_boot=40)))
    for split in TEST_SPLITS:
        p = preds[split]
        y, s, d = p.y, p.score, p.score >= t
        fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
        youden = thr[1:][np.argmax((tpr - fpr)[1:])]  # first maximum = highest threshold
        want = {
            "auroc": roc_auc_score(y, s),
            "auprc": average_precision_score(y, s),
            "accuracy": accuracy_score(y, d),
            "f1": f1_score(y, d),
            "sensitivity_at_specificity": tpr[(1 - fpr) >= 0.9].max(),
            "threshold_drift": youden - t,
        }
        assert set(want) == set(PERF_METRICS)
        for metric, ref in want.items():
            m = res[(metric, split, None, None)]
            assert value(m) == pytest.approx(ref, abs=TOL), (split, metric)
            assert m.n == len(p) and m.reason is None


def _ece(y: np.ndarray, p: np.ndarray, strategy: str, n_bins: int = 15) -> float:
    """ECE from sklearn calibration_curve's per-bin means; bin sizes as sklearn assigns them."""
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    if strategy == "uniform":
        edges = np.linspace(0, 1, n_bins + 1)
    else:
        edges = np.percentile(p, np.linspace(0, 1, n_bins + 1) * 100)  # as sklearn does
    n_b = np.bincount(np.searchsorted(edges[1:-1], p), minlength=n_bins)
    n_b = n_b[n_b > 0]
    assert len(n_b) == len(prob_true)
    return float(np.sum(n_b / len(y) * np.abs(prob_true - prob_pred)))


@pytest.mark.parametrize("ties", [False, True])
def test_calibration_equals_sklearn_overall_and_per_group(spec: TaskSpec, ties: bool) -> None:
    preds = three_splits(2, ties)
    result = CalibrationProbe().run(context(spec, preds, n_boot=40))
    res = by_key(result)
    curves = {(c.name, c.split, c.attribute, c.group): c for c in result.curves}
    checked = 0
    for split in TEST_SPLITS:
        p = preds[split]
        cells = [(None, None, np.ones(len(p), bool))]
        cells += [("sex", g, p.groups["sex"] == g) for g in ("F", "M", "X")]
        for attr, g, mask in cells:
            y, s = p.y[mask], p.score[mask]
            want = {
                "ece_equal_width": _ece(y, s, "uniform"),
                "ece_equal_mass": _ece(y, s, "quantile"),
                "brier": brier_score_loss(y, s),
            }
            for metric, ref in want.items():
                m = res[(metric, split, attr, g)]
                assert value(m) == pytest.approx(ref, abs=TOL), (split, g, metric)
                assert m.n == mask.sum()
            for strategy in ("uniform", "quantile"):
                prob_true, prob_pred = calibration_curve(y, s, n_bins=15, strategy=strategy)
                c = curves[(f"reliability_{strategy}", split, attr, g)]
                np.testing.assert_allclose(c.x, prob_pred, rtol=0, atol=TOL)
                np.testing.assert_allclose(c.y, prob_true, rtol=0, atol=TOL)
                assert sum(c.count) == mask.sum()
            checked += 1
    assert checked == 8


def _fairlearn_frame(p: SplitPredictions, t: float) -> tuple[pd.DataFrame, pd.Series]:
    y, s, g = p.y, p.score, p.groups["sex"]
    d = (s >= t).astype(int)
    mf = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "accuracy": accuracy_score,
        },
        y_true=y,
        y_pred=d,
        sensitive_features=g,
    )
    auc = MetricFrame(metrics=roc_auc_score, y_true=y, y_pred=s, sensitive_features=g)
    return mf.by_group, auc.by_group


def test_fairness_equals_fairlearn(spec: TaskSpec) -> None:
    preds = three_splits(3, n=200)
    t = 0.45
    result = FairnessProbe().run(context(spec, preds, threshold=t, n_boot=40))
    res = by_key(result)
    for split in TEST_SPLITS:
        p = preds[split]
        y, g, d = p.y, p.groups["sex"], (p.score >= t).astype(int)
        frame, auc = _fairlearn_frame(p, t)
        assert sorted(frame.index) == ["F", "M", "X"]
        assert min((g == k).sum() for k in frame.index) >= spec.min_group_size
        ref = frame.loc["F"]
        eod, ed = {}, {}
        for grp in frame.index:
            row = frame.loc[grp]
            got = {k: value(res[(k, split, "sex", grp)]) for k in (*frame.columns, "auroc")}
            for k in frame.columns:
                assert got[k] == pytest.approx(row[k], abs=TOL), (split, grp, k)
            assert got["auroc"] == pytest.approx(auc[grp], abs=TOL)
            di = value(res[("disparate_impact", split, "sex", grp)])
            assert di == pytest.approx(row["selection_rate"] / ref["selection_rate"], abs=TOL)
            eod[grp] = abs(row["tpr"] - ref["tpr"]) + abs(row["fpr"] - ref["fpr"])
            ed[grp] = abs(row["tpr"] - ref["tpr"]) / ref["tpr"]
            assert value(res[("eod_sum", split, "sex", grp)]) == pytest.approx(eod[grp], abs=TOL)
            gap = value(res[("equal_opportunity_ratio_gap", split, "sex", grp)])
            assert gap == pytest.approx(ed[grp], abs=TOL)
            assert res[("tpr", split, "sex", grp)].n == (g == grp).sum()
            for k, want in (
                ("tpr_gap", row["tpr"] - ref["tpr"]),
                ("fpr_gap", row["fpr"] - ref["fpr"]),
                ("auroc_gap", auc[grp] - auc["F"]),
            ):  # signed, group minus reference
                assert value(res[(k, split, "sex", grp)]) == pytest.approx(want, abs=TOL)

        def summary(name: str, split: str = split) -> float:
            return value(res[(name, split, "sex", None)])

        kw = {"sensitive_features": g}
        assert summary("equalized_odds_difference_max") == pytest.approx(
            equalized_odds_difference(y, d, **kw, agg="worst_case"), abs=TOL
        )
        assert summary("demographic_parity_difference") == pytest.approx(
            demographic_parity_difference(y, d, **kw), abs=TOL
        )
        assert summary("demographic_parity_ratio") == pytest.approx(
            demographic_parity_ratio(y, d, **kw), abs=TOL
        )
        assert summary("eod_sum") == pytest.approx(max(eod["M"], eod["X"]), abs=TOL)
        assert summary("equal_opportunity_ratio_gap") == pytest.approx(
            max(ed["M"], ed["X"]), abs=TOL
        )
        assert summary("worst_group_auroc") == pytest.approx(auc.min(), abs=TOL)
        assert summary("worst_group_accuracy") == pytest.approx(frame["accuracy"].min(), abs=TOL)
    assert result.warnings == []


def test_worst_group_leaves_out_groups_below_min_group_size(spec: TaskSpec) -> None:
    big = make_split("id_test", 120, 4, groups=("F", "M"))
    # five rows of group X, all decided wrongly: the worst group by far, but too small
    y = np.array([1, 1, 1, 0, 0])
    s = np.where(y == 1, 0.01, 0.99)
    small = SplitPredictions(
        "id_test",
        np.array([f"x{i}" for i in range(5)]),
        np.array([f"xp{i}" for i in range(5)]),
        np.array(["A"] * 5),
        y,
        np.column_stack([1 - s, s]),
        {"sex": np.array(["X"] * 5)},
    )
    p = concat(big, small)
    result = FairnessProbe().run(context(spec, {"val": big, "id_test": p}, n_boot=40))
    res = by_key(result)
    frame, auc = _fairlearn_frame(p, 0.5)
    assert frame.loc["X", "accuracy"] == 0 and auc["X"] == 0  # X would be the worst
    worst_acc = value(res[("worst_group_accuracy", "id_test", "sex", None)])
    assert worst_acc == pytest.approx(frame.loc[["F", "M"], "accuracy"].min(), abs=TOL)
    worst_auc = value(res[("worst_group_auroc", "id_test", "sex", None)])
    assert worst_auc == pytest.approx(auc[["F", "M"]].min(), abs=TOL)
    # X is still reported on its own, with a warning that names it
    assert value(res[("accuracy", "id_test", "sex", "X")]) == 0
    assert len(result.warnings) == 1 and "sex=X has 5 samples" in result.warnings[0]
    # with a smaller threshold of eligibility X counts, and becomes the worst group
    res2 = by_key(FairnessProbe(min_group_size=5).run(context(spec, {"val": big, "id_test": p})))
    assert value(res2[("worst_group_accuracy", "id_test", "sex", None)]) == 0


def test_shift_robustness_is_the_relative_drop_of_performance(spec: TaskSpec) -> None:
    preds = three_splits(5)
    ctx = context(spec, preds, n_boot=50)
    perf = by_key(PerformanceProbe().run(ctx))
    shift = by_key(ShiftProbe().run(ctx))
    for m in SHIFTED:
        m_id = value(perf[(m, "id_test", None, None)])
        m_ood = value(perf[(m, "ood_test", None, None)])
        rob = value(shift[(f"shift_robustness_{m}", "ood_test", None, None)])
        assert rob == pytest.approx((m_id - m_ood) / m_id, abs=TOL)
        assert value(shift[(f"ood_minus_id_{m}", "ood_test", None, None)]) == pytest.approx(
            m_ood - m_id, abs=TOL
        )
    assert "threshold_drift" not in SHIFTED and len(shift) == 2 * len(SHIFTED)


def test_shift_without_an_ood_split_warns(spec: TaskSpec) -> None:
    preds = three_splits(5)
    del preds["ood_test"]
    result = ShiftProbe().run(context(spec, preds))
    assert result.metrics == [] and "no ood_test split" in result.warnings[0]


# -- 2. the threshold is frozen on val ---------------------------------------------------


class Lookup:
    """A model that returns a stored score per sample id (the feature frame's index)."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = np.array([self.scores[str(i)] for i in X.index])
        return np.column_stack([1 - p, p])


def _youden(y: np.ndarray, s: np.ndarray) -> float:
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    return float(thr[1:][np.argmax((tpr - fpr)[1:])])


def test_threshold_is_frozen_on_val_and_used_on_test(tiny: Path) -> None:
    task = Task.load("tiny-task", build=True)
    rng = np.random.default_rng(0)
    data = {s: task.split(s) for s in ("val", *TEST_SPLITS)}
    base = {}
    for _, y, meta in data.values():
        u = rng.random(len(y))
        base.update(zip(meta["sample_id"].astype(str), 0.3 * (y == 1) + 0.7 * u, strict=True))

    def run(scores: dict[str, float]) -> Report:
        return evaluate(Lookup(scores), task, ["performance"], n_boot=40)

    def val_threshold(scores: dict[str, float]) -> float:
        _, y, meta = data["val"]
        return _youden(y, np.array([scores[i] for i in meta["sample_id"].astype(str)]))

    report = run(base)
    t = report.threshold.value
    assert report.threshold.rule == "youden" and report.threshold.chosen_on == "val"
    assert t == val_threshold(base)
    for split in TEST_SPLITS:
        _, y, meta = data[split]
        s = np.array([base[i] for i in meta["sample_id"].astype(str)])
        acc = report.metric("accuracy", split, probe="performance").value
        assert acc == pytest.approx(accuracy_score(y, s >= t), abs=TOL)

    test_ids = {i for sp in TEST_SPLITS for i in data[sp][2]["sample_id"].astype(str)}
    other_test = {k: (1 - v if k in test_ids else v) for k, v in base.items()}
    changed = run(other_test)
    assert changed.threshold.value == t
    auroc = [r.metric("auroc", "id_test").value for r in (report, changed)]
    assert auroc[0] != auroc[1]  # the test scores did change

    other_val = {k: (v if k in test_ids else v**2) for k, v in base.items()}
    moved = run(other_val)
    assert moved.threshold.value == val_threshold(other_val) != t


# -- 3. confidence intervals ---------------------------------------------------------------


def test_same_seed_same_cis_other_seed_other_cis(spec: TaskSpec) -> None:
    preds = three_splits(6)
    probes = (PerformanceProbe(), CalibrationProbe(), FairnessProbe(), ShiftProbe())
    a = [p.run(context(spec, preds, seed=3)).model_dump() for p in probes]
    b = [p.run(context(spec, preds, seed=3)).model_dump() for p in probes]
    c = [p.run(context(spec, preds, seed=4)).model_dump() for p in probes]
    assert a == b
    assert a != c


def test_ci_contains_the_point_on_typical_data(spec: TaskSpec) -> None:
    preds = three_splits(7, n=200)
    ctx = context(spec, preds, n_boot=300)
    rows = PerformanceProbe().run(ctx).metrics + CalibrationProbe().run(ctx).metrics
    checked = 0
    for m in rows:
        # ECE is biased upward under resampling, so its point may sit below the interval
        if m.metric in ("auroc", "auprc", "accuracy", "f1", "brier") and m.attribute is None:
            assert m.ci_low is not None and m.ci_high is not None
            assert m.ci_low <= value(m) <= m.ci_high, m
            assert m.ci_low < m.ci_high
            checked += 1
    assert checked == 10


def test_patients_move_together_and_sites_keep_their_patient_counts(spec: TaskSpec) -> None:
    p = make_split("id_test", 60, 8, sites=("A", "B", "C"))
    ctx = context(spec, {"id_test": p}, n_boot=200)
    point, w, *_ = ctx.bootstrap("id_test", lambda w: w)  # the replicate weights themselves
    assert np.all(point == 1) and w.shape == (200, len(p))
    first = {}
    for i, pid in enumerate(p.patient_id):
        first.setdefault(pid, i)
        assert np.array_equal(w[:, i], w[:, first[pid]])  # all rows share the patient's count
    firsts = np.array(list(first.values()))
    assert len(np.unique(p.patient_id[firsts])) == 60
    for site in ("A", "B", "C"):
        at_site = firsts[p.site[firsts] == site]
        assert np.all(w[:, at_site].sum(axis=1) == len(at_site))
    assert len(np.unique(w, axis=0)) > 190  # and the replicates do differ
    # the same draws as a Resampler over patients within sites with the split seed
    ref = Resampler(len(p), p.patient_id, p.site, n_boot=200, seed=split_seed(0, "id_test"))
    assert np.array_equal(np.concatenate(list(ref.weights())), w)


def _repeat_rows(p: SplitPredictions, k: int, *, patient_is_row: bool) -> SplitPredictions:
    idx = np.repeat(np.arange(len(p)), k)
    ids = np.array([f"{s}-{j}" for s in p.sample_id for j in range(k)])
    return SplitPredictions(
        p.split,
        ids,
        ids if patient_is_row else p.patient_id[idx],
        None if p.site is None else p.site[idx],
        p.y[idx],
        p.proba[idx],
        {a: g[idx] for a, g in p.groups.items()},
    )


def test_duplicating_rows_leaves_the_patient_bootstrap_unchanged(spec: TaskSpec) -> None:
    """Every patient's rows repeated k times: each patient's weight scales by k, so every
    ratio-of-weighted-sums metric (Brier, AUROC, accuracy, ...) is the same on every
    replicate; a row bootstrap of the same rows sees k times the samples and narrows."""
    p = make_split("id_test", 80, 9)
    k = 4
    dup = _repeat_rows(p, k, patient_is_row=False)
    rows = _repeat_rows(p, k, patient_is_row=True)

    def run(q: SplitPredictions) -> dict[tuple, MetricResult]:
        ctx = context(spec, {"id_test": q}, n_boot=200)
        return by_key(PerformanceProbe().run(ctx)) | by_key(CalibrationProbe().run(ctx))

    base, same, narrow = run(p), run(dup), run(rows)
    names = ["auroc", "auprc", "accuracy", "f1", "sensitivity_at_specificity", "brier"]
    for name in names:
        key = (name, "id_test", None, None)
        a, b = base[key], same[key]
        assert value(b) == pytest.approx(value(a), abs=1e-12)
        assert b.ci_low == pytest.approx(a.ci_low, abs=1e-12)
        assert b.ci_high == pytest.approx(a.ci_high, abs=1e-12)
        assert value(narrow[key]) == pytest.approx(value(a), abs=1e-12)
    width = {
        n: (
            r[("brier", "id_test", None, None)].ci_high - r[("brier", "id_test", None, None)].ci_low
        )
        for n, r in (("patient", same), ("row", narrow))
    }
    assert width["row"] < 0.75 * width["patient"]


def test_interval_drops_cis_above_five_percent_undefined() -> None:
    reps = np.tile(np.linspace(0, 1, 100)[:, None], (1, 3))
    reps[:5, 1] = np.nan  # exactly 5%: kept
    reps[:6, 2] = np.nan  # 6%: dropped
    draws = Draws(np.array([0.5, 0.5, 0.5]), reps)
    lo, hi, undefined, _ = interval(draws, 0.95)
    assert MAX_UNDEFINED == 0.05
    np.testing.assert_allclose(undefined, [0, 0.05, 0.06])
    assert np.isfinite(lo[:2]).all() and np.isfinite(hi[:2]).all()
    assert np.isnan(lo[2]) and np.isnan(hi[2])
    rows = emit("x", "id_test", ["a", "b", "c"], draws, 0.95)
    assert [r.reason for r in rows[:2]] == [None, None]
    assert rows[2].value == 0.5 and rows[2].ci_low is None and rows[2].ci_high is None
    assert rows[2].reason == "CI not reported: 6% of bootstrap replicates undefined"


def test_probe_drops_a_ci_when_too_many_replicates_are_undefined(spec: TaskSpec) -> None:
    # group M: 2 positives among 60 rows, one row per patient; a replicate misses both
    # positives with probability (58/60)^60, about 13%, so TPR and AUROC of M lose their CI
    big = make_split("id_test", 80, 10, groups=("F",), sites=None, rows=(1, 1))
    y = np.zeros(60, dtype=np.int64)
    y[:2] = 1
    s = np.linspace(0.05, 0.95, 60)
    ids = np.array([f"m{i}" for i in range(60)])
    m_rows = SplitPredictions(
        "id_test", ids, ids, None, y, np.column_stack([1 - s, s]), {"sex": np.array(["M"] * 60)}
    )
    p = concat(big, m_rows)
    res = by_key(FairnessProbe().run(context(spec, {"id_test": p}, n_boot=300)))
    for metric in ("tpr", "auroc"):
        m = res[(metric, "id_test", "sex", "M")]
        assert m.value is not None and m.ci_low is None and m.ci_high is None
        assert m.reason is not None and m.reason.startswith("CI not reported")
        share = int(m.reason.split(": ")[1].split("%")[0])
        assert 5 < share < 30
    fpr = res[("fpr", "id_test", "sex", "M")]  # 58 negatives: defined, and enough of them
    assert fpr.ci_low is not None and fpr.reason is None


# -- 4. degenerate inputs give None with a reason -----------------------------------------


def test_a_single_class_group_has_no_auroc(spec: TaskSpec) -> None:
    p = make_split("id_test", 150, 11, groups=("F", "M"))
    y = np.where(p.groups["sex"] == "M", 0, p.y)  # group M: negatives only
    p = SplitPredictions(p.split, p.sample_id, p.patient_id, p.site, y, p.proba, p.groups)
    res = by_key(FairnessProbe().run(context(spec, {"id_test": p}, n_boot=40)))
    auc = res[("auroc", "id_test", "sex", "M")]
    assert auc.value is None and auc.reason is not None
    assert "group M" in auc.reason and "only negatives" in auc.reason
    tpr = res[("tpr", "id_test", "sex", "M")]
    assert tpr.value is None and "no positives" in (tpr.reason or "")
    assert value(res[("auroc", "id_test", "sex", "F")]) == pytest.approx(
        roc_auc_score(y[p.groups["sex"] == "F"], p.score[p.groups["sex"] == "F"]), abs=TOL
    )
    assert res[("fpr", "id_test", "sex", "M")].value is not None


def test_a_single_class_test_split_has_no_ranking_metrics(spec: TaskSpec) -> None:
    preds = three_splits(12)
    p = preds["id_test"]
    neg = np.zeros(len(p), dtype=np.int64)
    preds["id_test"] = SplitPredictions(
        p.split, p.sample_id, p.patient_id, p.site, neg, p.proba, p.groups
    )
    ctx = context(spec, preds, n_boot=40)
    res = by_key(PerformanceProbe().run(ctx))
    for metric in ("auroc", "auprc", "sensitivity_at_specificity", "threshold_drift"):
        m = res[(metric, "id_test", None, None)]
        assert m.value is None and m.ci_low is None
        assert m.reason == f"the split has only negatives ({len(p)} samples): undefined"
    acc = res[("accuracy", "id_test", None, None)]
    assert value(acc) == pytest.approx(accuracy_score(neg, p.score >= 0.5), abs=TOL)
    assert value(res[("auroc", "ood_test", None, None)]) == pytest.approx(
        roc_auc_score(preds["ood_test"].y, preds["ood_test"].score), abs=TOL
    )
    shift = by_key(ShiftProbe().run(ctx))
    rob = shift[("shift_robustness_auroc", "ood_test", None, None)]
    assert rob.value is None and rob.reason
    for probe in (CalibrationProbe(), FairnessProbe()):
        assert probe.run(ctx).metrics  # no crash


@pytest.mark.parametrize("left", [("F",), ("M",), ("F", "M")])
def test_a_group_missing_from_one_split_gets_empty_rows(spec: TaskSpec, left: tuple) -> None:
    """X occurs in val and ood_test only; with left=("F",) id_test has only the reference
    group, and with left=("M",) the reference group is absent from id_test."""
    preds = {
        "val": make_split("val", 60, 13),
        "id_test": make_split("id_test", 60, 14, groups=left),
        "ood_test": make_split("ood_test", 60, 15),
    }
    ctx = context(spec, preds, n_boot=40)
    res = by_key(FairnessProbe().run(ctx))
    missing = sorted({"F", "M", "X"} - set(left))
    for g in missing:
        rows = [m for k, m in res.items() if k[1:] == ("id_test", "sex", g)]
        assert len(rows) == len(GROUP_METRICS)
        for m in rows:
            assert m.value is None and m.n == 0
            assert m.reason == f"no sex={g} samples in id_test"
    for g in ("F", "M", "X"):  # all three on ood_test
        assert value(res[("selection_rate", "ood_test", "sex", g)]) >= 0
    p = preds["id_test"]
    d = (p.score >= 0.5).astype(int)
    if "F" not in left:  # no reference group: every comparison to it is None, with why
        for metric in ("disparate_impact", "eod_sum", "equal_opportunity_ratio_gap"):
            m = res[(metric, "id_test", "sex", "M")]
            assert m.value is None and "reference group F" in (m.reason or "")
            s = res[(metric, "id_test", "sex", None)] if metric != "disparate_impact" else m
            assert s.value is None and "F" in (s.reason or "")
    else:
        assert value(res[("disparate_impact", "id_test", "sex", "F")]) == 1
    dpd = res[("demographic_parity_difference", "id_test", "sex", None)]
    ref = demographic_parity_difference(p.y, d, sensitive_features=p.groups["sex"])
    assert value(dpd) == pytest.approx(ref, abs=TOL)
    if left == ("F",):  # only the reference: nothing to compare it with
        for metric in ("eod_sum", "equal_opportunity_ratio_gap"):
            m = res[(metric, "id_test", "sex", None)]
            assert m.value is None and m.reason
    # every other probe copes too
    for probe in (PerformanceProbe(), CalibrationProbe(), ShiftProbe()):
        assert all(m.value is not None or m.reason for m in probe.run(ctx).metrics)


def test_every_undefined_value_has_a_reason_on_tiny_inputs(spec: TaskSpec) -> None:
    for seed in range(30):
        rng = np.random.default_rng(seed)
        preds = {
            s: make_split(s, int(rng.integers(1, 5)), 100 * seed + i, ties=True)
            for i, s in enumerate(("val", *TEST_SPLITS))
        }
        ctx = context(spec, preds, threshold=float(rng.random()), n_boot=40, seed=seed)
        for probe in (PerformanceProbe(), CalibrationProbe(), FairnessProbe(), ShiftProbe()):
            for m in probe.run(ctx).metrics:
                assert m.value is not None or m.reason, (seed, m)
                assert (m.ci_low is None) == (m.ci_high is None)
                if m.value is not None and m.ci_low is None:
                    assert m.reason and m.reason.startswith(
                        ("CI not reported", "CI withheld", "CI undefined")
                    )


def test_report_json_round_trips_with_none_values(tiny: Path, tmp_path: Path) -> None:
    task = Task.load("tiny-task", build=True)

    class Sigmoid:
        def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
            p = 1 / (1 + np.exp(-X["x1"].to_numpy(dtype=float)))
            return np.column_stack([1 - p, p])

    probes = ["performance", "calibration", "fairness", "shift"]
    report = evaluate(Sigmoid(), task, probes, n_boot=40)
    nones = [m for p in report.probes for m in p.metrics if m.value is None]
    assert nones and all(m.reason for m in nones)  # worst_group_*: groups < 30 samples
    assert any(m.ci_low is None and m.value is not None for p in report.probes for m in p.metrics)
    loaded = Report.load(report.save(tmp_path / "r"))
    assert loaded.model_dump() == report.model_dump()
    assert loaded.predictions is None
    loaded = Report.load(report.save(tmp_path / "p", predictions=True).parent)
    assert loaded.predictions_sha256 == sha256_file(tmp_path / "p" / "predictions.parquet")
    assert loaded.model_dump(exclude={"predictions_sha256"}) == report.model_dump(
        exclude={"predictions_sha256"}
    )
    assert loaded.predictions is not None
    pd.testing.assert_frame_equal(loaded.predictions, report.predictions)
    # the report's numbers are those of its own predictions
    frame = report.predictions
    for split in TEST_SPLITS:
        part = frame[frame["split"] == split]
        auroc = report.metric("auroc", split, probe="performance").value
        assert auroc == pytest.approx(roc_auc_score(part["y_true"], part["score"]), abs=TOL)
        assert report.splits[split] == len(part)


def test_min_group_size_zero_is_honoured_and_recorded(spec: TaskSpec) -> None:
    preds = three_splits(2, n=40)
    result = FairnessProbe(min_group_size=0).run(context(spec, preds, n_boot=40))
    assert result.config["min_group_size"] == 0 and result.warnings == []
    default = FairnessProbe().run(context(spec, preds, n_boot=40))
    assert default.config["min_group_size"] == spec.min_group_size


def test_a_group_undefined_in_a_replicate_makes_the_summary_undefined(spec: TaskSpec) -> None:
    # group X: one positive patient among negatives, so many replicates lose its positives
    big = make_split("id_test", 150, 5, groups=("F", "M"), sites=None)
    y = np.array([1] + [0] * 39)
    s = np.linspace(0.2, 0.8, 40)
    x = SplitPredictions(
        "id_test",
        np.array([f"x{i}" for i in range(40)]),
        np.array([f"xp{i}" for i in range(40)]),
        None,
        y,
        np.column_stack([1 - s, s]),
        {"sex": np.array(["X"] * 40)},
    )
    p = concat(big, x)
    res = by_key(FairnessProbe().run(context(spec, {"val": big, "id_test": p}, n_boot=200)))
    tpr_x = res[("tpr", "id_test", "sex", "X")]
    assert tpr_x.value is not None  # defined on the full split ...
    eodmax = res[("equalized_odds_difference_max", "id_test", "sex", None)]
    # ... but X has no positive in about 1/e of the replicates: never a max over fewer groups
    assert eodmax.value is not None and eodmax.ci_low is None
    assert "replicates undefined" in (eodmax.reason or "")


def test_intervals_are_bca_and_withheld_below_the_support_threshold(spec: TaskSpec) -> None:
    """Issue 26: a group whose TPR rests on few positive patients gets no interval, with
    the count in the reason; a well-supported one gets a BCa interval, equal to
    bca_interval on the split's own jackknife."""
    big = make_split("id_test", 400, 21, groups=("F",), sites=None, rows=(1, 1))
    y = np.array([1] * 6 + [0] * 34)  # 6 positive patients
    s = np.linspace(0.1, 0.9, 40)
    ids = np.array([f"m{i}" for i in range(40)])
    small = SplitPredictions(
        "id_test", ids, ids, None, y, np.column_stack([1 - s, s]), {"sex": np.array(["M"] * 40)}
    )
    p = concat(big, small)
    ctx = context(spec, {"id_test": p}, n_boot=300)
    res = by_key(FairnessProbe().run(ctx))
    tpr_m = res[("tpr", "id_test", "sex", "M")]
    least = MIN_SUPPORT["positive"]
    assert tpr_m.ci_low is None and tpr_m.interval is None and tpr_m.support < least
    assert tpr_m.reason == (
        f"CI withheld: supported by {tpr_m.support} patients (< {least}, too few for "
        "95% coverage; docs/intervals.md)"
    )
    tpr_f = res[("tpr", "id_test", "sex", "F")]
    assert tpr_f.interval == "bca" and tpr_f.support >= least and tpr_f.reason is None
    hit = p.score >= ctx.threshold
    f_positive = (p.groups["sex"] == "F") & (p.y == 1)
    assert tpr_f.support == len(set(p.patient_id[f_positive]))
    assert tpr_m.support == 6
    # the same interval by hand: TPR of F, its replicates and its patient jackknife
    f_pos = ((p.groups["sex"] == "F") & (p.y == 1)).astype(float)

    def tpr(w: np.ndarray) -> np.ndarray:
        return ((w @ (f_pos * hit)) / (w @ f_pos))[:, None]

    draws = ctx.bootstrap("id_test", tpr)
    assert draws.jack is not None and len(draws.jack) == 200  # 440 patients in 200 blocks
    lo, hi = bca_interval(draws.point, draws.reps, draws.jack)
    assert (tpr_f.ci_low, tpr_f.ci_high) == pytest.approx((lo[0], hi[0]), abs=1e-12)
    # a percentile-method context (reports scored before issue 26) withholds nothing
    old = replace(ctx, interval_method="percentile", _memo={})
    again = by_key(FairnessProbe().run(old))[("tpr", "id_test", "sex", "M")]
    assert again.ci_low is not None and again.interval == "percentile" and again.support is None
