"""Paired comparison of two reports: differences, McNemar, and what compare() refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from benchmark.errors import MedFailError
from benchmark.results.report import Report
from benchmark.scoring.compare import METRICS, compare
from benchmark.scoring.evaluate import evaluate
from benchmark.tasks.task import Task

TOL = 1e-12
PROBES = ["performance", "calibration"]


class Feature:
    """P(positive) = sigmoid(scale * X[column])."""

    def __init__(self, column: str, scale: float = 1.0) -> None:
        self.column, self.scale = column, scale

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + np.exp(-self.scale * X[self.column].to_numpy(dtype=float)))
        return np.column_stack([1 - p, p])


@pytest.fixture
def reports(tiny: Path) -> tuple[Report, Report]:
    task = Task.load("tiny-task", build=True)
    a = evaluate(Feature("x1"), task, PROBES, n_boot=200, name="a")
    b = evaluate(Feature("x2", -1.0), task, PROBES, n_boot=200, name="b")
    return a, b


def _reported(r: Report, metric: str, split: str) -> float | None:
    probe = "calibration" if metric in ("ece_equal_mass", "brier") else "performance"
    return r.metric(metric, split, probe=probe).value


def test_paired_difference_is_a_minus_b_from_the_reports(reports: tuple[Report, Report]) -> None:
    a, b = reports
    c = compare(a, b)
    assert (c.a, c.b, c.n_boot, c.task) == ("a", "b", 200, "tiny-task@1.0.0")
    assert {(d.split, d.metric) for d in c.differences} == {
        (s, m) for s in ("id_test", "ood_test") for m in METRICS
    }
    defined = 0
    for d in c.differences:
        va, vb = _reported(a, d.metric, d.split), _reported(b, d.metric, d.split)
        assert d.a == va and d.b == vb
        if va is None or vb is None:
            assert d.diff is None
            continue
        assert d.diff == pytest.approx(va - vb, abs=TOL)
        assert d.ci_low is not None and d.ci_high is not None and d.ci_low <= d.ci_high
        defined += 1
    assert defined >= 10
    assert any(d.diff != 0 for d in c.differences)  # the two models do differ


def test_a_model_compared_with_itself_differs_by_exactly_zero(
    reports: tuple[Report, Report],
) -> None:
    a, _ = reports
    c = compare(a, a)
    for d in c.differences:
        if d.a is not None:
            assert d.diff == 0 and d.ci_low == 0 and d.ci_high == 0
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
