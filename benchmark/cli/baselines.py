"""``medfail baselines run`` and ``medfail demo``: train, score and rank the baselines."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from benchmark.cli.common import (
    CSV_HELP,
    JSON_HELP,
    build_with_progress,
    emit_records,
    err,
    machine_format,
    out,
    progress,
    resolve_ref,
    seed_list,
)
from benchmark.errors import MedFailError
from benchmark.tasks.registry import resolve

if TYPE_CHECKING:
    from benchmark.boards.entries import Board

DEFAULT_RESULTS = Path("medfail-results")

baselines_app = typer.Typer(help="Train and score the baseline methods.", no_args_is_help=True)


@baselines_app.command(
    "run",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
    short_help="Train a baseline on seeds, score it, write entries.",
)
def baselines_run(
    ctx: typer.Context,
    task: str = typer.Option(..., "--task", help="ID or ID@VERSION"),
    method: str = typer.Option(
        ..., "--method", help="A method: erm, group-dro, dann, ... (medfail baselines methods)"
    ),
    seeds: list[int] = typer.Option([0, 1, 2], "--seeds", help="Seeds: --seeds 0 1 2"),
    out_dir: Path = typer.Option(Path("submissions"), "--out", help="Submissions root."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap replicates."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing entry."),
    family: str | None = typer.Option(
        None,
        "--family",
        help="Model family: tabular mlp | gbm (default both under erm); images cnn "
        "(default) | densenet121; series transformer.",
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    as_csv: bool = typer.Option(False, "--csv", help=CSV_HELP),
) -> None:
    """Train a baseline on several seeds, score each, and write leaderboard entries.

    Shows each epoch (loss, val loss and AUROC, time left) and ends with the board of the
    task version, the new entries on it. Runs on CUDA when available, else on the CPU."""
    from baselines.methods import families, run
    from benchmark.scoring.evaluate import check_bootstrap
    from benchmark.tasks.task import Task

    fmt = machine_format(as_json, as_csv)
    check_bootstrap(n_boot, 0.95, None)
    seeds = seed_list(seeds, ctx.args)
    resolved = resolve_ref(task)
    build_with_progress(resolved)
    loaded = Task.load(resolved.spec.ref)
    total = len(families(method, loaded, family)) * len(seeds)
    with progress(f"{method} on {resolved.spec.ref}", total) as step:
        paths = run(
            loaded,
            method,
            seeds,
            out_dir,
            n_boot=n_boot,
            overwrite=overwrite,
            step=step,
            family=family,
            detail=step,
        )
    _finish(out_dir, resolved.spec.ref, [p.name for p in paths], fmt)


@baselines_app.command("methods", short_help="Every method: reference, inputs, needs, flags.")
def baselines_methods(
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    as_csv: bool = typer.Option(False, "--csv", help=CSV_HELP),
) -> None:
    """Every method: what it does (with its reference), the inputs it trains on, what it
    needs from a task, and the flags its entries carry."""
    from baselines.methods import METHODS, flags

    rows = [
        {
            "method": m.name,
            "inputs": ", ".join(m.inputs),
            "needs": ", ".join(m.needs),
            "flags": ", ".join(k for k, on in flags(m.name).items() if on),
            "summary": m.summary,
        }
        for m in METHODS.values()
    ]
    fmt = machine_format(as_json, as_csv)
    if fmt:
        emit_records(rows, fmt == "json")
        return
    for r in rows:
        out.print(Text(r["method"], style="bold") + Text(f"  [{r['inputs']}]"), soft_wrap=True)
        out.print(Text(f"  {r['summary']}"), soft_wrap=True)
        extra = [
            f"needs {r['needs']}" if r["needs"] else "",
            f"flags {r['flags']}" if r["flags"] else "",
        ]
        if any(extra):
            out.print(Text("  " + "; ".join(e for e in extra if e), style="dim"), soft_wrap=True)


def guidelines_cmd(
    root: Path = typer.Option(Path("submissions"), "--dir", help="The entries to read."),
    out_file: Path = typer.Option(
        Path("docs/guidelines.md"), "--out", help="Where the guidelines are written."
    ),
) -> None:
    """Write which methods beat ERM per failure kind, with paired CIs, from the entries
    (every method against ERM of its family, paired by seed; docs/guidelines.md)."""
    from benchmark.boards.guidelines import write_guidelines

    workers = len(os.sched_getaffinity(0))  # boards compared at once
    with progress("comparing with ERM", None) as step:
        path, found = write_guidelines(root, out_file, step=step, workers=workers)
    helped = sum(f.verdict == "helps" for f in found)
    out.print(
        Text(f"{len(found)} comparisons, {helped} where the method beat ERM: {path}"),
        soft_wrap=True,
    )


def print_board(board: Board) -> None:
    """The ranked board, then the task's failure claim per entry (if it claims one)."""
    from benchmark.cli.tables import board_claim_table, board_rich_table, board_separate_table
    from benchmark.tasks.validity import failure_claim, reference_of, shows_no_failure

    out.print(board_rich_table(board))
    separate = board_separate_table(board)
    if separate is not None:
        out.print(separate)
    try:
        spec = resolve(board.task).spec
    except MedFailError:  # a board of a task this installation does not know
        return
    claim = failure_claim(spec) if board.entries else None
    if claim is not None:
        out.print(board_claim_table(board, claim, reference_of(spec, claim)))
    elif shows_no_failure(spec):
        out.print(
            Text(
                f"{board.task}: NO FAILURE FOUND at release, a negative result (its card: "
                f"medfail tasks info {board.task})"
            ),
            soft_wrap=True,
        )


def _finish(root: Path, ref: str, written: list[str], fmt: str | None) -> None:
    """The board of ``ref`` under ``root`` with the new entries on it (point values
    recomputed), then where they are and what to run next."""
    from benchmark.boards.entries import board_table, load_board
    from benchmark.cli.tables import frame_records

    board = load_board(root / ref, check="values")
    if fmt:
        rows = frame_records(board_table(board))
        emit_records(
            [{"task": ref, "new": r["entry"] in written, **r} for r in rows], fmt == "json"
        )
    else:
        print_board(board)
    for problem in board.problems:
        err.print(Text("warning: ", style="yellow") + Text(problem), soft_wrap=True)
    say = err if fmt else out
    for name in written:
        say.print(Text(f"entry written: {root / ref / name}"), soft_wrap=True)
    steps = [f"see it on the leaderboard: medfail leaderboard --dir {root}"]
    erm_of = {
        e.metadata.model: e.metadata.name for e in board.entries if e.metadata.method == "erm"
    }
    for m in (e.metadata for e in board.entries):
        erm = erm_of.get(m.model)
        if m.name in written and m.method != "erm" and erm is not None:
            steps.append(f"against ERM: medfail compare {root / ref / m.name} {root / ref / erm}")
    say.print(Text("next: " + "\n      ".join(steps)), soft_wrap=True)


def demo(
    ctx: typer.Context,
    out_dir: Path = typer.Option(DEFAULT_RESULTS, "--out", help="Where entries are written."),
    seeds: list[int] = typer.Option([0, 1, 2], "--seeds", help="Training seeds: --seeds 0 1 2"),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap replicates."),
    train: list[str] = typer.Option(
        [],
        "--train",
        help="Task ids to train baselines on (default: the tabular tasks; image and "
        "telemetry tasks train for minutes to hours on a CPU).",
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    as_csv: bool = typer.Option(False, "--csv", help=CSV_HELP),
) -> None:
    """The main job, offline: build and verify every built-in task, train the baselines
    on 3 seeds on the embedded clinical tables, score them, write entries and print a
    ranked table per task."""
    from baselines.demo import run_demo
    from benchmark.boards.entries import board_table
    from benchmark.cli.tables import frame_records

    fmt = machine_format(as_json, as_csv)
    say = err if fmt else out

    def said(ref: str, status: str, detail: str) -> None:
        if status == "built":
            say.print(f"[green]{ref}: built and verified ({detail})", soft_wrap=True)
        else:
            say.print(f"[yellow]{ref}: skipped, its data are not here", soft_wrap=True)
            err.print(Text(f"  {detail}", style="dim"), soft_wrap=True)

    result = run_demo(
        out_dir,
        seed_list(seeds, ctx.args),
        n_boot,
        train,
        build=lambda resolved: build_with_progress(resolved, offline=True),
        progress=progress,
        said=said,
    )
    if result.skipped:
        say.print(
            f"{len(result.skipped)} task(s) need data from outside the package (MedMNIST files "
            "or credentialed data sets); the messages on stderr say where to get them."
        )
    if fmt:
        rows = [{"task": b.task, **r} for b in result.boards for r in frame_records(board_table(b))]
        emit_records(rows, fmt == "json")
    for board in result.boards:
        if not fmt:
            print_board(board)
        for problem in board.problems:
            err.print(Text("warning: ", style="yellow") + Text(problem), soft_wrap=True)
    say.print(Text(f"entries written to {out_dir}/"), soft_wrap=True)
    steps = [
        f"open the leaderboard: medfail leaderboard --dir {out_dir}",
        "train on a synthetic task: medfail baselines run --task synth-cxr-shortcut "
        f"--method erm --out {out_dir}",
        "(without --out, entries go to ./submissions, the folder of entries sent to MedFail)",
    ]
    say.print(Text("next: " + "\n      ".join(steps)), soft_wrap=True)
