"""What every command group shares: the consoles, the progress bar, task resolution
and building with progress, argument checks and the error printer."""

from __future__ import annotations

import math
import os
import re
import sys
import time
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


#: Seconds between two plain progress lines about the work inside one step.
PLAIN_EVERY_S = 5.0


@contextmanager
def progress(label: str, total: int | None) -> Iterator[Callable[..., None]]:
    """Progress on stderr (``total=None``: count unknown); yields ``step(what)``, which
    advances it, and which called as ``step(what, done, total)`` reports the work inside
    one step (training epochs, the attacks of the adversarial probe).

    On a terminal: live bars. Otherwise (a log file, CI): plain lines, one per step, and
    about the work inside it its first, then at most one every :data:`PLAIN_EVERY_S`
    seconds, and its last (e.g. the epoch where early stopping ended training)."""
    if not err.is_terminal:
        yield _plain_steps(label, total)
        return
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


def _plain_steps(label: str, total: int | None) -> Callable[..., None]:
    start = time.monotonic()
    state: dict[str, float] = {"done": 0, "said": -math.inf, "inner": 0}
    held: list[tuple[str, int | None]] = []  # the latest inner line not printed, its total

    def say(line: str, now: float) -> None:
        state["said"] = now
        held.clear()
        err.print(Text(line), highlight=False, soft_wrap=True)

    def step(what: str, done: int | None = None, of: int | None = None) -> None:
        now = time.monotonic()
        if held and (done is None or of != held[0][1]):
            # the last line of the work that just ended (an early-stopped run's final
            # epoch), before the next step or the next kind of work (scoring)
            say(held[0][0], now)
        if done is None:
            state["done"] += 1
            state["inner"] = 0
            count = f"{state['done']:.0f}/{total}" if total else f"{state['done']:.0f}"
            say(f"{label}: {what} [{count}, {now - start:.0f}s]", now)
        elif state["inner"] == 0 or now - state["said"] >= PLAIN_EVERY_S or done == of:
            say(f"  {what}", now)
            state["inner"] += 1
        else:
            held[:] = [(f"  {what}", of)]

    return step


def resolve_ref(ref: str) -> ResolvedTask:
    resolved = resolve(ref)
    if resolved.note:
        err.print(f"[cyan]{resolved.note}", soft_wrap=True)
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
        err.print(f"[yellow]{outcome.note}", soft_wrap=True)
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
    out.print(f"published {where}", soft_wrap=True)


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


def markdown_blocks(text: str) -> Iterator[tuple[bool, str]]:
    """Split markdown into blocks: ``(verbatim, text)``. Fenced code, pipe tables and
    paragraphs with a link or a long inline command are verbatim: a terminal cannot fit
    them in 80 columns without cutting a cell or breaking a command or URL in two, so they
    print as written."""
    block: list[str] = []
    fence = False
    for line in [*text.splitlines(), ""]:
        if line.startswith("```"):
            fence = not fence
        if not fence and not line.strip():
            if block:
                body = "\n".join(block)
                first = block[0].lstrip()
                command = re.search(r"`[^`]{30,}`", body)  # a long command or path
                yield first.startswith(("```", "|")) or "://" in body or bool(command), body
            block = []
            continue
        block.append(line)


def print_markdown(text: str) -> None:
    """A card or case page for people: prose rendered, commands, tables and links verbatim
    (soft-wrapped by the terminal, so copying them gives them whole)."""
    from rich.markdown import Markdown

    for verbatim, block in markdown_blocks(text):
        if verbatim:
            out.print(Text(block), soft_wrap=True, highlight=False)
            out.print()
        else:
            out.print(Markdown(block))


def print_error(message: str) -> None:
    """Each line as ``error: ...``; user text is never parsed as rich markup."""
    for line in message.splitlines():
        err.print(Text("error: ", style="red") + Text(line), highlight=False, soft_wrap=True)


#: ``--json`` and ``--csv``, the same two flags on every listing and result command.
JSON_HELP = "Print JSON on stdout (for scripts); messages go to stderr."
CSV_HELP = "Print CSV with a header row on stdout (for scripts); messages go to stderr."


def machine_format(as_json: bool, as_csv: bool) -> str | None:
    """``"json"``, ``"csv"`` or None (tables for people); both flags at once is an error."""
    if as_json and as_csv:
        raise MedFailError("choose one of --json and --csv")
    return "json" if as_json else "csv" if as_csv else None


def emit_records(rows: list[dict[str, object]], as_json: bool) -> None:
    """Records for scripts on stdout: a JSON list, or CSV with a header row (lists in a
    CSV cell are joined by ``; ``, mappings are JSON)."""
    import csv
    import json

    if as_json:
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return

    def flat(v: object) -> object:
        if isinstance(v, list | tuple):
            return "; ".join(map(str, v))
        return json.dumps(v) if isinstance(v, dict) else v

    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows({k: flat(v) for k, v in row.items()} for row in rows)
