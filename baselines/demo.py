"""The main job, offline: build and verify every built-in task, train the baselines on the
tasks chosen for training, score them and write leaderboard entries.

``medfail demo`` is a thin view of :func:`run_demo`: the command line passes how to show
progress and messages; the steps and their order live here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from baselines.methods import families, methods_for, run
from benchmark.boards.entries import Board, load_boards
from benchmark.errors import DataUnavailableError, MedFailError
from benchmark.scoring.evaluate import check_bootstrap
from benchmark.tasks.build import BuildOutcome
from benchmark.tasks.manifest import verify_dir
from benchmark.tasks.registry import BUILTIN_TASKS, ResolvedTask, discover, read_spec
from benchmark.tasks.spec import version_key
from benchmark.tasks.task import Task

Step = Callable[[str], None]
#: ``progress(label, total)``: a context giving a ``step(what)`` callback.
Progress = Callable[[str, int], AbstractContextManager[Step]]


@dataclass
class DemoResult:
    """What the demo did: tasks built (ref -> "pinned"/"draft"), tasks skipped for data that
    are not on the machine (ref -> how to get them), tasks trained, and their boards."""

    built: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    trained: list[str] = field(default_factory=list)
    boards: list[Board] = field(default_factory=list)


def builtin_tasks() -> Iterator[ResolvedTask]:
    """Every built-in task version, by id then version."""
    for _, versions in sorted(discover().items()):
        for ver in sorted(versions, key=version_key):
            path = versions[ver]
            if path.is_relative_to(BUILTIN_TASKS):
                yield ResolvedTask(read_spec(path), path)


def run_demo(
    out_dir: Path,
    seeds: list[int],
    n_boot: int,
    train: list[str],
    *,
    build: Callable[[ResolvedTask], BuildOutcome],
    progress: Progress,
    said: Callable[[str, str, str], None] = lambda ref, status, detail: None,
) -> DemoResult:
    """Build every built-in task offline (``build`` builds one, with ``offline=True``),
    train every applicable baseline method on ``seeds`` for the ``train`` task ids (default:
    the tabular tasks, which train in minutes on a CPU) and write entries to ``out_dir``.
    ``said(ref, status, detail)`` hears each task's outcome as it happens: ``built`` with
    ``pinned`` or ``draft``, or ``skipped`` with how to obtain its data."""
    check_bootstrap(n_boot, 0.95, None)
    result = DemoResult()
    for resolved in builtin_tasks():
        ref = resolved.spec.ref
        try:
            outcome = build(resolved)
        except DataUnavailableError as e:  # credentialed or downloadable: listed, not fetched
            result.skipped[ref] = str(e)
            said(ref, "skipped", str(e))
            continue
        verify_dir(outcome.path, resolved.spec.manifest_sha256)
        result.built[ref] = "pinned" if resolved.spec.released else "draft"
        said(ref, "built", result.built[ref])
        tabular = resolved.spec.features.array is None
        if (resolved.spec.id in train) if train else tabular:
            result.trained.append(ref)
    unknown = sorted(set(train) - {r.split("@")[0] for r in result.trained})
    if unknown:
        raise MedFailError(f"--train names tasks that are not built in: {', '.join(unknown)}")
    for ref in result.trained:
        task = Task.load(ref)
        total = sum(len(families(m, task)) for m in methods_for(task)) * len(seeds)
        with progress(f"baselines on {ref}", total) as step:
            for method in methods_for(task):
                run(task, method, seeds, out_dir, n_boot=n_boot, overwrite=True, step=step)
    # entries it has just written itself: point values are recomputed, the intervals (the
    # slow part, 38 s of 90) are left to the leaderboard, which redraws them
    boards = load_boards(out_dir, check="values")
    result.boards = [b for b in boards if b.task in result.trained]
    return result
