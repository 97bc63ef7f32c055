"""The main job, offline: build and verify every built-in task, train the baselines on the
tasks chosen for training, score them and write leaderboard entries.

Every version of every task is built and verified, but only one version of a task is
trained: the newest released one (:func:`training_refs`), so releasing a new version does
not add its predecessors' training time to the demo.

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
from benchmark.tasks.spec import TaskSpec, version_key
from benchmark.tasks.task import Task

#: ``step(what)`` advances the progress; ``step(what, done, total)`` reports work inside
#: the current step (training epochs).
Step = Callable[..., None]
#: ``progress(label, total)``: a context giving a ``step`` callback.
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


def training_refs(built: list[TaskSpec], train: list[str]) -> list[str]:
    """The task versions to train, out of the task versions ``built``.

    ``train`` empty: the newest released version of each tabular task. Otherwise each entry
    is ``ID`` (the newest released version of that task, else its newest draft, as
    everywhere else) or ``ID@VERSION`` (exactly that version). Names that match no built
    task are an error.
    """
    by_id: dict[str, list[TaskSpec]] = {}
    for spec in built:
        by_id.setdefault(spec.id, []).append(spec)

    def newest(specs: list[TaskSpec], *, released_only: bool) -> TaskSpec | None:
        pool = [s for s in specs if s.released] or ([] if released_only else specs)
        return max(pool, key=lambda s: version_key(s.version), default=None)

    if not train:
        chosen = [newest(specs, released_only=True) for specs in by_id.values()]
        return [s.ref for s in chosen if s is not None and s.features.array is None]
    refs, unknown = [], []
    for name in train:
        task_id, _, ver = name.partition("@")
        specs = by_id.get(task_id, [])
        pick = (
            next((s for s in specs if s.version == ver), None)
            if ver
            else newest(specs, released_only=False)
        )
        if pick is None:
            unknown.append(name)
        elif pick.ref not in refs:
            refs.append(pick.ref)
    if unknown:
        raise MedFailError(f"--train names tasks that are not built in: {', '.join(unknown)}")
    return refs


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
    """Build every built-in task version offline (``build`` builds one, with
    ``offline=True``), train every applicable baseline method on ``seeds`` for the ``train``
    tasks (``ID`` or ``ID@VERSION``; default: the newest released version of each tabular
    task, which trains in minutes on a CPU; see :func:`training_refs`) and write entries to
    ``out_dir``.
    ``said(ref, status, detail)`` hears each task's outcome as it happens: ``built`` with
    ``pinned`` or ``draft``, or ``skipped`` with how to obtain its data."""
    check_bootstrap(n_boot, 0.95, None)
    result = DemoResult()
    built: list[TaskSpec] = []
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
        built.append(resolved.spec)
    result.trained = training_refs(built, train)
    for ref in result.trained:
        task = Task.load(ref)
        total = sum(len(families(m, task)) for m in methods_for(task)) * len(seeds)
        with progress(f"baselines on {ref}", total) as step:
            for method in methods_for(task):
                run(
                    task,
                    method,
                    seeds,
                    out_dir,
                    n_boot=n_boot,
                    overwrite=True,
                    step=step,
                    detail=step,  # the progress step also takes (what, done, total)
                )
    # entries it has just written itself: point values are recomputed, the intervals (the
    # slow part, 38 s of 90) are left to the leaderboard, which redraws them
    boards = load_boards(out_dir, check="values")
    result.boards = [b for b in boards if b.task in result.trained]
    return result
