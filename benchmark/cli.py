"""The ``medfail`` command line (typer + rich).

Errors print as one line per problem; ``medfail --debug ...`` shows the traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from benchmark import hub
from benchmark.build import BUILD_STEPS, CARD, BuildOutcome, build_task, pin_task
from benchmark.cache import task_dir
from benchmark.errors import (
    DataUnavailableError,
    ManifestMismatchError,
    MedFailError,
    SpecError,
    TaskNotFoundError,
)
from benchmark.manifest import MANIFEST, verify_dir
from benchmark.registry import (
    BUILTIN_TASKS,
    ResolvedTask,
    discover,
    parse_ref,
    read_spec,
    resolve,
    scan,
)
from benchmark.spec import version_key

app = typer.Typer(
    help="MedFail: benchmark tasks for the ways deep learning fails in healthcare.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
tasks_app = typer.Typer(help="List, build, verify, publish and pull tasks.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")

out = Console()
err = Console(stderr=True)
_state = {"debug": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    _state["debug"] = debug


@contextmanager
def _progress(label: str, total: int | None) -> Iterator[Callable[..., None]]:
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


def _resolve(ref: str) -> ResolvedTask:
    resolved = resolve(ref)
    if resolved.note:
        err.print(f"[cyan]{resolved.note}")
    return resolved


def _build(resolved: ResolvedTask, force: bool = False, offline: bool = False) -> BuildOutcome:
    with _progress(f"building {resolved.spec.ref}", BUILD_STEPS) as step:
        outcome = build_task(
            resolved.spec, resolved.spec_path, force=force, step=step, offline=offline
        )
    if outcome.note:
        err.print(f"[yellow]{outcome.note}")
    return outcome


def _exact_ref(ref: str) -> tuple[str, str]:
    task_id, ver = parse_ref(ref)
    if ver is None:
        raise TaskNotFoundError(f"{ref!r}: publish and pull need an exact version, ID@VERSION")
    return task_id, ver


@tasks_app.command("list")
def tasks_list() -> None:
    """Every known task version: modality, taxonomy, released, built, verified."""
    table = Table(title="MedFail tasks")
    table.add_column("task", no_wrap=True)
    for col in ("version", "modality", "taxonomy", "released", "built", "verified"):
        table.add_column(col)
    found, conflicts = scan()
    invalid = []
    for task_id, versions in sorted(found.items()):
        for ver in sorted(versions, key=version_key):
            try:
                if f"{task_id}@{ver}" in conflicts:
                    raise SpecError(f"{task_id}@{ver} is {conflicts[f'{task_id}@{ver}']}")
                spec = read_spec(versions[ver])
            except MedFailError as e:  # one broken spec is a row, never the whole listing
                invalid.append(str(e))
                table.add_row(task_id, ver, "-", "-", Text("invalid", style="red"), "-", "-")
                continue
            path = task_dir(task_id, ver)
            built = (path / MANIFEST).is_file()
            verified = "-"
            if built:
                try:
                    manifest = verify_dir(path, spec.manifest_sha256)
                    ok = manifest.spec_sha256 == spec.sha256()
                    verified = "[green]yes" if ok else "[red]stale spec"
                except MedFailError:
                    verified = "[red]NO"
            table.add_row(
                task_id,
                ver,
                spec.modality,
                "\n".join(spec.taxonomy),
                "yes" if spec.released else "draft",
                "yes" if built else "no",
                verified,
            )
    out.print(table)
    for problem in invalid:
        err.print(Text("invalid spec: ", style="red") + Text(problem))


@tasks_app.command("info")
def tasks_info(
    ref: str = typer.Argument(..., help="ID or ID@VERSION"),
    raw: bool = typer.Option(False, "--raw", help="Print the markdown source."),
) -> None:
    """Show the task card (built first if needed: the card carries the built counts)."""
    resolved = _resolve(ref)
    path = task_dir(resolved.spec.id, resolved.spec.version)
    if not (path / MANIFEST).is_file():
        err.print(f"{resolved.spec.ref} is not built yet; building it to write the card")
    outcome = _build(resolved)
    text = (outcome.path / CARD).read_text(encoding="utf-8")
    if raw:
        sys.stdout.write(text)
    else:
        out.print(Markdown(text.split("---\n", 2)[-1]))


@tasks_app.command("build")
def tasks_build(
    ref: str = typer.Argument(..., help="ID or ID@VERSION"),
    force: bool = typer.Option(False, "--force", help="Rebuild even if the cache verifies."),
) -> None:
    """Build deterministically into the cache, with a manifest and a card."""
    resolved = _resolve(ref)
    outcome = _build(resolved, force=force)
    verb = "already built and verified" if outcome.reused else "built"
    out.print(f"{resolved.spec.ref}: {verb} at {outcome.path}")
    out.print(f"content_sha256 {outcome.manifest.content_sha256}")


@tasks_app.command("verify")
def tasks_verify(ref: str = typer.Argument(..., help="ID or ID@VERSION")) -> None:
    """Re-hash the cached files against the manifest (and a released spec's pin)."""
    resolved = _resolve(ref)
    spec = resolved.spec
    path = task_dir(spec.id, spec.version)
    if not (path / MANIFEST).is_file():
        raise TaskNotFoundError(f"{spec.ref} is not built; run: medfail tasks build {spec.ref}")
    manifest = verify_dir(path, spec.manifest_sha256)
    n = len(manifest.files) + len(manifest.extras)
    if manifest.spec_sha256 != spec.sha256():
        raise ManifestMismatchError(
            f"{spec.ref}: the {n} files match their manifest, but the build came from other "
            f"spec content; run: medfail tasks build {spec.ref} --force"
        )
    out.print(f"[green]{spec.ref}: {n} files verified[/] at {path}")


@tasks_app.command("pin")
def tasks_pin(ref: str = typer.Argument(..., help="ID@VERSION of a draft")) -> None:
    """Release a draft: build it, write the expected manifest and pin its digest in the spec."""
    task_id, ver = _exact_ref(ref)
    resolved = resolve(f"{task_id}@{ver}")
    with _progress(f"pinning {resolved.spec.ref}", BUILD_STEPS) as step:
        digest = pin_task(resolved.spec_path, step=step)
    out.print(f"{resolved.spec.ref}: released with manifest_sha256 {digest}")


@tasks_app.command("publish")
def tasks_publish(
    ref: str = typer.Argument(..., help="ID@VERSION"),
    to: str = typer.Option(..., "--to", help="hf://datasets/ORG/NAME or any fsspec URL/path"),
) -> None:
    """Upload a built, verified task version."""
    task_id, ver = _exact_ref(ref)
    resolved = resolve(f"{task_id}@{ver}")
    _publish(ref, resolved.spec.manifest_sha256, to, f"medfail tasks build {ref}")


def _publish(ref: str, pin: str | None, to: str, make: str) -> None:
    """Upload the verified cache folder of ``ref`` (a task or the catalogue) to ``to``;
    ``make`` is the command that builds it when it is missing."""
    task_id, ver = ref.split("@")
    path = task_dir(task_id, ver)
    if not (path / MANIFEST).is_file():
        raise TaskNotFoundError(f"{ref} is not built; run: {make}")
    manifest = verify_dir(path, pin)
    with _progress(f"publishing {ref}", len(manifest.files) + len(manifest.extras) + 1) as step:
        where = hub.publish(path, to, step=step)
    out.print(f"published {where}")


@tasks_app.command("pull")
def tasks_pull(
    ref: str = typer.Argument(..., help="ID@VERSION"),
    source: str = typer.Option(..., "--from", help="hf://datasets/ORG/NAME or fsspec URL/path"),
) -> None:
    """Download a task version, verify it, and only then place it in the cache."""
    task_id, ver = _exact_ref(ref)
    try:
        local_spec = resolve(f"{task_id}@{ver}").spec
    except TaskNotFoundError:
        local_spec = None
    with _progress(f"pulling {ref}", None) as step:
        manifest = hub.pull(task_id, ver, source, local_spec=local_spec, step=step)
    n = len(manifest.files) + len(manifest.extras)
    out.print(f"[green]{ref}: pulled and verified {n} files[/] into {task_dir(task_id, ver)}")


cases_app = typer.Typer(
    help="The failure-case catalogue: list, show, stats, export, publish, pull.",
    no_args_is_help=True,
)
app.add_typer(cases_app, name="cases")


@cases_app.command("list")
def cases_list(
    domain: str = typer.Option(None, "--domain", help="e.g. radiology, ehr"),
    layer: str = typer.Option(None, "--layer", help="taxonomy layer or path prefix, e.g. data"),
    dimension: str = typer.Option(None, "--dimension", help="e.g. shift, subgroup-bias"),
    reproduced: bool = typer.Option(
        None, "--reproduced/--not-reproduced", help="only cases with (without) a task"
    ),
) -> None:
    """Cases matching every filter: id, year, domain, dimensions, reproducing tasks."""
    from benchmark.cases import load_cases
    from benchmark.catalogue import CASES_ROOT, select

    cases = select(
        load_cases(CASES_ROOT),
        domain=domain,
        layer=layer,
        dimension=dimension,
        reproduced=reproduced,
    )
    table = Table(title=f"MedFail failure cases ({len(cases)})")
    for col in ("case", "year", "domain", "dimensions", "reproduced by"):
        table.add_column(col, no_wrap=col == "case")
    for c in cases:
        tasks = "\n".join(f"{r.task} ({r.closeness})" for r in c.reproduced_by) or "-"
        table.add_row(c.id, str(c.year), c.domain, ", ".join(c.dimensions), tasks)
    out.print(table)


@cases_app.command("show")
def cases_show(
    case_id: str = typer.Argument(..., help="a case id (medfail cases list)"),
    as_json: bool = typer.Option(False, "--json", help="print the case as JSON"),
) -> None:
    """One case in full: what failed, figures, cause, sources and reproducing tasks."""
    from benchmark.cases import load_cases
    from benchmark.catalogue import CASES_ROOT, case_json, render_case

    cases = {c.id: c for c in load_cases(CASES_ROOT)}
    if case_id not in cases:
        near = sorted(i for i in cases if case_id in i or i in case_id)[:5]
        hint = f"; did you mean {', '.join(near)}?" if near else "; see: medfail cases list"
        raise TaskNotFoundError(f"no case {case_id!r}{hint}")
    if as_json:
        out.print_json(case_json(cases[case_id]))
    else:
        out.print(Markdown(render_case(cases[case_id])))


@cases_app.command("stats")
def cases_stats() -> None:
    """Counts by taxonomy layer x domain, and the cases no task reproduces yet."""
    from benchmark.cases import load_cases
    from benchmark.catalogue import CASES_ROOT, stats

    s = stats(load_cases(CASES_ROOT))
    domains = list(s.by_domain)
    table = Table(title=f"{s.n} cases by taxonomy layer (rows) and domain (columns)")
    table.add_column("layer")
    for d in domains:
        table.add_column(d, justify="right")
    for layer, row in s.by_layer_domain.items():
        table.add_row(layer, *(str(row[d]) for d in domains))
    table.add_row("[bold]cases", *(f"[bold]{s.by_domain[d]}" for d in domains))
    out.print(table)
    out.print("dimensions: " + ", ".join(f"{k} {v}" for k, v in s.by_dimension.items()))
    out.print(
        f"\n[bold]{len(s.unreproduced)} cases with no reproducing task[/] (what to build next):"
    )
    for c in s.unreproduced:
        out.print(f"  {c.id} [dim]({c.domain}; {', '.join(c.taxonomy)})[/]")


@cases_app.command("export")
def cases_export(
    out_dir: Path = typer.Option(
        None, "--out", help="folder to build into (default: the cache, for publish)"
    ),
) -> None:
    """Build the catalogue: Parquet table, card and sha256 manifest (byte-identical)."""
    from benchmark.catalogue import export

    manifest = export(out=out_dir)
    where = out_dir or task_dir(manifest.task, manifest.version)
    out.print(
        f"{manifest.task}@{manifest.version}: content_sha256 {manifest.content_sha256}\n"
        f"built at {where}"
    )


@cases_app.command("publish")
def cases_publish(
    to: str = typer.Option(..., "--to", help="hf://datasets/ORG/NAME or any fsspec URL/path"),
) -> None:
    """Upload the exported catalogue (run medfail cases export first)."""
    from benchmark.catalogue import load_catalogue_spec

    spec = load_catalogue_spec()
    _publish(spec.ref, spec.manifest_sha256, to, "medfail cases export")


@cases_app.command("pull")
def cases_pull(
    version: str = typer.Argument(..., help="catalogue version, e.g. 1.0.0"),
    source: str = typer.Option(..., "--from", help="hf://datasets/ORG/NAME or fsspec URL/path"),
) -> None:
    """Download a catalogue version, verify it, and only then place it in the cache."""
    from benchmark.catalogue import load_catalogue_spec

    local = load_catalogue_spec()
    with _progress(f"pulling medfail-cases@{version}", None) as step:
        manifest = hub.pull(
            hub.CATALOGUE_ID,
            version,
            source,
            local_spec=local if local.version == version else None,
            step=step,
        )
    where = task_dir(manifest.task, manifest.version)
    out.print(f"[green]{manifest.task}@{version}: pulled and verified[/] into {where}")


DEFAULT_RESULTS = Path("medfail-results")
REPO_ROOT = Path(__file__).resolve().parents[1]


@app.command("evaluate")
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
    from benchmark.evaluate import check_bootstrap, evaluate
    from benchmark.render import report_tables
    from benchmark.task import Task

    check_bootstrap(n_boot, 0.95, seed)  # before any build or model load
    resolved = _resolve(task)
    _build(resolved)
    loaded = Task.load(resolved.spec.ref)
    probes = list(dict.fromkeys(probes or []))
    _check_writable(out_dir)  # a bad --out fails before the scoring, and creates nothing
    n_probes = len(probes or resolved.spec.probes)
    with (
        _progress(f"scoring on {resolved.spec.ref}", n_probes + 2) as step,
        _model_code_cannot_exit(),
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


@app.command("compare")
def compare_cmd(
    a: Path = typer.Argument(..., help="Folder (or report.json) of model A, with predictions"),
    b: Path = typer.Argument(..., help="Folder (or report.json) of model B, with predictions"),
) -> None:
    """Paired differences A - B on the same resamples, with CIs and McNemar's test."""
    from benchmark.compare import compare
    from benchmark.render import comparison_table
    from benchmark.report import Report

    out.print(comparison_table(compare(Report.load(a), Report.load(b))))


baselines_app = typer.Typer(help="Train and score the baseline methods.", no_args_is_help=True)
app.add_typer(baselines_app, name="baselines")


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
    from benchmark.evaluate import check_bootstrap
    from benchmark.task import Task

    check_bootstrap(n_boot, 0.95, None)
    seeds = _seed_list(seeds, ctx.args)
    resolved = _resolve(task)
    _build(resolved)
    loaded = Task.load(resolved.spec.ref)
    total = len(families(method, loaded, family)) * len(seeds)
    with _progress(f"{method} on {resolved.spec.ref}", total) as step:
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


def _check_writable(folder: Path) -> None:
    """``folder`` is, or could be created as, a writable directory (nothing is created)."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise MedFailError(f"cannot write to {folder}: {probe} is not a writable folder")


def _seed_list(seeds: list[int], extra: list[str]) -> list[int]:
    """``--seeds 0 1 2``: click keeps one value per flag; the rest arrive as extra args."""
    bad = [a for a in extra if not a.isdigit()] + [str(s) for s in seeds if s < 0]
    if bad:
        raise MedFailError(f"seeds are non-negative integers; got {' '.join(bad)}")
    return list(dict.fromkeys([*seeds, *map(int, extra)]))


@app.command("leaderboard")
def leaderboard_cmd(
    root: Path = typer.Option(REPO_ROOT / "submissions", "--dir", help="Submissions root."),
    port: int = typer.Option(8501, "--port"),
) -> None:
    """Launch the Streamlit leaderboard (read-only) on a submissions folder."""
    import subprocess

    app_file = REPO_ROOT / "leaderboard" / "app.py"
    if not app_file.is_file():
        raise MedFailError(f"the leaderboard app is missing at {app_file} (install with -e)")
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_file),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--",
        "--dir",
        str(root.resolve()),
    ]
    out.print(f"leaderboard on http://localhost:{port} (Ctrl-C to stop): {root}")
    sys.exit(subprocess.call(cmd))


@app.command("demo", context_settings={"allow_extra_args": True})
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
    seeds = _seed_list(seeds, ctx.args)
    from baselines.methods import families, methods_for, run
    from benchmark.evaluate import check_bootstrap
    from benchmark.render import board_rich_table
    from benchmark.submissions import board_table, format_table, headline_split, load_boards
    from benchmark.task import Task

    check_bootstrap(n_boot, 0.95, None)
    refs = []
    # the demo is offline: a task whose data must be downloaded or are credentialed is
    # listed with how to obtain them, never fetched (``medfail tasks build ID`` does that)
    skipped = []
    for versions in (v for _, v in sorted(discover().items())):
        for ver in sorted(versions, key=version_key):
            spec_path = versions[ver]
            if spec_path.is_relative_to(BUILTIN_TASKS):
                resolved = ResolvedTask(read_spec(spec_path), spec_path)
                try:
                    outcome = _build(resolved, offline=True)
                except DataUnavailableError as e:
                    skipped.append(resolved.spec.ref)
                    out.print(f"[yellow]{resolved.spec.ref}: skipped, its data are not here")
                    err.print(Text(f"  {e}", style="dim"))
                    continue
                verify_dir(outcome.path, resolved.spec.manifest_sha256)
                status = "pinned" if resolved.spec.released else "draft"
                out.print(f"[green]{resolved.spec.ref}: built and verified ({status})")
                tabular = resolved.spec.features.array is None  # minutes, not hours, on a CPU
                wanted = resolved.spec.id in train if train else tabular
                if wanted:
                    refs.append(resolved.spec.ref)
    if skipped:
        out.print(
            f"{len(skipped)} task(s) need data from outside the package (MedMNIST files or "
            "credentialed data sets); the messages above say where to get them."
        )
    unknown = sorted(set(train) - {r.split("@")[0] for r in refs})
    if unknown:
        raise MedFailError(f"--train names tasks that are not built in: {', '.join(unknown)}")
    for ref in refs:
        task = Task.load(ref)
        total = sum(len(families(m, task)) for m in methods_for(task)) * len(seeds)
        with _progress(f"baselines on {ref}", total) as step:
            for method in methods_for(task):
                run(task, method, seeds, out_dir, n_boot=n_boot, overwrite=True, step=step)
    for board in load_boards(out_dir):
        if board.task not in refs:
            continue
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


def main() -> None:
    """Console entry point: MedFail errors become one line each, exit status 1; Ctrl-C is
    one line and exit status 130."""
    try:
        app()
    except (MedFailError, OSError) as e:
        if _state["debug"]:
            raise
        _print_error(str(e) or type(e).__name__)
        sys.exit(1)
    except KeyboardInterrupt:
        if _state["debug"]:
            raise
        _print_error("interrupted")
        sys.exit(130)


@contextmanager
def _model_code_cannot_exit() -> Iterator[None]:
    """A model's own code (a ``python:`` model, or anything a model file makes run) that
    ends the process must not pass for a finished run: it becomes an error, exit status 1."""
    try:
        yield
    except SystemExit as e:
        raise MedFailError(
            f"the model's code tried to end the process (exit status {e.code!r}) while it "
            "was loaded or scored; no report was written"
        ) from e


def _print_error(message: str) -> None:
    """Each line as ``error: ...``; user text is never parsed as rich markup."""
    for line in message.splitlines():
        err.print(Text("error: ", style="red") + Text(line), highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
