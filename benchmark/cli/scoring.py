"""``medfail evaluate`` and ``medfail compare``: score a model, compare two."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.text import Text

from benchmark.cli.common import (
    CSV_HELP,
    JSON_HELP,
    build_with_progress,
    check_writable,
    emit_records,
    err,
    machine_format,
    model_code_cannot_exit,
    out,
    progress,
    resolve_ref,
)
from benchmark.errors import MedFailError


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
    preset: str = typer.Option(
        "full",
        "--preset",
        help="Probe preset: full (final numbers) or fast (the adversarial probe's sweep preset).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    as_csv: bool = typer.Option(False, "--csv", help="Print every metric as CSV on stdout."),
) -> None:
    """Score a model on a task: every metric with a bootstrap CI, in one report."""
    from benchmark.cli.tables import claim_table, frame_records, report_tables
    from benchmark.results.gallery import GALLERY_DIR
    from benchmark.results.report import EXAMPLES_FILE, PREDICTIONS_FILE
    from benchmark.scoring.evaluate import check_bootstrap, evaluate
    from benchmark.scoring.probes import check_preset
    from benchmark.tasks.task import Task
    from benchmark.tasks.validity import failure_claim, reference_of

    fmt = machine_format(as_json, as_csv)
    check_bootstrap(n_boot, 0.95, seed)  # before any build or model load
    check_preset(preset)
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
            model,
            loaded,
            probes or None,
            n_boot=n_boot,
            seed=seed,
            step=step,
            detail=step,
            preset=preset,
        )
    path = report.save(out_dir, predictions=save_predictions)
    if fmt == "json":
        sys.stdout.write(report.model_dump_json(indent=1) + "\n")
    elif fmt == "csv":
        emit_records(frame_records(report.to_frame()), as_json=False)
    else:
        for table in report_tables(report):
            out.print(table)
        claim = failure_claim(resolved.spec)
        if claim is not None:
            reference = reference_of(resolved.spec, claim)
            out.print(claim_table(claim, {report.model.name: [report]}, reference))
    for w in report.warnings:
        err.print(Text("warning: ", style="yellow") + Text(w), soft_wrap=True)
    beside = [n for n in (PREDICTIONS_FILE, EXAMPLES_FILE, GALLERY_DIR) if (out_dir / n).exists()]
    saved = f"report: {path}" + (f" (+ {', '.join(beside)} beside it)" if beside else "")
    (err if fmt else out).print(Text(saved), soft_wrap=True)


def compare_cmd(
    a: Path = typer.Argument(..., help="Entry folder, report folder or report.json of A"),
    b: Path = typer.Argument(..., help="Entry folder, report folder or report.json of B"),
    all_rows: bool = typer.Option(False, "--all", help="Also threshold drift and OOD - ID rows."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    as_csv: bool = typer.Option(False, "--csv", help=CSV_HELP),
) -> None:
    """Paired differences A - B on every probe's metrics (performance, calibration,
    fairness, shift), recomputed from the predictions on the same resamples.

    Entries (several training seeds) are paired by seed: means over seeds, and a CI from a
    two-level bootstrap over seeds and patients. Two reports: one pair, with McNemar."""
    from benchmark.boards.entries import load_runs
    from benchmark.cli.tables import comparison_table
    from benchmark.scoring.compare import compare, compare_runs

    fmt = machine_format(as_json, as_csv)
    (name_a, runs_a), (name_b, runs_b) = load_runs(a), load_runs(b)
    if len(runs_a) == len(runs_b) == 1:  # two reports: paired whatever their seeds
        result = compare(next(iter(runs_a.values())), next(iter(runs_b.values())))
    else:
        result = compare_runs(runs_a, runs_b, names=(name_a, name_b))
    if fmt == "json":
        sys.stdout.write(result.model_dump_json(indent=1) + "\n")
    elif fmt == "csv":
        emit_records([d.model_dump() for d in result.differences], as_json=False)
    else:
        out.print(comparison_table(result, all_rows=all_rows))


def stability_cmd(
    paths: list[Path] = typer.Argument(
        ...,
        help="An entry folder (its seeds), or report folders of one model's seeds "
        "(numbered 0, 1, ... as given)",
    ),
    split: str = typer.Option("ood_test", "--split", help="The split to read importance on."),
    top_k: int = typer.Option(5, "--top-k", help="Features each seed picks (Fleiss' kappa)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Do an entry's seeds agree on which features matter? From the explanation probe's SHAP
    importance (mean |SHAP| per feature): Spearman's rank correlation for each pair of
    seeds, and Fleiss' kappa of "in the top k" with each seed as a rater. Reports need
    the explanation probe (medfail evaluate --probe explanation)."""
    from benchmark.boards.entries import load_runs
    from benchmark.cli.tables import stability_table
    from benchmark.scoring.explanation_stability import stability

    runs: dict = {}
    names = []
    for path in paths:
        name, found = load_runs(path)
        names.append(name)
        if len(paths) > 1 and len(found) == 1:  # one report each: numbered as given
            found = {len(runs): next(iter(found.values()))}
        twice = sorted(set(runs) & set(found))
        if twice:
            raise MedFailError(f"{path}: training seed(s) {twice} given twice")
        runs |= found
    result = stability(runs, split=split, k=top_k)
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=1) + "\n")
    else:
        out.print(stability_table(" + ".join(dict.fromkeys(names)), result))
