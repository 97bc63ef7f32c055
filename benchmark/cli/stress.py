"""``medfail stress``: the underspecification stress test of one recipe over many seeds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from rich.text import Text

from benchmark.cli.common import emit_records, machine_format, out, progress, seed_list
from benchmark.errors import MedFailError

if TYPE_CHECKING:
    from benchmark.boards.stress import Stress

#: Seeds when none are given: tables train in seconds, images and series in minutes.
DEFAULT_SEEDS = {"table": 10, "other": 5}


def stress_cmd(
    ctx: typer.Context,
    task: str = typer.Option(..., "--task", help="ID or ID@VERSION"),
    method: str = typer.Option("erm", "--method", help="The recipe (medfail baselines methods)."),
    family: str | None = typer.Option(None, "--family", help="Model family (default: each)."),
    seeds: list[int] = typer.Option(
        [], "--seeds", help="Seeds: --seeds 0 1 2 ... (default: 0-9 on tables, 0-4 otherwise)"
    ),
    out_dir: Path = typer.Option(Path("submissions"), "--out", help="Submissions root."),
    serial: bool = typer.Option(False, "--serial", help="One cell at a time, no Ray."),
    cpus: int | None = typer.Option(None, "--cpus", help="CPUs of the local Ray (default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout."),
    as_csv: bool = typer.Option(False, "--csv", help="Print the results as CSV on stdout."),
) -> None:
    """Train one recipe with many seeds (as sweep cells: finished seeds are kept) and report
    how far the seeds spread on id_test and ood_test, and whether ID ranks them as OOD does."""
    from baselines import sweep
    from benchmark.boards.entries import entry_dir, load_runs
    from benchmark.boards.stress import stress
    from benchmark.cli.sweep import load_tasks

    fmt = machine_format(as_json, as_csv)
    chosen = seed_list(seeds, ctx.args)
    (loaded,) = load_tasks([task])
    if not chosen:
        kind = "table" if loaded.spec.features.array is None else "other"  # type: ignore[attr-defined]
        chosen = list(range(DEFAULT_SEEDS[kind]))
    if len(chosen) < 3:
        raise MedFailError(f"a stress test needs at least 3 seeds; got {len(chosen)}")
    planned = sweep.plan([loaded], [method], [family] if family else None, chosen)  # type: ignore[list-item]
    with progress("stress: training the seeds", len(planned.cells)) as step:
        result = sweep.run(
            planned.cells,
            out_dir,
            serial=serial,
            cpus=cpus,
            update=lambda what, p: step(f"{p.done} done, {p.failed} failed ({what})"),
        )
    if result.failed:
        raise MedFailError(f"{result.failed} cell(s) failed; see {out_dir / sweep.FAILED_DIR}")
    records = []
    for entry in dict.fromkeys(c.entry for c in planned.cells):
        _, reports = load_runs(entry_dir(out_dir, planned.cells[0].task, entry))
        found = stress({s: r for s, r in reports.items() if s in chosen})
        records += _records(entry, found)
        if fmt is None:
            for table in _stress_tables(entry, found):
                out.print(table)
            out.print(Text(f"{entry}: {found.headline}"), soft_wrap=True)
    if fmt is not None:
        emit_records(records, as_json=fmt == "json")


def _records(entry: str, found: Stress) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [
        {
            "entry": entry,
            "metric": s.metric,
            "split": s.split,
            "seeds": len(s.values),
            "mean": s.mean,
            "sd": s.sd,
            "sd_ci_low": s.sd_ci[0],
            "sd_ci_high": s.sd_ci[1],
            "range": s.range,
        }
        for s in found.spreads
    ]
    rows += [
        {
            "entry": entry,
            "metric": m,
            "split": "id_test vs ood_test",
            "spearman_rho": r[0],
            "rho_ci_low": r[1],
            "rho_ci_high": r[2],
        }
        for m, r in found.rho.items()
    ]
    return rows


def _stress_tables(entry: str, found: Stress) -> list[Table]:
    """The spreads (metric x split), then Spearman's rho of ID against OOD per metric."""
    from benchmark.cli.tables import new_table
    from benchmark.common.conventions import short_label

    spread = new_table(
        f"{entry}: {len(found.seeds)} seeds; SD over seeds [95% chi-square CI], range"
    )
    for column in ("metric", "split", "mean", "SD [CI]", "range"):
        spread.add_column(column, no_wrap=True)
    for s in found.spreads:
        spread.add_row(
            short_label(s.metric),
            s.split,
            f"{s.mean:.3f}",
            f"{s.sd:.3f} [{s.sd_ci[0]:.3f}, {s.sd_ci[1]:.3f}]",
            f"{s.range:.3f}",
        )
    rho = new_table(f"{entry}: does ID rank the seeds as OOD does? Spearman's rho [Fisher-z CI]")
    rho.add_column("metric", no_wrap=True)
    rho.add_column("rho id_test ~ ood_test [CI]", no_wrap=True)
    for metric, (r, lo, hi) in found.rho.items():
        rho.add_row(short_label(metric), f"{r:+.2f} [{lo:+.2f}, {hi:+.2f}]")
    return [spread, rho]
