"""Every number of every committed leaderboard entry, recomputed from its stored predictions
(RobustBench's habit): a stored result can never drift from its data."""

from __future__ import annotations

import pytest

from benchmark.boards.entries import load_boards
from benchmark.results.report import Report
from benchmark.scoring.rescore import RECOMPUTABLE, recheck
from benchmark.tasks.registry import resolve
from tests import REPO

REPORTS = sorted((REPO / "submissions").glob("*/*/seed-*/report.json"))


@pytest.mark.parametrize("path", REPORTS, ids=[str(p.parent.relative_to(REPO)) for p in REPORTS])
def test_a_committed_report_recomputes_from_its_predictions(path) -> None:
    report = Report.load(path)
    assert report.predictions is not None, "committed entries keep their predictions"
    assert {p.name for p in report.probes} & set(RECOMPUTABLE)
    assert recheck(report, resolve(report.task.ref).spec, full=True) == []


def test_every_committed_entry_is_ranked() -> None:
    boards = load_boards(REPO / "submissions", check="values")  # the test above: full
    assert boards and all(not b.problems for b in boards), [b.problems for b in boards]
    committed = {p.parent.parent.name for p in REPORTS}
    assert {e.metadata.name for b in boards for e in b.entries} == committed
