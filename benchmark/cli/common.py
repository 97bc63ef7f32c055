"""What every command group shares: the consoles, the progress bar, task resolution
and building with progress, argument checks and the error printer."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from benchmark.errors import (
    MedFailError,
    TaskNotFoundError,
)
from benchmark.tasks.cache import task_dir
from benchmark.tasks.manifest import MANIFEST, verify_dir
from benchmark.tasks.registry import (
    ResolvedTask,
    parse_ref,
    resolve,
)

if TYPE_CHECKING:
    from benchmark.tasks.build import BuildOutcome

out = Console()
err = Console(stderr=True)
state = {"debug": False}


@contextmanager
def progress(label: str, total: int | None) -> Iterator[Callable[..., None]]:
    """A progress bar on stderr (``total=None``: count unknown); yields ``step(what)``, which
    advances it, and which called as ``step(what, done, total)`` drives a second bar for the
    work inside one step (the attacks of the adversarial probe)."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        handle = bar.add_task(label, total=total)
        inner: list[TaskID] = []

        def step(what: str, done: int | None = None, of: int | None = None) -> None:
            if done is None:
                bar.update(handle, advance=1, description=f"{label}: {what}")
                return
            if not inner:
                inner.append(bar.add_task(what, total=of))
            bar.update(inner[0], completed=done, total=of, description=f"  {what}")

        yield step


def resolve_ref(ref: str) -> ResolvedTask:
    resolved = resolve(ref)
    if resolved.note:
        err.print(f"[cyan]{resolved.note}")
    return resolved


def build_with_progress(
    resolved: ResolvedTask, force: bool = False, offline: bool = False
) -> BuildOutcome:
    from benchmark.tasks.build import BUILD_STEPS, build_task

    with progress(f"building {resolved.spec.ref}", BUILD_STEPS) as step:
        outcome = build_task(
            resolved.spec, resolved.spec_path, force=force, step=step, offline=offline
        )
    if outcome.note:
        err.print(f"[yellow]{outcome.note}")
    return outcome


def exact_ref(ref: str) -> tuple[str, str]:
    task_id, ver = parse_ref(ref)
    if ver is None:
        raise TaskNotFoundError(f"{ref!r}: publish and pull need an exact version, ID@VERSION")
    return task_id, ver


def publish_folder(ref: str, pin: str | None, to: str, make: str) -> None:
    """Upload the verified cache folder of ``ref`` (a task or the catalogue) to ``to``;
    ``make`` is the command that builds it when it is missing."""
    from benchmark.hub import transport as hub

    task_id, ver = ref.split("@")
    path = task_dir(task_id, ver)
    if not (path / MANIFEST).is_file():
        raise TaskNotFoundError(f"{ref} is not built; run: {make}")
    manifest = verify_dir(path, pin)
    with progress(f"publishing {ref}", len(manifest.files) + len(manifest.extras) + 1) as step:
        where = hub.publish(path, to, step=step)
    out.print(f"published {where}")


def check_writable(folder: Path) -> None:
    """``folder`` is, or could be created as, a writable directory (nothing is created)."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise MedFailError(f"cannot write to {folder}: {probe} is not a writable folder")


def seed_list(seeds: list[int], extra: list[str]) -> list[int]:
    """``--seeds 0 1 2``: click keeps one value per flag; the rest arrive as extra args."""
    bad = [a for a in extra if not a.isdigit()] + [str(s) for s in seeds if s < 0]
    if bad:
        raise MedFailError(f"seeds are non-negative integers; got {' '.join(bad)}")
    return list(dict.fromkeys([*seeds, *map(int, extra)]))


@contextmanager
def model_code_cannot_exit() -> Iterator[None]:
    """A model's own code (a ``python:`` model, or anything a model file makes run) that
    ends the process must not pass for a finished run: it becomes an error, exit status 1."""
    try:
        yield
    except SystemExit as e:
        raise MedFailError(
            f"the model's code tried to end the process (exit status {e.code!r}) while it "
            "was loaded or scored; no report was written"
        ) from e


def print_error(message: str) -> None:
    """Each line as ``error: ...``; user text is never parsed as rich markup."""
    for line in message.splitlines():
        err.print(Text("error: ", style="red") + Text(line), highlight=False, soft_wrap=True)


def emit_records(rows: list[dict[str, object]], as_json: bool) -> None:
    """Records for scripts on stdout: a JSON list, or CSV with a header row."""
    import csv
    import json

    if as_json:
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(rows)
