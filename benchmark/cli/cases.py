"""``medfail cases``: the failure-case catalogue (list, show, stats, export, publish, pull)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from benchmark.cli.common import (
    CSV_HELP,
    JSON_HELP,
    emit_records,
    machine_format,
    out,
    print_markdown,
    progress,
    publish_folder,
)
from benchmark.errors import (
    TaskNotFoundError,
)
from benchmark.tasks.cache import task_dir

cases_app = typer.Typer(
    help="The failure-case catalogue: list, show, stats, export, publish, pull.",
    no_args_is_help=True,
)


@cases_app.command("list", short_help="Cases matching every filter (domain, year, ...).")
def cases_list(
    domain: str = typer.Option(None, "--domain", help="e.g. radiology, ehr"),
    layer: str = typer.Option(None, "--layer", help="taxonomy layer or path prefix, e.g. data"),
    dimension: str = typer.Option(None, "--dimension", help="e.g. shift, subgroup-bias"),
    reproduced: bool = typer.Option(
        None, "--reproduced/--not-reproduced", help="only cases with (without) a task"
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    as_csv: bool = typer.Option(False, "--csv", help=CSV_HELP),
) -> None:
    """Cases matching every filter: id, year, domain, dimensions, reproducing tasks."""
    from benchmark.catalogue.browse import select
    from benchmark.catalogue.cases import CASES_ROOT, load_cases
    from benchmark.cli.tables import cases_table

    fmt = machine_format(as_json, as_csv)
    cases = select(
        load_cases(CASES_ROOT),
        domain=domain,
        layer=layer,
        dimension=dimension,
        reproduced=reproduced,
    )
    if fmt:
        rows = [
            {
                "id": c.id,
                "title": c.title,
                "year": c.year,
                "domain": c.domain,
                "dimensions": c.dimensions,
                "taxonomy": c.taxonomy,
                "reproduced_by": [f"{r.task} ({r.closeness})" for r in c.reproduced_by],
            }
            for c in cases
        ]
        emit_records(rows, fmt == "json")
    else:
        out.print(cases_table(cases))


@cases_app.command("show", short_help="One case in full, with its sources.")
def cases_show(
    case_id: str = typer.Argument(..., help="a case id (medfail cases list)"),
    as_json: bool = typer.Option(False, "--json", help="print the case as JSON"),
) -> None:
    """One case in full: what failed, figures, cause, sources and reproducing tasks."""
    from benchmark.catalogue.browse import case_json, render_case
    from benchmark.catalogue.cases import CASES_ROOT, load_cases

    cases = {c.id: c for c in load_cases(CASES_ROOT)}
    if case_id not in cases:
        near = sorted(i for i in cases if case_id in i or i in case_id)[:5]
        hint = f"; did you mean {', '.join(near)}?" if near else "; see: medfail cases list"
        raise TaskNotFoundError(f"no case {case_id!r}{hint}")
    if as_json:
        out.print_json(case_json(cases[case_id]))
    else:
        print_markdown(render_case(cases[case_id]))


@cases_app.command("stats", short_help="Counts by domain and layer; cases with no task.")
def cases_stats(
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Counts by domain x taxonomy layer, and the cases no task reproduces yet."""
    from benchmark.catalogue.browse import stats
    from benchmark.catalogue.cases import CASES_ROOT, load_cases
    from benchmark.cli.tables import stats_table

    s = stats(load_cases(CASES_ROOT))
    if as_json:
        found = {
            "n": s.n,
            "by_layer_domain": s.by_layer_domain,
            "by_domain": s.by_domain,
            "by_dimension": s.by_dimension,
            "unreproduced": [c.id for c in s.unreproduced],
        }
        sys.stdout.write(json.dumps(found, indent=1) + "\n")
        return
    out.print(stats_table(s))
    out.print("dimensions: " + ", ".join(f"{k} {v}" for k, v in s.by_dimension.items()))
    out.print(
        f"\n[bold]{len(s.unreproduced)} cases with no reproducing task[/] (what to build next):"
    )
    for c in s.unreproduced:
        out.print(f"  {c.id} [dim]({c.domain})[/]", soft_wrap=True)


@cases_app.command("export", short_help="Build the catalogue's Parquet, card and manifest.")
def cases_export(
    out_dir: Path = typer.Option(
        None, "--out", help="folder to build into (default: the cache, for publish)"
    ),
) -> None:
    """Build the catalogue: Parquet table, card and sha256 manifest (byte-identical)."""
    from benchmark.hub.catalogue_dataset import export

    manifest = export(out=out_dir)
    where = out_dir or task_dir(manifest.task, manifest.version)
    out.print(
        f"{manifest.task}@{manifest.version}: content_sha256 {manifest.content_sha256}\n"
        f"built at {where}"
    )


@cases_app.command("publish", short_help="Upload the exported catalogue.")
def cases_publish(
    to: str = typer.Option(..., "--to", help="hf://datasets/ORG/NAME or any fsspec URL/path"),
) -> None:
    """Upload the exported catalogue (run medfail cases export first)."""
    from benchmark.hub.catalogue_dataset import load_catalogue_spec

    spec = load_catalogue_spec()
    publish_folder(spec.ref, spec.manifest_sha256, to, "medfail cases export")


@cases_app.command("pull", short_help="Download and verify a catalogue version.")
def cases_pull(
    version: str = typer.Argument(..., help="catalogue version, e.g. 1.0.0"),
    source: str = typer.Option(..., "--from", help="hf://datasets/ORG/NAME or fsspec URL/path"),
) -> None:
    """Download a catalogue version, verify it, and only then place it in the cache."""
    from benchmark.hub import transport as hub
    from benchmark.hub.catalogue_dataset import (
        CATALOGUE_ID,
        catalogue_spec_from_text,
        load_catalogue_spec,
    )

    local = load_catalogue_spec()
    with progress(f"pulling {CATALOGUE_ID}@{version}", None) as step:
        manifest = hub.pull(
            CATALOGUE_ID,
            version,
            source,
            parse=catalogue_spec_from_text,
            local_spec=local if local.version == version else None,
            step=step,
        )
    where = task_dir(manifest.task, manifest.version)
    out.print(
        f"[green]{manifest.task}@{version}: pulled and verified[/] into {where}", soft_wrap=True
    )
