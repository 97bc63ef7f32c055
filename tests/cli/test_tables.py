"""The main tables at 80 columns: no header, label or interval is cut or wrapped."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.boards.entries import load_boards
from benchmark.catalogue.browse import stats
from benchmark.catalogue.cases import CASES_ROOT, load_cases
from benchmark.cli.tables import (
    board_rich_table,
    cases_table,
    claim_table,
    comparison_table,
    report_tables,
    stats_table,
)
from benchmark.common.conventions import METRIC_LABELS, legend, short_label
from benchmark.results.report import Report
from benchmark.scoring.compare import compare
from benchmark.scoring.evaluate import evaluate
from benchmark.tasks.task import Task
from tests.cli.fits import CI, check_fits
from tests.conftest import make_table
from tests.feature_model import Feature

PROBES = ["performance", "calibration", "fairness", "shift"]


@pytest.fixture
def reports(tiny: Path) -> tuple[Report, Report]:
    make_table(800).to_csv(tiny.parent / "data.csv", index=False)  # intervals reported
    task = Task.load("tiny-task", build=True)
    a = evaluate(Feature("x1"), task, PROBES, n_boot=60, name="a-model-with-a-long-name")
    b = evaluate(Feature("x2", -1.0), task, PROBES, n_boot=60, name="b")
    return a, b


def test_report_tables_fit_80_columns(reports: tuple[Report, Report]) -> None:
    tables = report_tables(reports[0])
    assert len(tables) == 3  # performance + calibration with the drop, fairness, group sizes
    text = "\n".join(check_fits(t) for t in tables)
    assert len(CI.findall(text)) >= 20
    assert "Sens@Sp = sensitivity_at_specificity" in text.replace("\n", " ")
    assert "ECE-mass≈" in text and "≈ approximate CI" in text  # |.|-type metrics are marked


def test_comparison_table_fits_80_columns(reports: tuple[Report, Report]) -> None:
    text = check_fits(comparison_table(compare(*reports)))
    assert "EOD sum≈ (sex)" in text and "Drop AUROC" in text and "McNemar" in text


def test_board_and_cases_tables_fit_80_columns(tmp_path: Path) -> None:
    cases = load_cases(CASES_ROOT)
    longest = max(cases, key=lambda c: len(c.id))
    text = check_fits(cases_table(cases))
    assert longest.id in text
    assert "clinical-decision-support" in check_fits(stats_table(stats(cases)))
    boards = load_boards(Path(__file__).parents[2] / "submissions", check="values")
    for board in boards:
        if board.entries:
            assert "ranked by" in check_fits(board_rich_table(board))


def test_short_labels_are_short_distinct_and_in_the_legend() -> None:
    labels = list(METRIC_LABELS.values())
    assert len(set(labels)) == len(labels) and max(map(len, labels)) <= 10
    assert short_label("shift_robustness_auroc") == "Drop AUROC"
    assert short_label("a_metric_without_a_label") == "a_metric_without_a_label"
    assert legend(["eod_sum", "auroc", "eod_sum"]) == "EOD sum = eod_sum"


def test_card_commands_tables_and_links_print_whole_at_80_columns(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tasks info`` at 80 columns: every line of the card's code blocks and tables, and
    every link, is printed whole on one line (a terminal soft-wraps it, copy-paste works)."""
    import io

    from rich.console import Console

    from benchmark.cli import common
    from benchmark.tasks.build import CARD

    task = Task.load("tiny-task", build=True)
    card = (task.path / CARD).read_text(encoding="utf-8")
    console = Console(width=80, record=True, file=io.StringIO())
    monkeypatch.setattr(common, "out", console)
    common.print_markdown(card)
    shown = console.export_text().splitlines()
    verbatim = [b for v, b in common.markdown_blocks(card) if v]
    assert any(b.startswith("```") for b in verbatim) and any(b.startswith("|") for b in verbatim)
    for line in (x for b in verbatim for x in b.splitlines()):
        assert line.rstrip() in (s.rstrip() for s in shown), line
    assert not any("```" in b or "| --- |" in b for v, b in common.markdown_blocks(card) if not v)


def test_a_closed_pipe_ends_quietly() -> None:
    """``medfail cases list --json | head -c 1``: the command ends as Unix tools do, by
    SIGPIPE (status 141 in a shell), with nothing on stderr (it used to exit 1)."""
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from benchmark.console import main; main()",
            "cases",
            "list",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before anything is written
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == -signal.SIGPIPE
    assert err == "", err


CLAIM = """\
validity:
  probe: fairness
  metric: auroc_gap
  split: ood_test
  attribute: sex
  group: M
  direction: negative
  family: gbm
"""


def test_the_failure_claim_stays_in_view(tiny: Path) -> None:
    """A task whose failure is a group gap (flchain 1.1.0: AUROC gap, sex=M) shows that
    metric per model, and compare keeps its row, though both tables show summaries."""
    tiny.write_text(tiny.read_text() + CLAIM)
    make_table(800).to_csv(tiny.parent / "data.csv", index=False)  # intervals reported
    task = Task.load("tiny-task", build=True)
    assert task.spec.validity is not None
    a = evaluate(Feature("x1"), task, PROBES, n_boot=60, name="a")
    b = evaluate(Feature("x2", -1.0), task, PROBES, n_boot=60, name="b")
    text = check_fits(claim_table(task.spec.validity, {"a": [a], "b": [b, a]}, "F"))
    assert "The task's failure: AUROC gap (sex: M minus F) on ood_test" in " ".join(text.split())
    gap = a.metric("auroc_gap", "ood_test", probe="fairness", attribute="sex", group="M")
    assert f"{gap.value:.3f} [{gap.ci_low:.3f}, {gap.ci_high:.3f}]" in text
    assert "seeds with CI below 0" in text and " of 1" in text and " of 2" in text
    rows = [d for d in compare(a, b).differences if d.group is not None]
    assert [(d.metric, d.attribute, d.group) for d in rows] == [("auroc_gap", "sex", "M")]
    assert "AUROC gap (sex=M)" in check_fits(comparison_table(compare(a, b)))


def test_plain_progress_keeps_first_and_last_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    """In a log: each step's line, its first inner line, and the last line of each kind of
    inner work (an early-stopped run's final epoch before scoring), not every epoch."""
    import io

    from rich.console import Console

    from benchmark.cli import common

    console = Console(width=200, record=True, file=io.StringIO())
    monkeypatch.setattr(common, "err", console)
    step = common._plain_steps("erm on t", 2)
    for seed in (0, 1):
        for epoch in range(1, 5):  # early stopping at epoch 4 of 30, all within 5 s
            step(f"seed {seed}: epoch {epoch}/30", epoch, 30)
        step(f"seed {seed}: scoring", 0, 1)
        step(f"seed {seed}")
    lines = [x.strip() for x in console.export_text().splitlines()]
    assert lines[:3] == ["seed 0: epoch 1/30", "seed 0: epoch 4/30", "seed 0: scoring"]
    assert lines[3].startswith("erm on t: seed 0 [1/2,")
    assert "seed 0: epoch 2/30" not in lines and "seed 1: epoch 4/30" in lines
