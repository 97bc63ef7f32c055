"""``medfail tasks``: list, read, build, verify, release, publish and pull task versions."""

from __future__ import annotations

import sys

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from benchmark.cli.common import (
    CSV_HELP,
    JSON_HELP,
    build_with_progress,
    emit_records,
    err,
    exact_ref,
    machine_format,
    out,
    print_markdown,
    progress,
    publish_folder,
    resolve_ref,
)
from benchmark.errors import (
    ManifestMismatchError,
    MedFailError,
    SpecError,
    TaskNotFoundError,
)
from benchmark.tasks.cache import task_dir
from benchmark.tasks.manifest import MANIFEST, verify_dir
from benchmark.tasks.registry import (
    parse_ref,
    read_spec,
    resolve,
    scan,
)
from benchmark.tasks.spec import TaskSpec, spec_from_text, version_key

tasks_app = typer.Typer(help="List, build, verify, publish and pull tasks.", no_args_is_help=True)


@tasks_app.command("list", short_help="Every known task version, released or draft.")
def tasks_list(
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    as_csv: bool = typer.Option(False, "--csv", help=CSV_HELP),
) -> None:
    """Every known task version: modality, released or draft, and the state of its build."""
    fmt = machine_format(as_json, as_csv)
    rows, invalid = _task_rows()
    if fmt:
        emit_records(rows, fmt == "json")
    else:
        table = Table(title="MedFail tasks", box=box.SIMPLE_HEAD, pad_edge=False)
        for col in ("task", "modality", "release", "build"):
            table.add_column(col, no_wrap=True)
        style = {"verified": "green", "FAILED": "red", "STALE": "red"}
        for r in rows:
            build = Text(r["build"], style=style.get(r["build"], ""))
            modality = SHORT_MODALITY.get(r["modality"], r["modality"])
            table.add_row(f"{r['task']}@{r['version']}", modality, r["release"], build)
        out.print(table)
        out.print(
            "build: verified against its manifest and pin; STALE: built from other spec "
            "content; FAILED: does not verify. More (taxonomy): --json, or medfail tasks info ID"
        )
    for problem in invalid:
        err.print(Text("invalid spec: ", style="red") + Text(problem), soft_wrap=True)


def _task_rows() -> tuple[list[dict[str, str]], list[str]]:
    """One record per task version (an invalid spec is a row too), and the problems."""
    found, conflicts = scan()
    rows, invalid = [], []
    for task_id, versions in sorted(found.items()):
        for ver in sorted(versions, key=version_key):
            row = {"task": task_id, "version": ver, "modality": "-", "taxonomy": ""}
            try:
                if f"{task_id}@{ver}" in conflicts:
                    raise SpecError(f"{task_id}@{ver} is {conflicts[f'{task_id}@{ver}']}")
                spec = read_spec(versions[ver])
            except MedFailError as e:  # one broken spec is a row, never the whole listing
                invalid.append(str(e))
                rows.append(row | {"release": "invalid", "build": "-"})
                continue
            rows.append(
                row
                | {
                    "modality": spec.modality,
                    "taxonomy": " ".join(spec.taxonomy),
                    "release": "released" if spec.released else "draft",
                    "build": _build_state(spec),
                }
            )
    return rows, invalid


#: Modalities as the 80-column listing shows them.
SHORT_MODALITY = {"clinical-decision-support": "clinical DS", "remote-monitoring": "remote mon."}


def _build_state(spec: TaskSpec) -> str:
    """``not built``, ``verified``, ``STALE`` (built from other spec content) or ``FAILED``."""
    path = task_dir(spec.id, spec.version)
    if not (path / MANIFEST).is_file():
        return "not built"
    try:
        manifest = verify_dir(path, spec.manifest_sha256)
    except MedFailError:
        return "FAILED"
    return "verified" if manifest.spec_sha256 == spec.sha256() else "STALE"


@tasks_app.command("info", short_help="Show a task's card.")
def tasks_info(
    ref: str = typer.Argument(..., help="ID or ID@VERSION"),
    raw: bool = typer.Option(False, "--raw", help="Print the markdown source."),
) -> None:
    """Show the task card (built first if needed: the card carries the built counts)."""
    from benchmark.tasks.build import CARD

    resolved = resolve_ref(ref)
    path = task_dir(resolved.spec.id, resolved.spec.version)
    if not (path / MANIFEST).is_file():
        err.print(
            f"{resolved.spec.ref} is not built yet; building it to write the card", soft_wrap=True
        )
    outcome = build_with_progress(resolved)
    text = (outcome.path / CARD).read_text(encoding="utf-8")
    if raw:
        sys.stdout.write(text)
    else:
        print_markdown(text.split("---\n", 2)[-1])


@tasks_app.command("build", short_help="Build a task into the cache, deterministically.")
def tasks_build(
    ref: str = typer.Argument(..., help="ID or ID@VERSION"),
    force: bool = typer.Option(False, "--force", help="Rebuild even if the cache verifies."),
) -> None:
    """Build deterministically into the cache, with a manifest and a card."""
    resolved = resolve_ref(ref)
    outcome = build_with_progress(resolved, force=force)
    verb = "already built and verified" if outcome.reused else "built"
    out.print(f"{resolved.spec.ref}: {verb} at {outcome.path}", soft_wrap=True)
    out.print(f"content_sha256 {outcome.manifest.content_sha256}", soft_wrap=True)


@tasks_app.command("verify", short_help="Re-hash a cached build against its manifest.")
def tasks_verify(ref: str = typer.Argument(..., help="ID or ID@VERSION")) -> None:
    """Re-hash the cached files against the manifest (and a released spec's pin)."""
    resolved = resolve_ref(ref)
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
    out.print(f"[green]{spec.ref}: {n} files verified[/] at {path}", soft_wrap=True)


@tasks_app.command("pin", short_help="Release a draft: build it and pin its manifest.")
def tasks_pin(ref: str = typer.Argument(..., help="ID@VERSION of a draft")) -> None:
    """Release a draft: build it, write the expected manifest and pin its digest in the spec."""
    from benchmark.tasks.build import BUILD_STEPS, pin_task

    task_id, ver = exact_ref(ref)
    resolved = resolve(f"{task_id}@{ver}")
    with progress(f"pinning {resolved.spec.ref}", BUILD_STEPS) as step:
        digest = pin_task(resolved.spec_path, step=step)
    out.print(f"{resolved.spec.ref}: released with manifest_sha256 {digest}", soft_wrap=True)


@tasks_app.command("publish", short_help="Upload a built, verified task version.")
def tasks_publish(
    ref: str = typer.Argument(..., help="ID or ID@VERSION"),
    to: str = typer.Option(..., "--to", help="hf://datasets/ORG/NAME or any fsspec URL/path"),
) -> None:
    """Upload a built, verified task version (without @VERSION: the newest released)."""
    spec = resolve_ref(ref).spec
    publish_folder(spec.ref, spec.manifest_sha256, to, f"medfail tasks build {spec.ref}")


@tasks_app.command("pull", short_help="Download and verify a task version.")
def tasks_pull(
    ref: str = typer.Argument(..., help="ID or ID@VERSION"),
    source: str = typer.Option(..., "--from", help="hf://datasets/ORG/NAME or fsspec URL/path"),
) -> None:
    """Download a task version, verify it, and only then place it in the cache (without
    @VERSION: the newest released version this installation knows)."""
    from benchmark.hub import transport as hub

    task_id, ver = parse_ref(ref)
    try:
        local_spec = resolve_ref(ref).spec
    except TaskNotFoundError:
        if ver is None:
            raise TaskNotFoundError(
                f"{task_id!r} is not a task this installation knows, so its newest version is "
                f"unknown here; name one: medfail tasks pull {task_id}@VERSION --from ..."
            ) from None
        local_spec = None
    ver = ver or local_spec.version
    ref = f"{task_id}@{ver}"
    with progress(f"pulling {ref}", None) as step:
        manifest = hub.pull(
            task_id, ver, source, parse=spec_from_text, local_spec=local_spec, step=step
        )
    n = len(manifest.files) + len(manifest.extras)
    out.print(
        f"[green]{ref}: pulled and verified {n} files[/] into {task_dir(task_id, ver)}",
        soft_wrap=True,
    )
