"""No stored number is trusted unchecked: impossible values are refused on load, every number
the stored predictions can give is recomputed from them, and the CLI's scoring inputs
(bootstrap settings, predictions files, the output folder) are checked before use."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from benchmark.boards.entries import load_boards
from benchmark.cli import app
from benchmark.errors import MedFailError
from benchmark.models.loading import ModelLoadError, load_model
from benchmark.results.report import PREDICTIONS_FILE, REPORT_FILE, Report
from benchmark.scoring.evaluate import evaluate, min_replicates
from benchmark.scoring.rescore import recheck
from benchmark.tasks.registry import resolve
from benchmark.tasks.task import Task
from tests import REPO
from tests.boards.test_submissions import add_entry, board_of
from tests.cli.test_scoring_cli import _baselines

runner = CliRunner()


@pytest.fixture
def board(tiny: Path, tmp_path: Path) -> Path:
    """Real entries (erm-gbm, erm-logistic, erm-mlp; seed 0) with predictions, on the tiny
    task's board."""
    root = tmp_path / "subs"
    result = _baselines(root, "--n-boot", "50")
    assert result.exit_code == 0, result.output
    return root / "tiny-task@1.0.0"


def edit_report(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def first_metric(data: dict, probe: str, metric: str, split: str = "id_test") -> dict:
    rows = next(p for p in data["probes"] if p["name"] == probe)["metrics"]
    return next(m for m in rows if (m["metric"], m["split"]) == (metric, split))


@pytest.mark.parametrize("value", [1e308, 5.0, -3.0, "NaN", "Infinity"])
def test_impossible_values_exclude_their_entry(tmp_path: Path, value: object) -> None:
    """AUROC 1e308 used to be shown as "—" but ranked first; 5.0 and -3.0 were accepted."""
    add_entry(tmp_path, "honest", auroc=0.7)
    cheat = add_entry(tmp_path, "cheat", auroc=0.8)
    path = cheat / "seed-0" / REPORT_FILE
    text = json.dumps(json.loads(path.read_text())).replace('"value": 0.8', f'"value": {value}', 1)
    path.write_text(text)
    board = board_of(tmp_path)
    assert [e.metadata.name for e in board.entries] == ["honest"]
    [problem] = board.problems
    assert problem.startswith("entry 'cheat' excluded:")
    assert "auroc value" in problem


def test_an_interval_upside_down_is_refused(tmp_path: Path) -> None:
    entry = add_entry(tmp_path, "flipped")
    edit_report(
        entry / "seed-1" / REPORT_FILE,
        lambda d: first_metric(d, "calibration", "ece_equal_mass", "ood_test").update(
            ci_low=0.3, ci_high=0.1
        ),
    )
    assert "ci_low 0.3 > ci_high 0.1" in board_of(tmp_path).problems[0]


def test_stored_reports_recompute_from_their_predictions(board: Path) -> None:
    spec = resolve("tiny-task@1.0.0").spec
    task = Task.load("tiny-task@1.0.0")
    for report_path in board.glob("*/seed-*/report.json"):
        report = Report.load(report_path)
        assert report.predictions is not None
        assert recheck(report, spec, full=True, task=task) == []


def test_a_number_that_contradicts_the_predictions_excludes_the_entry(board: Path) -> None:
    """In range, formatted right, but not what the stored predictions give."""
    path = board / "erm-mlp" / "seed-0" / REPORT_FILE
    edit_report(path, lambda d: first_metric(d, "performance", "auroc").update(value=0.999))
    loaded = load_boards(board.parent)[0]
    assert [e.metadata.name for e in loaded.entries] == ["erm-gbm", "erm-logistic"]
    [problem] = loaded.problems
    assert "its stored predictions contradict it: performance.auroc on id_test" in problem
    assert "stored (0.999," in problem


def test_full_recheck_catches_an_edited_interval_and_labels(board: Path) -> None:
    path = board / "erm-gbm" / "seed-0"
    edit_report(
        path / REPORT_FILE, lambda d: first_metric(d, "performance", "auroc").update(ci_low=0.0)
    )
    spec = resolve("tiny-task@1.0.0").spec
    report = Report.load(path)
    assert recheck(report, spec) == []  # values only: the interval is not drawn
    [problem] = recheck(report, spec, full=True)
    assert problem.startswith("performance.auroc on id_test: stored (")

    # the predictions file re-hashed into the report, with one true label flipped
    frame = report.predictions.copy()
    frame.loc[frame.index[-1], "y_true"] = 1 - frame["y_true"].iloc[-1]
    forged = report.model_copy().with_predictions(frame)
    problems = recheck(forged, spec, full=True, task=Task.load("tiny-task@1.0.0"))
    assert any("true labels are not the task build's" in p for p in problems)


def test_a_threshold_edited_in_the_report_is_caught(board: Path) -> None:
    path = board / "erm-gbm" / "seed-0" / REPORT_FILE
    edit_report(path, lambda d: d["threshold"].update(value=0.123))
    [problem] = recheck(Report.load(path), resolve("tiny-task@1.0.0").spec)
    assert problem.startswith("threshold 0.123 stored")


# -- the CLI's scoring inputs -----------------------------------------------------------------


def evaluate_cli(model: str, out: Path, *extra: str) -> object:
    return runner.invoke(
        app, ["evaluate", "--task", "tiny-task", "--model", model, "--out", str(out), *extra]
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--n-boot", "1"), "--n-boot 1 is too few"),
        (("--n-boot", "39"), "needs at least 40 replicates"),
        (("--seed", "-1"), "--seed -1: a bootstrap seed is an integer"),
    ],
)
def test_bootstrap_settings_that_cannot_give_an_interval_are_refused(
    board: Path, tmp_path: Path, extra: tuple[str, ...], message: str
) -> None:
    model = str(next((board / "erm-gbm" / "seed-0").glob("model.*")))
    result = evaluate_cli(model, tmp_path / "out", *extra)
    assert result.exit_code != 0
    assert isinstance(result.exception, MedFailError)
    assert message in str(result.exception)
    assert not (tmp_path / "out").exists()
    assert min_replicates(0.95) == 40


def test_a_second_report_in_the_same_folder_drops_the_first_ones_predictions(
    board: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    gbm = str(next((board / "erm-gbm" / "seed-0").glob("model.*")))
    mlp = str(next((board / "erm-mlp" / "seed-0").glob("model.*")))
    assert evaluate_cli(gbm, out, "--n-boot", "40", "--save-predictions").exit_code == 0
    assert (out / PREDICTIONS_FILE).is_file()
    result = evaluate_cli(mlp, out, "--n-boot", "40")
    assert result.exit_code == 0, result.output
    assert not (out / PREDICTIONS_FILE).exists()
    assert Report.load(out).model.adapter == "safetensors"


def predictions_of(board: Path) -> pd.DataFrame:
    frame = pd.read_parquet(board / "erm-gbm" / "seed-0" / PREDICTIONS_FILE)
    return frame[["sample_id", "proba_neg", "proba_pos", "score"]]


def test_rows_for_unknown_samples_are_an_error(board: Path, tmp_path: Path) -> None:
    frame = predictions_of(board)
    extra = frame.iloc[:1].assign(sample_id="not-a-sample")
    path = tmp_path / "preds.csv"
    pd.concat([frame, extra]).to_csv(path, index=False)
    with pytest.raises(ModelLoadError, match=r"sample 'not-a-sample' is not in tiny-task@1\.0\.0"):
        load_model(str(path), Task.load("tiny-task"))


def test_a_score_that_contradicts_the_probabilities_is_an_error(
    board: Path, tmp_path: Path
) -> None:
    frame = predictions_of(board)
    frame.loc[frame.index[3], "score"] = 1 - frame["proba_pos"].iloc[3] + 0.25
    path = tmp_path / "preds.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(ModelLoadError, match="the score must be P\\(positive class\\)"):
        load_model(str(path), Task.load("tiny-task"))
    frame["score"] = frame["proba_pos"]
    frame.to_parquet(path, index=False)
    report = evaluate(str(path), Task.load("tiny-task"), n_boot=40)  # consistent: accepted
    assert np.isfinite(report.metric("auroc", "id_test").value)


def test_every_metric_the_probes_write_has_a_stated_range(board: Path) -> None:
    """A new metric must say which values are possible, or impossible ones pass unchecked."""
    from benchmark.common.conventions import metric_range

    reports = [*board.glob("*/seed-*/report.json")]
    reports += REPO.glob("submissions/*/*/seed-*/report.json")
    names = {m.metric for path in reports for p in Report.load(path).probes for m in p.metrics}
    assert {"auroc", "eod_sum", "robust_accuracy"} <= names
    unbounded = {n for n in names if metric_range(n) == (-np.inf, np.inf)}
    assert unbounded == set()


# -- forged entries that agree with themselves ---------------------------------------------


def forge(report: Report, frame: pd.DataFrame) -> Report:
    """``report`` with every recomputable number recomputed from ``frame`` (the attacker
    runs MedFail's own probes on forged predictions, so the entry agrees with itself)."""
    from benchmark.scoring.predictions import from_frame
    from benchmark.scoring.probes import PROBES, ScoringContext

    spec = resolve(report.task.ref).spec
    preds = from_frame(frame, list(report.task.classes))
    tests = tuple(s for s in ("id_test", "ood_test") if s in preds)
    ctx = ScoringContext(
        spec,
        None,  # type: ignore[arg-type]
        {s: preds[s] for s in ("val", *tests)},
        tests,
        report.threshold.value,
        n_boot=report.bootstrap.n_boot,
        level=report.bootstrap.level,
        seed=report.bootstrap.seed,
    )
    probes = [PROBES[p.name](**p.config).run(ctx) for p in report.probes]
    return report.model_copy(update={"probes": probes}).with_predictions(frame)


def test_labels_forged_to_fit_the_scores_are_caught_against_the_build(board: Path) -> None:
    """Every number agrees with the stored predictions, whose labels were rewritten to
    "in the top half of the split's scores": only the task build can tell."""
    seed = board / "erm-mlp" / "seed-0"
    report = Report.load(seed)
    frame = report.predictions.copy()
    test = frame["split"].isin(["id_test", "ood_test"])
    rank = frame.groupby("split")["score"].rank(method="first", pct=True)
    frame.loc[test, "y_true"] = (rank[test] > 0.5).astype(int)
    forged = forge(report, frame)
    assert forged.metric("auroc", "id_test").value > report.metric("auroc", "id_test").value
    forged.save(seed, predictions=True)
    assert recheck(Report.load(seed), resolve("tiny-task@1.0.0").spec) == []  # self-consistent
    [loaded] = load_boards(board.parent)
    assert [e.metadata.name for e in loaded.entries] == ["erm-gbm", "erm-logistic"]
    assert "true labels are not the task build's" in loaded.problems[0]


def test_an_entry_without_predictions_is_not_ranked(board: Path) -> None:
    seed = board / "erm-gbm" / "seed-0"
    Report.load(seed).save(seed, predictions=False)
    [loaded] = load_boards(board.parent)
    assert [e.metadata.name for e in loaded.entries] == ["erm-logistic", "erm-mlp"]
    assert "saved without its predictions" in loaded.problems[0]


def test_an_edited_interval_is_caught_on_the_board(board: Path) -> None:
    path = board / "erm-mlp" / "seed-0" / REPORT_FILE
    edit_report(
        path, lambda d: first_metric(d, "performance", "auroc").update(ci_low=0.97, ci_high=0.99)
    )
    [loaded] = load_boards(board.parent)
    assert [e.metadata.name for e in loaded.entries] == ["erm-gbm", "erm-logistic"]
    [fast] = load_boards(board.parent, check="values")  # point values only: not seen
    assert len(fast.entries) == 3


def test_a_predictions_file_declaring_more_rows_than_its_report_is_refused(
    board: Path,
) -> None:
    """A small compressed file can declare millions of rows; the footer is read first."""
    from benchmark.results.predictions_file import write_predictions

    seed = board / "erm-gbm" / "seed-0"
    report = Report.load(seed)
    frame = report.predictions
    big = pd.concat([frame] * (report.max_prediction_rows() // len(frame) + 1))
    digest = write_predictions(big, seed / "predictions.parquet")
    report.model_copy(update={"predictions_sha256": digest}).model_dump_json()
    (seed / REPORT_FILE).write_text(
        report.model_copy(update={"predictions_sha256": digest}).model_dump_json()
    )
    with pytest.raises(MedFailError, match="over the limit"):
        Report.load(seed)


# -- the second review: forged entries that pass every recomputation ----------------------


@pytest.fixture
def default_board(tiny: Path, tmp_path: Path) -> Path:
    """erm-gbm and erm-mlp scored with the default protocol (1,000 replicates)."""
    root = tmp_path / "subs"
    result = _baselines(root)
    assert result.exit_code == 0, result.output
    return root / "tiny-task@1.0.0"


def test_copies_with_invented_model_hashes_cannot_set_the_protocol(default_board: Path) -> None:
    """Three copies with another fairness setting and made-up model sha256s used to outvote
    the honest entries; a known task's board ranks its default protocol, no vote."""
    import shutil

    for i in range(3):
        copy = default_board / f"puppet-{i}"
        shutil.copytree(default_board / "erm-gbm", copy)
        meta = (copy / "metadata.yaml").read_text().replace("name: erm-gbm", f"name: puppet-{i}")
        (copy / "metadata.yaml").write_text(meta)
        seed = copy / "seed-0"
        report = Report.load(seed)
        fairness = next(p for p in report.probes if p.name == "fairness")
        probes = [
            p.model_copy(update={"config": p.config | {"min_group_size": 1}})
            if p is fairness
            else p
            for p in report.probes
        ]
        model = report.model.model_copy(update={"sha256": f"{i}" * 64})
        forged = forge(
            report.model_copy(update={"probes": probes, "model": model}), report.predictions
        )
        forged.save(seed, predictions=True)
    [loaded] = load_boards(default_board.parent)
    assert sorted(e.metadata.name for e in loaded.entries) == ["erm-gbm", "erm-logistic", "erm-mlp"]
    assert sum("default protocol" in p for p in loaded.problems) == 3


def resave(seed: Path, frame: pd.DataFrame, **report_update: object) -> None:
    report = Report.load(seed)
    forge(report.model_copy(update=report_update), frame).save(seed, predictions=True)


def test_duplicated_rows_are_refused_even_without_the_build(board: Path) -> None:
    seed = board / "erm-mlp" / "seed-0"
    report = Report.load(seed)
    frame = report.predictions
    test = frame[frame["split"] == "id_test"]
    doubled = pd.concat([frame, test.iloc[:3]], ignore_index=True)
    splits = report.splits | {"id_test": report.splits["id_test"] + 3}
    resave(seed, doubled, splits=splits)
    problems = recheck(Report.load(seed), resolve("tiny-task@1.0.0").spec)
    assert problems == ["split id_test: a sample appears more than once"]


def test_a_split_the_task_does_not_have_is_refused(board: Path) -> None:
    """An invented ood_val (the tiny task has none) could become a board's headline."""
    seed = board / "erm-mlp" / "seed-0"
    report = Report.load(seed)
    frame = report.predictions
    fake = frame[frame["split"] == "id_test"].assign(split="ood_val")
    resave(seed, pd.concat([frame, fake], ignore_index=True))
    [problem] = recheck(Report.load(seed), resolve("tiny-task@1.0.0").spec)
    assert "hold split 'ood_val', which the task does not have" in problem


def test_rewritten_groups_are_caught_against_the_build(board: Path) -> None:
    seed = board / "erm-mlp" / "seed-0"
    frame = Report.load(seed).predictions.assign(group_sex="F")
    resave(seed, frame)
    [loaded] = load_boards(board.parent)
    assert [e.metadata.name for e in loaded.entries] == ["erm-gbm", "erm-logistic"]
    assert "its sex groups are not the task build's" in loaded.problems[0]


def test_a_report_claiming_billions_of_rows_is_still_bounded(board: Path) -> None:
    from benchmark.results.report import MAX_SCORED_ROWS

    seed = board / "erm-mlp" / "seed-0"
    report = Report.load(seed)
    claim = report.model_copy(update={"splits": report.splits | {"val": 10**10}})
    assert claim.max_prediction_rows() == MAX_SCORED_ROWS
