"""The shift-diagnostics probe: which representation, which reference, a known shift
flagged and the in-distribution control not, and undefined statistics stated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

from baselines import tabular
from benchmark.results.report import Report
from benchmark.scoring.evaluate import evaluate
from benchmark.scoring.probes.shift_diagnostics import ShiftDiagnosticsProbe
from benchmark.tasks.task import Task
from tests.conftest import write_tiny_task

NO_MAPS = ShiftDiagnosticsProbe(maps=False)


def shifted_table(n_patients: int = 600, move: float = 1.5) -> pd.DataFrame:
    """Hospital B's x1 moved by ``move`` SDs; the label depends on x1 and x2 alike."""
    rng = np.random.default_rng(0)
    rows = []
    for p in range(n_patients):
        hospital = "A" if p < n_patients * 0.7 else "B"
        x1 = rng.normal() + (move if hospital == "B" else 0.0)
        x2 = rng.normal()
        rows.append(
            {
                "sid": f"s{p:04d}",
                "pid": f"p{p:04d}",
                "hospital": hospital,
                "sex": "F" if p % 2 else "M",
                "x1": round(x1, 6),
                "x2": round(x2, 6),
                "y": int(rng.random() < 1 / (1 + np.exp(-(x1 + x2 - 0.5)))),
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture
def task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Task:
    write_tiny_task(tmp_path / "tasks", table=shifted_table())
    monkeypatch.setenv("MEDFAIL_TASKS_PATH", str(tmp_path / "tasks"))
    return Task.load("tiny-task", build=True)


def logistic(task: Task) -> Pipeline:
    """A model without ``embed``: logistic regression on the raw columns."""
    X, y, _ = task.split("train")
    coder = make_column_transformer((OneHotEncoder(), ["sex"]), remainder="passthrough")
    return make_pipeline(coder, LogisticRegression()).fit(X, y)


def rows(report: Report, split: str) -> dict[str, float]:
    probe = report.probe("shift_diagnostics")
    return {m.metric: m.value for m in probe.metrics if m.split == split}


def test_raw_features_flag_the_moved_hospital_and_not_the_control(task: Task) -> None:
    report = evaluate(logistic(task), task, probes=[NO_MAPS], n_boot=200)
    config = report.probe("shift_diagnostics").config
    assert config["representation"].startswith("raw features") and config["reference"] == "train"
    ood, control = rows(report, "ood_test"), rows(report, "id_test")
    assert ood["shift_flagged"] == 1 and ood["mmd2"] > ood["mmd2_threshold"]
    assert control["shift_flagged"] == 0 and control["mmd2_p_value"] >= 0.05
    assert ood["c2st_auroc"] > 0.7 > control["c2st_auroc"]
    assert ood["wasserstein_max"] > 1.0 > control["wasserstein_max"]  # x1 moved 1.5 SD
    assert ood["kl_max"] > control["kl_max"]
    c2st = report.metric("c2st_auroc", "ood_test", probe="shift_diagnostics")
    assert c2st.ci_low is not None and c2st.ci_low < c2st.value < c2st.ci_high
    prevalence = report.metric("observed_prevalence", "ood_test", probe="shift_diagnostics")
    assert prevalence.value == pytest.approx(task.split("ood_test")[1].mean())


def test_a_learned_embedding_is_compared_with_val(task: Task) -> None:
    config = tabular.MLPConfig(max_epochs=3, num_threads=1)
    net = tabular.train_mlp(task, "erm", seed=0, config=config)
    report = evaluate(net, task, probes=[NO_MAPS], n_boot=100)
    config = report.probe("shift_diagnostics").config
    assert config["representation"] == "the model's embed() (penultimate features)"
    assert config["reference"] == "val" and config["columns"] > 0
    assert rows(report, "ood_test")["shift_flagged"] == 1


def test_too_few_rows_give_stated_nans_not_a_crash(task: Task) -> None:
    probe = ShiftDiagnosticsProbe(max_samples=5, n_permutations=50, maps=False)
    report = evaluate(logistic(task), task, probes=[probe], n_boot=50)
    mmd = report.metric("mmd2", "ood_test", probe="shift_diagnostics")
    assert mmd.value is None and "fewer than 10 rows" in str(mmd.reason)
    observed = report.metric("observed_prevalence", "ood_test", probe="shift_diagnostics")
    assert observed.value is not None  # the prevalences use every scored row


def test_the_maps_are_written_beside_the_report(task: Task, tmp_path: Path) -> None:
    probe = ShiftDiagnosticsProbe(n_permutations=50, map_rows=60)
    report = evaluate(logistic(task), task, probes=[probe], n_boot=50)
    figures = report.probe("shift_diagnostics").figures
    assert sorted(figures) == ["shift-tsne.png", "shift-umap.png"]
    report.save(tmp_path / "out")
    for name, data in figures.items():
        written = (tmp_path / "out" / "figures" / name).read_bytes()
        assert written == data and written.startswith(b"\x89PNG")
    again = evaluate(logistic(task), task, probes=[probe], n_boot=50)
    assert again.probe("shift_diagnostics").figures == figures  # seeded: the same bytes
    report.probe("shift_diagnostics").with_figures({})
    report.save(tmp_path / "out")  # a report without maps removes the earlier ones
    assert not (tmp_path / "out" / "figures").exists()
