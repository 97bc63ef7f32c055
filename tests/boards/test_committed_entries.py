"""Every number of every committed leaderboard entry, recomputed from its stored predictions
(RobustBench's habit): a stored result can never drift from its data."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from benchmark.boards.entries import load_boards
from benchmark.results.report import Report
from benchmark.scoring.rescore import RECOMPUTABLE, recheck
from benchmark.tasks.registry import resolve
from tests import REPO

REPORTS = sorted((REPO / "submissions").glob("*/*/seed-*/report.json"))


def _problems(path: Path) -> list[str]:
    """What the full recheck of one committed report finds (empty: every number holds)."""
    report = Report.load(path)
    where = str(path.parent.relative_to(REPO))
    if report.predictions is None:
        return [f"{where}: committed entries keep their predictions"]
    if not {p.name for p in report.probes} & set(RECOMPUTABLE):
        return [f"{where}: no probe whose numbers can be recomputed"]
    return [f"{where}: {p}" for p in recheck(report, resolve(report.task.ref).spec, full=True)]


def test_every_committed_report_recomputes_from_its_predictions() -> None:
    """All reports, on every core (each check is independent; a fresh interpreter per
    worker, never a fork of this torch-loaded process)."""
    assert REPORTS
    workers = max(1, min(4, len(os.sched_getaffinity(0))))
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=spawn) as pool:
        found = [p for problems in pool.map(_problems, REPORTS, chunksize=4) for p in problems]
    assert found == []


def test_every_committed_entry_is_ranked() -> None:
    boards = load_boards(REPO / "submissions", check="values")  # the test above: full
    assert boards and all(not b.problems for b in boards), [b.problems for b in boards]
    committed = {p.parent.parent.name for p in REPORTS}
    assert {e.metadata.name for b in boards for e in b.entries} == committed


def test_the_board_says_when_its_adversarial_numbers_are_the_fast_presets() -> None:
    from benchmark.boards.entries import FAST_ADVERSARIAL

    boards = {b.task: b for b in load_boards(REPO / "submissions", check="values")}
    attacked = boards["synth-cxr-adversarial-transfer@1.0.0"]
    assert attacked.entries and FAST_ADVERSARIAL in attacked.notes
    assert all(FAST_ADVERSARIAL not in b.notes for b in boards.values() if b is not attacked)
