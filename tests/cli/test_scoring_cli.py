"""End to end through the CLI: baselines -> entries -> evaluate -> compare, on the tiny task."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner, Result

from benchmark.boards.entries import load_boards
from benchmark.cli import app
from benchmark.common.hashing import sha256_file
from benchmark.results.report import Report
from benchmark.tasks.task import Task
from tests.conftest import make_table

runner = CliRunner()


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _baselines(
    out: Path, *extra: str, method: str = "erm", seeds: tuple[str, ...] = ("0",)
) -> Result:
    """``medfail baselines run`` on the tiny task; returns the click result."""
    if "--method" in extra:
        i = extra.index("--method")
        method, extra = extra[i + 1], extra[:i] + extra[i + 2 :]
    args = ["baselines", "run", "--task", "tiny-task", "--method", method]
    return runner.invoke(app, [*args, "--seeds", *seeds, "--out", str(out), *extra])


@pytest.fixture
def entries(tiny: Path, tmp_path: Path) -> Path:
    # 800 patients: enough in each group and class that intervals are reported (issue 26)
    make_table(800).to_csv(tiny.parent / "data.csv", index=False)
    root = tmp_path / "subs"
    result = _baselines(root, "--n-boot", "50", seeds=("0", "1"))
    assert result.exit_code == 0, result.output
    return root


def test_baselines_write_pinned_entries(entries: Path) -> None:
    task = Task.load("tiny-task")
    board_dir = entries / "tiny-task@1.0.0"
    assert sorted(p.name for p in board_dir.iterdir() if not p.name.startswith(".")) == [
        "erm-gbm",
        "erm-logistic",
        "erm-mlp",
    ]
    for entry in ("erm-gbm", "erm-logistic", "erm-mlp"):
        for seed in (0, 1):
            folder = board_dir / entry / f"seed-{seed}"
            report = Report.load(folder)
            assert report.task.content_sha256 == task.manifest.content_sha256
            assert report.task.spec_sha256 == task.spec.sha256()
            assert report.task.released is False  # the tiny task is a draft
            assert report.environment["numpy"] and report.environment["medfail"]
            model_file = next(folder.glob("model.*"))
            assert report.model.sha256 == sha256_file(model_file)
            assert report.model.hash_of == "file"
            assert report.seeds["train"] == seed
            assert report.bootstrap.n_boot == 50
    (board,) = load_boards(entries)
    assert board.problems == [] and len(board.entries) == 3


def test_evaluate_reproduces_the_entry_and_saves_predictions(entries: Path, tmp_path: Path) -> None:
    seed_dir = entries / "tiny-task@1.0.0" / "erm-mlp" / "seed-0"
    out = tmp_path / "eval"
    text = _ok(
        [
            "evaluate",
            "--task",
            "tiny-task@1.0.0",
            "--model",
            str(seed_dir / "model.safetensors"),
            "--out",
            str(out),
            "--save-predictions",
            "--n-boot",
            "50",
        ]
    )
    assert "report:" in text
    fresh, stored = Report.load(out), Report.load(seed_dir)
    # same task, model file, threshold rule and bootstrap seed: every number is identical
    assert fresh.to_frame().equals(stored.to_frame())
    assert fresh.threshold == stored.threshold
    preds = pd.read_parquet(out / "predictions.parquet")
    assert {
        "sample_id",
        "split",
        "patient_id",
        "y_true",
        "proba_neg",
        "proba_pos",
        "score",
        "group_sex",
    } <= set(preds.columns)
    for split in ("id_test", "ood_test"):
        part = preds[preds["split"] == split]
        ref = roc_auc_score(part["y_true"], part["score"])
        assert fresh.metric("auroc", split, probe="performance").value == pytest.approx(
            ref, abs=1e-12
        )
    raw = json.loads((out / "report.json").read_text())
    assert raw["task"]["id"] == "tiny-task" and raw["model"]["sha256"]


def test_compare_two_reports(entries: Path, tmp_path: Path) -> None:
    board = entries / "tiny-task@1.0.0"
    text = _ok(["compare", str(board / "erm-mlp" / "seed-0"), str(board / "erm-gbm" / "seed-0")])
    assert "one pair" in text and "McNemar" in text and "AUROC" in text
    assert "EOD sum≈ (sex)" in text  # fairness rows, not only performance


def test_compare_whole_entries_across_seeds(entries: Path) -> None:
    board = entries / "tiny-task@1.0.0"
    a, b = str(board / "erm-mlp"), str(board / "erm-gbm")
    text = _ok(["compare", a, b])
    assert "erm-mlp (A) minus erm-gbm (B)" in text and "2 paired seeds" in text
    result = runner.invoke(app, ["compare", a, b, "--json"], catch_exceptions=False)
    found = json.loads(result.stdout)
    assert found["seeds"] == [0, 1] and found["a"] == "erm-mlp"
    assert {d["probe"] for d in found["differences"]} == {"performance", "fairness"}  # the task's
    auroc = next(
        d for d in found["differences"] if (d["metric"], d["split"]) == ("auroc", "ood_test")
    )
    mean = np.mean(auroc["per_seed"])
    assert len(auroc["per_seed"]) == 2 and auroc["diff"] == pytest.approx(mean, abs=1e-12)
    csv = runner.invoke(app, ["compare", a, b, "--csv"], catch_exceptions=False).stdout
    assert csv.splitlines()[0].startswith(
        "probe,metric,split,attribute,group,a,b,diff,ci_low,ci_high"
    )
    both = runner.invoke(app, ["compare", a, b, "--csv", "--json"])
    assert both.exit_code != 0 and "choose one of --json and --csv" in str(both.exception)


def test_baselines_run_shows_epochs_and_ends_with_the_board(tiny: Path, tmp_path: Path) -> None:
    result = _baselines(tmp_path / "subs", "--n-boot", "40", "--family", "mlp")
    assert result.exit_code == 0, result.output
    # not a terminal: plain lines, the first epoch and each finished seed
    assert re.search(r"erm-mlp seed 0: epoch 1/\d+  loss \d\.\d{4}  val loss", result.stderr)
    assert "erm on tiny-task@1.0.0: erm-mlp seed 0 [1/1," in result.stderr
    assert "ranked by AUROC" in result.stdout and "erm-mlp" in result.stdout
    assert "medfail leaderboard --dir" in result.stdout
    again = _baselines(tmp_path / "subs", "--n-boot", "40", "--method", "mixup", "--json")
    assert again.exit_code == 0, again.output
    rows = json.loads(again.stdout)
    assert {r["entry"]: r["new"] for r in rows} == {"erm-mlp": False, "mixup-mlp": True}
    assert "medfail compare" in again.stderr  # the next step: against ERM


def test_unknown_method_is_named(tiny: Path, tmp_path: Path) -> None:
    result = _baselines(tmp_path, method="magic")
    assert result.exit_code != 0
    assert "unknown method 'magic'" in str(result.exception) + result.output


def test_evaluate_unknown_model_kind_is_one_clear_error(tiny: Path, tmp_path: Path) -> None:
    bad = tmp_path / "model.pkl"
    bad.write_bytes(b"not really")
    result = runner.invoke(
        app, ["evaluate", "--task", "tiny-task", "--model", str(bad), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code != 0
    assert "pickle files are refused" in str(result.exception)
    assert not (tmp_path / "o").exists()


def test_probability_columns_recompute_every_split(entries: Path) -> None:
    preds = pd.read_parquet(
        entries / "tiny-task@1.0.0" / "erm-gbm" / "seed-1" / "predictions.parquet"
    )
    probs = preds[["proba_neg", "proba_pos"]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-9)
    assert set(preds["split"]) == {"val", "id_test", "ood_test"}


def test_rerun_is_refused_before_any_training(entries: Path) -> None:
    board = entries / "tiny-task@1.0.0"
    before = {p: p.stat().st_mtime_ns for p in board.rglob("*") if p.is_file()}
    result = _baselines(entries)
    assert result.exit_code != 0
    assert "overwrite them explicitly (--overwrite)" in str(result.exception)
    assert {p: p.stat().st_mtime_ns for p in board.rglob("*") if p.is_file()} == before


def test_negative_or_non_integer_seeds_are_one_clear_error(tiny: Path, tmp_path: Path) -> None:
    for seeds in (["-1"], ["0", "x"]):
        result = _baselines(tmp_path, seeds=tuple(seeds))
        assert result.exit_code != 0
        assert "seeds are non-negative integers" in str(result.exception)


def test_probes_the_task_lists_but_medfail_lacks_are_noted_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import write_tiny_task

    root = tmp_path / "tasks"
    spec = write_tiny_task(root)
    spec.write_text(
        spec.read_text().replace(
            "probes: [performance, fairness]", "probes: [performance, explanation]"
        )
    )
    monkeypatch.setenv("MEDFAIL_TASKS_PATH", str(root))
    from benchmark.scoring import probes
    from benchmark.scoring.evaluate import evaluate

    # a MedFail that knows the probe's name (specs may list it) but not the probe itself
    monkeypatch.delitem(probes._MODULES, "explanation")

    class Half:
        def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
            p = 1 / (1 + np.exp(-X["x1"].to_numpy(dtype=float)))
            return np.column_stack([1 - p, p])

    report = evaluate(Half(), "tiny-task", n_boot=40)
    assert [p.name for p in report.probes] == ["performance"]
    assert any("'explanation'" in w and "not run" in w for w in report.warnings)
