"""``medfail sweep``: every applicable (task, method, family, seed) cell, on Ray."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from benchmark.cli.common import build_with_progress, err, out, progress, resolve_ref, seed_list
from benchmark.errors import DataUnavailableError, MedFailError

LIST_HELP = "Comma-separated, or the flag repeated"


def _names(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v.strip() for raw in values for v in raw.split(",") if v.strip()))


def load_tasks(names: list[str]) -> list[object]:
    """The tasks to sweep, built (offline) and loaded: the named ones, else the newest
    released version of every built-in task whose data are on this machine."""
    from baselines.demo import builtin_tasks, training_refs
    from benchmark.tasks.task import Task

    if names:
        refs = []
        for name in names:
            resolved = resolve_ref(name)
            build_with_progress(resolved, offline=True)
            refs.append(resolved.spec.ref)
        return [Task.load(ref) for ref in refs]
    built = []
    for resolved in builtin_tasks():
        if not resolved.spec.released:
            continue
        try:
            build_with_progress(resolved, offline=True)
        except DataUnavailableError:
            err.print(Text(f"{resolved.spec.ref}: skipped, its data are not here", style="yellow"))
            continue
        built.append(resolved.spec)
    newest = training_refs(built, sorted({s.id for s in built}))
    return [Task.load(ref) for ref in newest]


def sweep_cmd(
    ctx: typer.Context,
    tasks: list[str] = typer.Option(
        [], "--tasks", help=f"Task ids. {LIST_HELP}. Default: every task whose data are here."
    ),
    methods: list[str] = typer.Option(
        [], "--methods", help=f"Methods. {LIST_HELP}. Default: all (medfail baselines methods)."
    ),
    family_names: list[str] = typer.Option(
        [], "--families", help=f"Model families. {LIST_HELP}. Default: each method's own."
    ),
    seeds: list[int] = typer.Option([0, 1, 2], "--seeds", help="Seeds: --seeds 0 1 2"),
    out_dir: Path = typer.Option(Path("submissions"), "--out", help="Submissions root."),
    address: str | None = typer.Option(
        None, "--address", help="A Ray cluster's address (default: a local Ray on this machine)."
    ),
    cpus: int | None = typer.Option(None, "--cpus", help="CPUs of the local Ray (default: all)."),
    threads: int = typer.Option(1, "--threads", help="Torch threads per cell (recorded)."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap replicates."),
    preset: str = typer.Option(
        "fast",
        "--preset",
        help="Probe preset: fast (the adversarial probe's sweep preset) or full (final numbers).",
    ),
    serial: bool = typer.Option(False, "--serial", help="One cell at a time, no Ray."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the cells and stop."),
    verify: int = typer.Option(
        0, "--verify", help="Instead: retrain K finished cells, compare model sha256."
    ),
) -> None:
    """Train, score and file every applicable cell (task x method x family x seed).

    Finished cells are skipped, so an interrupted sweep resumes; a failing cell is recorded
    under OUT/.sweep/failed/ and the others go on. Entries land in OUT as cells finish."""
    from baselines import sweep
    from benchmark.scoring.evaluate import check_bootstrap
    from benchmark.scoring.probes import check_preset

    if verify:
        _verify(out_dir, verify)
        return
    check_bootstrap(n_boot, 0.95, None)
    check_preset(preset)
    if threads < 1:
        raise MedFailError(f"--threads must be at least 1, got {threads}")
    seeds = seed_list(seeds, ctx.args)
    chosen = load_tasks(_names(tasks))
    planned = sweep.plan(
        chosen,  # type: ignore[arg-type]
        _names(methods) or None,
        _names(family_names) or None,
        seeds,
        threads=threads,
        n_boot=n_boot,
        preset=preset,
    )
    kept = [c for c in planned.cells if sweep.foreign(out_dir, c)]
    todo = [c for c in planned.cells if not sweep.is_done(out_dir, c) and c not in kept]
    finished = len(planned.cells) - len(todo) - len(kept)
    out.print(
        f"{len(planned.cells)} cells on {len(chosen)} task(s); {finished} finished before, "
        f"{len(todo)} to run"
    )
    for entry in sorted({f"{c.task}/{c.entry}" for c in kept}):
        err.print(
            Text(f"kept: {entry} was not written by a sweep; its cells are skipped"),
            soft_wrap=True,
        )
    for reason in planned.skipped:
        err.print(Text(f"not applicable: {reason}", style="dim"), soft_wrap=True)
    if dry_run:
        for cell in todo:
            out.print(Text(str(cell)), soft_wrap=True)
        return
    with progress("sweep", len(todo)) as step:

        def update(what: str, p: sweep.Progress) -> None:
            eta = p.eta_s()
            left = f", ~{eta / 60:.0f} min left" if eta is not None else ""
            step(f"{p.done} done, {p.running} running, {p.failed} failed{left} ({what})")

        result = sweep.run(
            planned.cells, out_dir, serial=serial, address=address, cpus=cpus, update=update
        )
    out.print(f"sweep finished: {result.done} cells done, {result.failed} failed")
    if result.failed:
        err.print(
            Text(f"failed cells are recorded in {out_dir / sweep.FAILED_DIR}; run again to retry"),
            soft_wrap=True,
        )
        raise typer.Exit(1)


def _verify(root: Path, k: int) -> None:
    from baselines import sweep

    results = sweep.verify(root, k)
    if not results:
        raise MedFailError(f"no finished sweep cells under {root}")
    for what, verdict in results:
        out.print(
            Text(f"{verdict.upper() if verdict != 'same' else verdict:9}  {what}"), soft_wrap=True
        )
    same = sum(v == "same" for _, v in results)
    stale = sum(v == "stale" for _, v in results)
    out.print(
        f"{same} of {len(results)} retrained model files match their sha256"
        + (f"; {stale} stale (planned differently today, not retrained)" if stale else "")
    )
    if any(v == "different" for _, v in results):
        raise typer.Exit(1)
