"""Paired comparison of two reports: differences, McNemar, and what compare() refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest

from benchmark.errors import MedFailError
from benchmark.results.report import Report
from benchmark.scoring.compare import PairedDifference, compare, compare_runs
from benchmark.scoring.evaluate import evaluate
from benchmark.scoring.probes.base import split_seed
from benchmark.stats.bootstrap import Resampler
from benchmark.stats.intervals import bca_interval
from benchmark.tasks.task import Task
from tests.conftest import make_table
from tests.feature_model import Feature

TOL = 1e-12
PROBES = ["performance", "calibration", "fairness", "shift"]


@pytest.fixture
def reports(tiny: Path) -> tuple[Report, Report]:
    # 800 patients: enough in each group and class that intervals are reported (issue 26)
    make_table(800).to_csv(tiny.parent / "data.csv", index=False)
    task = Task.load("tiny-task", build=True)
    a = evaluate(Feature("x1"), task, PROBES, n_boot=200, name="a")
    b = evaluate(Feature("x2", -1.0), task, PROBES, n_boot=200, name="b")
    return a, b


def _reported(r: Report, d: PairedDifference) -> float | None:
    return r.metric(d.metric, d.split, probe=d.probe, attribute=d.attribute).value


def test_paired_difference_is_a_minus_b_on_every_recomputable_probe(
    reports: tuple[Report, Report],
) -> None:
    a, b = reports
    c = compare(a, b)
    assert (c.a, c.b, c.n_boot, c.task, c.seeds) == ("a", "b", 200, "tiny-task@1.0.0", [0])
    stored = {(m.probe, m.metric, m.split, m.attribute) for m in a.probes[0].metrics}
    stored |= {
        (m.probe, m.metric, m.split, m.attribute)
        for p in a.probes[1:]
        for m in p.metrics
        if m.group is None
    }
    assert {(d.probe, d.metric, d.split, d.attribute) for d in c.differences} == stored
    assert {d.probe for d in c.differences} == {"performance", "calibration", "fairness", "shift"}
    defined = 0
    for d in c.differences:
        va, vb = _reported(a, d), _reported(b, d)
        assert d.a == pytest.approx(va, abs=TOL) if va is not None else d.a is None
        assert d.b == pytest.approx(vb, abs=TOL) if vb is not None else d.b is None
        if va is None or vb is None:
            assert d.diff is None
            continue
        assert d.diff == pytest.approx(va - vb, abs=TOL) and d.per_seed == [d.diff]
        if d.ci_low is None:  # replicates undefined too often: so were A's or B's own
            ma = a.metric(d.metric, d.split, probe=d.probe, attribute=d.attribute)
            mb = b.metric(d.metric, d.split, probe=d.probe, attribute=d.attribute)
            assert ma.ci_low is None or mb.ci_low is None
            continue
        assert d.ci_high is not None and d.ci_low <= d.ci_high
        if d.probe == "performance":  # a smooth statistic: its interval holds it
            assert d.ci_low <= d.diff <= d.ci_high
        defined += 1
    assert defined >= 20
    assert any(d.diff != 0 for d in c.differences)  # the two models do differ


def test_paired_interval_equals_a_hand_written_patient_bootstrap(
    reports: tuple[Report, Report],
) -> None:
    """Accuracy difference on id_test, resampled by hand: patients within sites, the
    task's seed; BCa with the acceleration from leaving out one patient at a time (BCa
    itself equals scipy's: tests/stats/test_intervals.py)."""
    a, b = reports
    fa, fb = a.predictions, b.predictions
    assert fa is not None and fb is not None
    pa, pb = fa[fa["split"] == "id_test"], fb[fb["split"] == "id_test"]
    y = pa["y_true"].to_numpy() == 1
    ok_a = ((pa["proba_pos"].to_numpy() >= a.threshold.value) == y).astype(float)
    ok_b = ((pb["proba_pos"].to_numpy() >= b.threshold.value) == y).astype(float)
    resampler = Resampler(
        len(pa),
        clusters=pa["patient_id"].to_numpy(),
        strata=pa["site"].to_numpy(),
        n_boot=200,
        seed=split_seed(a.bootstrap.seed, "id_test"),
    )
    w = np.concatenate(list(resampler.weights()))
    diffs = (w @ ok_a - w @ ok_b) / w.sum(axis=1)
    patients = pa["patient_id"].to_numpy()
    jack = np.array(
        [(ok_a - ok_b)[patients != pid].mean() for pid in sorted(set(patients))]
    )  # fewer than 200 patients: one left out at a time
    lo, hi = bca_interval(np.array([(ok_a - ok_b).mean()]), diffs[:, None], jack[:, None])
    (d,) = [x for x in compare(a, b).differences if (x.metric, x.split) == ("accuracy", "id_test")]
    assert (d.ci_low, d.ci_high) == pytest.approx((lo[0], hi[0]), abs=TOL)


def test_entries_are_paired_by_seed_and_pooled_over_seeds(tiny: Path) -> None:
    task = Task.load("tiny-task", build=True)
    a = {
        s: evaluate(Feature("x1", 1 + s), task, PROBES, n_boot=200, seeds={"train": s})
        for s in (0, 1)
    }
    b = {
        s: evaluate(Feature("x2", -1.0 - s), task, PROBES, n_boot=200, seeds={"train": s})
        for s in (0, 1, 2)
    }
    c = compare_runs(a, b, names=("A", "B"))
    assert (c.seeds, c.a, c.b) == ([0, 1], "A", "B")
    single = {s: compare(a[s], b[s]) for s in (0, 1)}
    for d in c.differences:
        per = [
            next(
                x
                for x in single[s].differences
                if x.probe == d.probe
                and x.metric == d.metric
                and x.split == d.split
                and x.attribute == d.attribute
            ).diff
            for s in (0, 1)
        ]
        assert d.per_seed == per
        if None not in per:
            assert d.diff == pytest.approx(np.mean(per), abs=TOL)
    assert {t.seed for t in c.mcnemar} == {0, 1}
    twice = compare_runs({0: a[0], 1: a[0]}, {0: b[0], 1: b[0]})
    for d, one in zip(twice.differences, single[0].differences, strict=True):
        # the same pair twice: drawing seeds adds no variation, the interval is the pair's
        assert (d.ci_low, d.ci_high) == pytest.approx((one.ci_low, one.ci_high), abs=TOL)
    with pytest.raises(MedFailError, match="no training seed in common"):
        compare_runs({0: a[0]}, {2: b[2]})


def test_a_model_compared_with_itself_differs_by_exactly_zero(
    reports: tuple[Report, Report],
) -> None:
    a, _ = reports
    c = compare(a, a)
    for d in c.differences:
        if d.a is not None:
            assert d.diff == 0
            own = a.metric(d.metric, d.split, probe=d.probe, attribute=d.attribute)
            assert (d.ci_low, d.ci_high) == ((0, 0) if own.ci_low is not None else (None, None))
    for t in c.mcnemar:
        assert t.only_a_correct == t.only_b_correct == 0 and t.p_value == 1.0


def test_mcnemar_equals_scipy_binomtest_on_per_sample_correctness(
    reports: tuple[Report, Report],
) -> None:
    a, b = reports
    c = compare(a, b)
    fa, fb = a.predictions, b.predictions
    assert fa is not None and fb is not None
    discordant = 0
    for t in c.mcnemar:
        pa, pb = fa[fa["split"] == t.split], fb[fb["split"] == t.split]
        assert list(pa["sample_id"]) == list(pb["sample_id"])
        y = pa["y_true"].to_numpy() == 1
        ok_a = (pa["proba_pos"].to_numpy() >= a.threshold.value) == y
        ok_b = (pb["proba_pos"].to_numpy() >= b.threshold.value) == y
        n10, n01 = int(np.sum(ok_a & ~ok_b)), int(np.sum(~ok_a & ok_b))
        assert (t.only_a_correct, t.only_b_correct) == (n10, n01)
        want = binomtest(n10, n10 + n01, 0.5).pvalue if n10 + n01 else 1.0
        assert t.p_value == pytest.approx(want, abs=TOL)
        discordant += n10 + n01
    assert {t.split for t in c.mcnemar} == {"id_test", "ood_test"}
    assert discordant > 0


def test_compare_works_from_saved_reports(reports: tuple[Report, Report], tmp_path: Path) -> None:
    a, b = reports
    la = Report.load(a.save(tmp_path / "a", predictions=True))
    lb = Report.load(b.save(tmp_path / "b", predictions=True))
    assert compare(la, lb) == compare(a, b)


def test_compare_refuses_what_it_cannot_pair(tiny: Path, reports: tuple[Report, Report]) -> None:
    a, b = reports
    other_build = a.model_copy(
        update={"task": a.task.model_copy(update={"content_sha256": "0" * 64})}
    ).with_predictions(a.predictions)
    with pytest.raises(MedFailError, match="different task builds"):
        compare(other_build, b)
    bare = b.model_copy().with_predictions(None)
    with pytest.raises(MedFailError, match="need their predictions"):
        compare(a, bare)
    assert b.predictions is not None  # the copy, not b, lost them
    other_seed = evaluate(Feature("x2"), Task.load("tiny-task"), PROBES, n_boot=40, seed=1)
    with pytest.raises(MedFailError, match="different bootstrap seeds"):
        compare(a, other_seed)
    frame = b.predictions.copy()
    frame.loc[frame["split"] == "id_test", "sample_id"] = frame["sample_id"] + "x"
    renamed = b.model_copy().with_predictions(frame)
    with pytest.raises(MedFailError, match="disagree on the samples"):
        compare(a, renamed)


def test_compare_refuses_edited_labels_and_stale_prediction_files(
    tmp_path: Path, reports: tuple[Report, Report]
) -> None:
    a, b = reports
    frame = a.predictions.copy()
    frame["y_true"] = (frame["score"] > 0.3).astype("int64")
    with pytest.raises(MedFailError, match="disagree on the samples, labels"):
        compare(a.model_copy().with_predictions(frame), b)
    a.save(tmp_path / "a", predictions=True)
    b.save(tmp_path / "a-stale", predictions=True)
    (tmp_path / "a" / "predictions.parquet").write_bytes(
        (tmp_path / "a-stale" / "predictions.parquet").read_bytes()
    )
    with pytest.raises(MedFailError, match="does not belong to"):
        Report.load(tmp_path / "a")
    b.save(tmp_path / "a")  # a report saved without predictions attaches none
    assert Report.load(tmp_path / "a").predictions is None


def test_recovery_is_the_share_of_the_reference_gap_closed(
    reports: tuple[Report, Report],
) -> None:
    """(A_ood - B_ood) / (B_id - B_ood) from the stored values; withheld, with the reason,
    where B has no ID - OOD gap or the OOD difference has no interval."""
    a, b = reports
    c = compare(a, b)
    assert {r.metric for r in c.recovery} == {"auroc", "accuracy"}
    for r in c.recovery:
        va = a.metric(r.metric, "ood_test", probe="performance").value
        bi = b.metric(r.metric, "id_test", probe="performance").value
        bo = b.metric(r.metric, "ood_test", probe="performance").value
        if r.value is None:
            assert r.reason and r.ci_low is None
            continue
        assert r.reference_gap == pytest.approx(bi - bo, abs=TOL) and bi - bo > 0
        assert r.value == pytest.approx((va - bo) / (bi - bo), abs=1e-9)
        assert r.ci_low <= r.value <= r.ci_high


def test_kept_bootstrap_weights_give_the_same_report(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each split's weights drawn once per context (the default) or redrawn for every
    metric (the cache off) give identical numbers."""
    from benchmark.scoring.probes import base

    task = Task.load("tiny-task", build=True)
    kept = evaluate(Feature("x1"), task, PROBES, n_boot=100, name="a")
    monkeypatch.setattr(base, "WEIGHT_CACHE_CELLS", 0)
    redrawn = evaluate(Feature("x1"), task, PROBES, n_boot=100, name="a")
    assert [p.metrics for p in kept.probes] == [p.metrics for p in redrawn.probes]
