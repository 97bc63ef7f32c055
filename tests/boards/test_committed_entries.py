"""Every number of every committed leaderboard entry, recomputed from its stored predictions
(RobustBench's habit): a stored result can never drift from its data. Point values of
every report in each run; intervals of a spread sample (of all with MEDFAIL_SLOW=1)."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from benchmark.boards.entries import Board, load_boards
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


#: Reports whose intervals are recomputed in a default run: every k-th of the sorted list,
#: so every board is sampled; MEDFAIL_SLOW=1 rechecks them all (run it before committing
#: new entries). Every report's point values are recomputed by ``boards`` below, as the
#: leaderboard recomputes them on every load.
FULL_RECHECKS = 64


def _rechecked() -> list[Path]:
    if os.environ.get("MEDFAIL_SLOW"):
        return REPORTS
    step = max(1, -(-len(REPORTS) // FULL_RECHECKS))
    return REPORTS[::step]


def test_committed_reports_recompute_from_their_predictions_with_their_intervals() -> None:
    """On every core (each check is independent; a fresh interpreter per worker, never a
    fork of this torch-loaded process)."""
    chosen = _rechecked()
    assert chosen and len({p.parents[2] for p in chosen}) > 1
    workers = max(1, min(4, len(os.sched_getaffinity(0))))
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=spawn) as pool:
        found = [p for problems in pool.map(_problems, chosen, chunksize=4) for p in problems]
    assert found == []


@pytest.fixture(scope="module")
def boards() -> list[Board]:
    """The committed boards as the leaderboard loads them: every stored point value of
    every report recomputed from its predictions (a mismatch is a board problem)."""
    return load_boards(REPO / "submissions", check="values")


def test_every_committed_entry_is_ranked(boards: list[Board]) -> None:
    assert boards and all(not b.problems for b in boards), [b.problems for b in boards]
    committed = {p.parent.parent.name for p in REPORTS}
    assert {e.metadata.name for b in boards for e in b.entries} == committed


def test_the_board_says_when_its_adversarial_numbers_are_the_fast_presets(
    boards: list[Board],
) -> None:
    from benchmark.boards.entries import FAST_ADVERSARIAL

    by_task = {b.task: b for b in boards}
    attacked = by_task["synth-cxr-adversarial-transfer@1.0.0"]
    assert attacked.entries and FAST_ADVERSARIAL in attacked.notes
    assert all(FAST_ADVERSARIAL not in b.notes for b in boards if b is not attacked)
