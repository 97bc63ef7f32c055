"""``medfail baselines run`` and ``medfail demo``: train, score and rank the baselines."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from benchmark.cli.common import (
    build_with_progress,
    err,
    out,
    progress,
    resolve_ref,
    seed_list,
)

DEFAULT_RESULTS = Path("medfail-results")

baselines_app = typer.Typer(help="Train and score the baseline methods.", no_args_is_help=True)


@baselines_app.command(
    "run", context_settings={"allow_extra_args": True, "ignore_unknown_options": False}
)
def baselines_run(
    ctx: typer.Context,
    task: str = typer.Option(..., "--task", help="ID or ID@VERSION"),
    method: str = typer.Option(
        ..., "--method", help="erm | reweight | mixup | pgd-at | wavelet (the last two: images)"
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
) -> None:
    """Train a baseline on several seeds, score each, and write leaderboard entries.

    Runs on CUDA when available, else on the CPU."""
    from baselines.methods import families, run
    from benchmark.scoring.evaluate import check_bootstrap
    from benchmark.tasks.task import Task

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
        )
    for p in paths:
        out.print(f"entry written: {p}")


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
) -> None:
    """The main job, offline: build and verify every built-in task, train the baselines
    on 3 seeds on the embedded clinical tables, score them, write entries and print a
    ranked table per task."""
    from baselines.demo import run_demo
    from benchmark.boards.entries import board_table, format_table, headline_split
    from benchmark.cli.tables import board_rich_table

    def said(ref: str, status: str, detail: str) -> None:
        if status == "built":
            out.print(f"[green]{ref}: built and verified ({detail})")
        else:
            out.print(f"[yellow]{ref}: skipped, its data are not here")
            err.print(Text(f"  {detail}", style="dim"))

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
        out.print(
            f"{len(result.skipped)} task(s) need data from outside the package (MedMNIST files "
            "or credentialed data sets); the messages above say where to get them."
        )
    for board in result.boards:
        title = (
            f"{board.task}: ranked by AUROC on {headline_split(board)}; mean ± SD over "
            f"{len(seeds)} seeds, below it the mean per-seed 95% bootstrap CI"
        )
        out.print(board_rich_table(title, format_table(board_table(board))))
        for problem in board.problems:
            err.print(Text("warning: ", style="yellow") + Text(problem))
    out.print(
        f"Entries written to {out_dir}/. Open the leaderboard: "
        f"[bold]medfail leaderboard --dir {out_dir}[/]. Train on a synthetic task with "
        "[bold]medfail baselines run --task synth-cxr-shortcut --method erm[/]."
    )
