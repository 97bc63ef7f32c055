"""Deterministic, atomic, verified task builds.

``build_task`` runs the recipe, writes one or more Parquet shards per split, the card,
a copy of the spec and ``manifest.json`` into a temporary folder beside the cache entry,
and renames it into place only when everything is written (and, for a released spec,
only when the data reproduce the pinned digest). Building twice gives byte-identical
files: no timestamps, sorted rows, stripped pandas metadata, fixed Parquet options.

``pin_task`` releases a draft: it builds it, writes the expected manifest beside the spec
(``tasks/<id>/<version>.manifest.json``) so a later mismatch can name the changed file,
and writes ``manifest_sha256`` into the spec. A spec with a ``validity`` claim is released
only with a passing validity record for the same data (:mod:`benchmark.tasks.validity`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version as pkg_version
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benchmark.common.files import atomic_write_text, replace_dir, staging
from benchmark.errors import ManifestMismatchError, SpecError
from benchmark.tasks.cache import task_dir
from benchmark.tasks.card import render_card
from benchmark.tasks.manifest import MANIFEST, FileEntry, Manifest, file_entry, verify_dir
from benchmark.tasks.recipe import RecipeResult, run_recipe
from benchmark.tasks.sources import SourceContext
from benchmark.tasks.spec import GROUP_PREFIX, TaskSpec, load_spec
from benchmark.tasks.validity import check_release, read_validity

#: Progress: ``step(what)`` starts the next stage; ``step(what, done, total)`` reports work
#: inside the current one (what :func:`benchmark.cli.common.progress` yields).
Step = Callable[..., None]
CARD = "README.md"
SPEC_COPY = "spec.yaml"
BUILD_STEPS = 5  # the number of ``step`` calls a fresh build makes


@dataclass(frozen=True)
class BuildOutcome:
    path: Path
    manifest: Manifest
    reused: bool
    note: str = ""


def medfail_version() -> str:
    return pkg_version("medfail")


def expected_manifest_path(spec_path: Path) -> Path:
    """``tasks/<id>/<version>.manifest.json``: the released build's manifest."""
    return spec_path.with_name(f"{spec_path.stem}.manifest.json")


def arrow_schema(spec: TaskSpec, frame: pd.DataFrame) -> pa.Schema:
    fields = [pa.field("sample_id", pa.string()), pa.field("patient_id", pa.string())]
    if "site" in frame.columns:
        fields.append(pa.field("site", pa.string()))
    fields += [pa.field("domain", pa.string()), pa.field("label", pa.int64())]
    fields += [pa.field(GROUP_PREFIX + a, pa.string()) for a in spec.attributes]
    fields += [pa.field(c, pa.float64()) for c in spec.features.numeric]
    fields += [pa.field(c, pa.string()) for c in spec.features.categorical]
    fields += [pa.field(c, pa.string()) for c in spec.annotations]
    return pa.schema(fields)


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write with fixed options so the same table always gives the same bytes."""
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=3,
        use_dictionary=True,
        write_statistics=True,
        data_page_version="1.0",
    )


def write_npy(array: np.ndarray, path: Path) -> None:
    """``.npy`` format 1.0 (C order, no pickles): the same array always gives the same bytes,
    and ``np.load(path, mmap_mode="r")`` reads it without copying."""
    with path.open("wb") as f:
        np.lib.format.write_array(
            f, np.ascontiguousarray(array), version=(1, 0), allow_pickle=False
        )


def write_splits(spec: TaskSpec, result: RecipeResult, out: Path) -> dict[str, FileEntry]:
    """Write each split as ``data/<split>-<i>-of-<n>.parquet``, plus, for array tasks,
    ``data/<split>-<i>-of-<n>.<array>.npy`` holding the same rows in the same order;
    return the manifest entries."""
    (out / "data").mkdir(parents=True, exist_ok=True)
    files: dict[str, FileEntry] = {}
    for split, frame in result.splits.items():
        schema = arrow_schema(spec, frame)
        table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
        table = table.replace_schema_metadata(None)
        n_shards = max(1, math.ceil(table.num_rows / spec.shard_rows))
        for i in range(n_shards):
            name = f"data/{split}-{i:05d}-of-{n_shards:05d}.parquet"
            shard = table.slice(i * spec.shard_rows, spec.shard_rows)
            write_parquet(shard, out / name)
            files[name] = file_entry(out / name, rows=shard.num_rows, split=split)
            for key, array in result.arrays.get(split, {}).items():
                part = array[i * spec.shard_rows : (i + 1) * spec.shard_rows]
                npy = name.removesuffix(".parquet") + f".{key}.npy"
                write_npy(part, out / npy)
                files[npy] = file_entry(out / npy, rows=len(part), split=split)
    return files


def _pin_mismatch(
    spec: TaskSpec, spec_path: Path, files: dict[str, FileEntry], spec_sha: str, input_sha: str
) -> ManifestMismatchError:
    """Explain, file by file, how this build differs from the released one."""
    lock = expected_manifest_path(spec_path)
    problems: dict[str, str] = {}
    hints: list[str] = []
    if not lock.is_file():
        problems[MANIFEST] = f"no {lock.name} beside the spec to compare files against"
    else:
        expected = Manifest.read(lock)
        if expected.content_sha256 != spec.manifest_sha256:
            problems[lock.name] = "does not match the spec's manifest_sha256"
        if expected.spec_sha256 != spec_sha:
            problems[spec_path.name] = (
                "the spec's content changed after release; released versions are immutable, "
                "so make a new version"
            )
        for name in sorted(set(expected.files) | set(files)):
            want, got = expected.files.get(name), files.get(name)
            if want is None:
                problems[name] = "produced by this build but not in the released one"
            elif got is None:
                problems[name] = "in the released build but not produced by this one"
            elif want != got:
                problems[name] = (
                    f"changed: sha256 {got.sha256} ({got.rows} rows), "
                    f"released {want.sha256} ({want.rows} rows)"
                )
        if expected.input_sha256 not in (None, input_sha):
            hints.append("the source data differ from the release")
        if expected.pyarrow_version != pa.__version__:
            hints.append(
                f"pyarrow {pa.__version__} differs from the release's {expected.pyarrow_version}"
                " (install with the project's constraints file)"
            )
    detail = "; ".join(f"{k}: {v}" for k, v in problems.items())
    hint = f" Likely cause: {', '.join(hints)}." if hints else ""
    return ManifestMismatchError(
        f"{spec.ref}: the build does not reproduce the released version "
        f"(manifest_sha256 {spec.manifest_sha256}): {detail}.{hint}",
        problems,
    )


def build_task(
    spec: TaskSpec,
    spec_path: Path,
    *,
    root: Path | None = None,
    force: bool = False,
    step: Step | None = None,
    offline: bool = False,
) -> BuildOutcome:
    """Build ``spec`` into the cache (or reuse a cache entry that verifies).

    A released version's cached build is reused if it verifies against the pin and came
    from this spec's content. A draft is always rebuilt: nothing pins its source data, so
    a cache could hide an edited input. ``step`` is told each stage's name. ``offline``:
    sources must not download (a missing file is a :class:`DataUnavailableError`).
    """
    step = step or (lambda *_: None)
    final = task_dir(spec.id, spec.version, root)
    spec_sha = spec.sha256()
    note = ""
    with staging(final) as tmp:
        if final.exists() and not force and spec.released:
            try:
                manifest = verify_dir(final, spec.manifest_sha256)
            except ManifestMismatchError as e:
                note = f"the cached build failed verification and was rebuilt ({e})"
            else:
                if manifest.spec_sha256 == spec_sha:
                    return BuildOutcome(final, manifest, reused=True)
                note = "the cached build came from different spec content and was rebuilt"

        step("loading the source and deriving splits")
        rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(0,)))
        ctx = SourceContext(spec_dir=spec_path.parent, rng=rng, offline=offline, detail=step)
        result = run_recipe(spec, ctx)
        step("writing Parquet shards" + (" and arrays" if result.arrays else ""))
        files = write_splits(spec, result, tmp)
        step("hashing and checking the pin")
        digest = Manifest.digest(spec.id, spec.version, spec_sha, files)
        if spec.manifest_sha256 is not None and digest != spec.manifest_sha256:
            raise _pin_mismatch(spec, spec_path, files, spec_sha, result.input_sha256)
        step("writing the card")
        (tmp / SPEC_COPY).write_bytes(spec_path.read_bytes())
        validity = read_validity(spec_path)
        card = render_card(spec, result, files, digest, validity)
        (tmp / CARD).write_text(card, encoding="utf-8")
        extras = {name: file_entry(tmp / name) for name in (CARD, SPEC_COPY)}
        manifest = Manifest(
            task=spec.id,
            version=spec.version,
            spec_sha256=spec_sha,
            content_sha256=digest,
            files=files,
            extras=extras,
            input_sha256=result.input_sha256,
            medfail_version=medfail_version(),
            pyarrow_version=pa.__version__,
        )
        step("moving the build into the cache")
        (tmp / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        replace_dir(tmp, final)
    return BuildOutcome(final, manifest, reused=False, note=note)


_PIN_LINE = re.compile(r"^manifest_sha256:.*$", re.MULTILINE)


def pin_task(spec_path: Path, *, root: Path | None = None, step: Step | None = None) -> str:
    """Release a draft spec: build it, write its expected manifest and pin its digest.

    Returns the digest. A spec that is already pinned is refused: released versions are
    immutable.
    """
    spec = load_spec(spec_path)
    if spec.released:
        raise SpecError(
            f"{spec_path}: {spec.ref} is already released (manifest_sha256 is set); released "
            "versions are immutable, so copy it to a new version to change it"
        )
    outcome = build_task(spec, spec_path, root=root, force=True, step=step)
    digest = outcome.manifest.content_sha256
    check_release(spec, spec_path, digest)
    lock_path = expected_manifest_path(spec_path)
    original = spec_path.read_text(encoding="utf-8")
    line = f"manifest_sha256: {digest}"
    if _PIN_LINE.search(original):
        text = _PIN_LINE.sub(line, original)
    else:
        text = original.rstrip("\n") + f"\n{line}\n"
    lock = outcome.manifest.model_copy(update={"extras": {}})
    try:
        atomic_write_text(lock_path, lock.to_json())
        atomic_write_text(spec_path, text)
        released = load_spec(spec_path)
        if released.manifest_sha256 != digest:
            raise SpecError(f"{spec_path}: could not write manifest_sha256 into the spec")
        # a second build must reproduce the digest, and its card says "released"
        build_task(released, spec_path, root=root, force=True)
    except BaseException:
        atomic_write_text(spec_path, original)  # leave the draft as it was
        lock_path.unlink(missing_ok=True)
        raise
    return digest
