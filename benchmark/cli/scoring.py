"""``medfail evaluate`` and ``medfail compare``: score a model, compare two."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from benchmark.cli.common import (
    build_with_progress,
    check_writable,
    err,
    model_code_cannot_exit,
    out,
    progress,
    resolve_ref,
)


def evaluate_cmd(
    task: str = typer.Option(..., "--task", help="ID or ID@VERSION"),
    model: str = typer.Option(..., "--model", help="[KIND:]PATH[#ARCH]; see README 'Models'"),
    out_dir: Path = typer.Option(..., "--out", help="Folder for report.json"),
    save_predictions: bool = typer.Option(
        False, "--save-predictions", help="Also write predictions.parquet (per sample)."
    ),
    probes: list[str] = typer.Option(
        None, "--probe", help="Probe to run (repeat); default: the task's."
    ),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap replicates."),
    seed: int = typer.Option(None, "--seed", help="Bootstrap seed (default: the task seed)."),
) -> None:
    """Score a model on a task: every metric with a bootstrap CI, in one report."""
    from benchmark.cli.tables import report_tables
    from benchmark.scoring.evaluate import check_bootstrap, evaluate
    from benchmark.tasks.task import Task

    check_bootstrap(n_boot, 0.95, seed)  # before any build or model load
    resolved = resolve_ref(task)
    build_with_progress(resolved)
    loaded = Task.load(resolved.spec.ref)
    probes = list(dict.fromkeys(probes or []))
    check_writable(out_dir)  # a bad --out fails before the scoring, and creates nothing
    n_probes = len(probes or resolved.spec.probes)
    with (
        progress(f"scoring on {resolved.spec.ref}", n_probes + 2) as step,
        model_code_cannot_exit(),
    ):
        report = evaluate(
            model, loaded, probes or None, n_boot=n_boot, seed=seed, step=step, detail=step
        )
    path = report.save(out_dir, predictions=save_predictions)
    for table in report_tables(report):
        out.print(table)
    for w in report.warnings:
        err.print(Text("warning: ", style="yellow") + Text(w))
    out.print(
        f"report: {path}" + (f" (+ {out_dir / 'predictions.parquet'})" if save_predictions else "")
    )


def compare_cmd(
    a: Path = typer.Argument(..., help="Folder (or report.json) of model A, with predictions"),
    b: Path = typer.Argument(..., help="Folder (or report.json) of model B, with predictions"),
) -> None:
    """Paired differences A - B on the same resamples, with CIs and McNemar's test."""
    from benchmark.cli.tables import comparison_table
    from benchmark.results.report import Report
    from benchmark.scoring.compare import compare

    out.print(comparison_table(compare(Report.load(a), Report.load(b))))
