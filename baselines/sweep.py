"""The sweep: train, score and file every applicable (task, method, family, seed) cell.

Cells run on Ray (:func:`run`): a local Ray instance on this machine's cores by default, or
a cluster (``address``). Each cell trains one seed with a fixed number of torch threads (a
CPU run is bitwise reproducible for a given seed and thread count), scores it with every
probe the task lists, and sends back its seed folder's files (report, predictions, model),
so workers need no shared disk. Only the driver writes: it adds the seed to its entry under
``root/<task>/<method>-<family>/`` (staged, then renamed into place), and the entry records
each seed's cell key and model sha256 in ``config["sweep"]``.

A cell's key is the sha256 of its content: the task's content digest, method, family and
its full config, seed, threads, bootstrap replicates and the MedFail version. A cell whose
key is on its entry is finished and skipped, so an interrupted sweep resumes where it
stopped. A failing cell is recorded under ``root/.sweep/failed/<key>.json`` with its error,
and the others go on; a later run retries it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from baselines.methods import (
    METHODS,
    Family,
    available_families,
    families,
    flags,
    unmet_need,
)
from benchmark.boards.entries import (
    METADATA_FILE,
    SEED_PREFIX,
    EntryMetadata,
    entry_dir,
    read_metadata,
    write_entry_folders,
)
from benchmark.common.files import atomic_write_text
from benchmark.common.hashing import sha256_file
from benchmark.errors import MedFailError, one_line
from benchmark.scoring.probes import PRESET_PROBES
from benchmark.tasks.task import Task
from benchmark.version import __version__

#: Model files larger than this stay out of the entry (their sha256 is always recorded).
MAX_MODEL_BYTES = 5_000_000
FAILED_DIR = Path(".sweep") / "failed"


@dataclass(frozen=True)
class Cell:
    """One unit of work: train ``method``'s ``family`` on ``task`` with ``seed``, score it."""

    task: str
    content_sha256: str
    method: str
    family: str
    seed: int
    config: dict[str, Any]
    threads: int = 1
    n_boot: int = 1000
    preset: str | None = None

    @classmethod
    def of(
        cls, task: Task, method: str, fam: Family, seed: int, threads: int, n_boot: int, preset: str
    ) -> Cell:
        """The cell that trains ``fam`` of ``method`` on this build of ``task``, scored
        with the probes' ``preset`` (recorded where the task lists a probe that has presets)."""
        ref, sha = task.spec.ref, task.manifest.content_sha256
        used = preset if any(p in PRESET_PROBES for p in task.spec.probes) else None
        return cls(ref, sha, method, fam.name, seed, fam.config, threads, n_boot, used)

    @property
    def entry(self) -> str:
        return f"{self.method}-{self.family}"

    @property
    def key(self) -> str:
        fields = asdict(self)
        if self.preset is None:  # no probe with presets: the key of a cell before presets
            del fields["preset"]
        content = json.dumps({**fields, "medfail": __version__}, sort_keys=True)
        return hashlib.sha256(content.encode()).hexdigest()[:24]

    def __str__(self) -> str:
        return f"{self.task} {self.entry} seed {self.seed}"


@dataclass(frozen=True)
class Plan:
    """The cells to run, and the (task, method) pairs left out with the reason."""

    cells: list[Cell]
    skipped: list[str]


def plan(
    tasks: Sequence[Task],
    methods: Sequence[str] | None,
    family_names: Sequence[str] | None,
    seeds: Sequence[int],
    *,
    threads: int = 1,
    n_boot: int = 1000,
    preset: str = "fast",
) -> Plan:
    """Every applicable cell. An unknown method or family, or a named method that applies
    to none of the tasks, is a one-line :class:`MedFailError` (before anything trains);
    otherwise pairs that do not apply are listed in ``skipped`` with the reason."""
    if not seeds:
        raise MedFailError("give at least one seed")
    unknown = [m for m in methods or () if m not in METHODS]
    if unknown:
        raise MedFailError(f"unknown method {unknown[0]!r}; methods: {', '.join(METHODS)}")
    known = {f for t in tasks for f in available_families(t)}
    bad = [f for f in family_names or () if f not in known]
    if bad:
        raise MedFailError(f"unknown model family {bad[0]!r}; families: {', '.join(sorted(known))}")
    cells, skipped, used = [], [], set()
    for task in tasks:
        for method in methods or list(METHODS):
            why = unmet_need(method, task)
            if why is not None:
                skipped.append(why)
                continue
            for fam in families(method, task, threads=threads):
                if family_names and fam.name not in family_names:
                    continue
                used.add(method)
                cells += [Cell.of(task, method, fam, s, threads, n_boot, preset) for s in seeds]
    unused = [m for m in methods or () if m not in used]
    if methods and unused:
        reasons = [s for s in skipped if s.startswith(unused[0])]
        raise MedFailError(reasons[0] if reasons else f"{unused[0]}: no cell to run")
    return Plan(cells, skipped)


def _sweep_record(root: Path, cell: Cell) -> dict[str, Any] | None:
    path = entry_dir(root, cell.task, cell.entry) / METADATA_FILE
    if not path.is_file():
        return None
    try:
        meta = read_metadata(path)
    except MedFailError:
        return None
    record = meta.config.get("sweep")
    return record if isinstance(record, dict) else None


def foreign(root: Path, cell: Cell) -> bool:
    """Whether ``cell``'s entry exists but was not written by a sweep (``medfail baselines
    run``, a submission): the sweep leaves it alone rather than replace it."""
    path = entry_dir(root, cell.task, cell.entry) / METADATA_FILE
    return path.is_file() and _sweep_record(root, cell) is None


def is_done(root: Path, cell: Cell) -> bool:
    """Whether ``cell``'s key is on its entry (and its seed folder is there)."""
    record = _sweep_record(root, cell)
    folder = entry_dir(root, cell.task, cell.entry) / f"{SEED_PREFIX}{cell.seed}"
    return bool(record) and record["cells"].get(str(cell.seed)) == cell.key and folder.is_dir()


@dataclass(frozen=True)
class CellResult:
    """What a worker sends back: the seed folder's files, the model's sha256, the time."""

    files: dict[str, bytes]
    model_sha256: str
    seconds: float
    selection_rule: str
    model: str


def train_and_score(cell: Cell) -> CellResult:
    """Run one cell in this process (a Ray worker, or the driver with ``serial``)."""
    import torch

    from benchmark.scoring.evaluate import evaluate

    start = time.monotonic()
    torch.set_num_threads(cell.threads)
    task = Task.load(cell.task, build=True)  # a worker elsewhere builds its own copy
    if task.manifest.content_sha256 != cell.content_sha256:
        raise MedFailError(f"{cell.task}: the built task's content differs from the plan's")
    (fam,) = families(cell.method, task, cell.family, threads=cell.threads)
    with tempfile.TemporaryDirectory(prefix="medfail-cell-") as tmp:
        train_dir, seed_dir = Path(tmp) / "train", Path(tmp) / "seed"
        train_dir.mkdir()
        model_file = fam.fit_and_save(task, cell.seed, train_dir)
        report = evaluate(
            str(model_file),
            task,
            n_boot=cell.n_boot,
            seeds={"train": cell.seed},
            name=cell.entry,
            preset=cell.preset or "full",
        )
        report.save(seed_dir, predictions=True)
        if model_file.stat().st_size <= MAX_MODEL_BYTES:
            shutil.copy2(model_file, seed_dir / model_file.name)
        files = {
            str(p.relative_to(seed_dir)): p.read_bytes()
            for p in sorted(seed_dir.rglob("*"))
            if p.is_file()
        }
        return CellResult(
            files,
            sha256_file(model_file),
            time.monotonic() - start,
            fam.selection_rule,
            fam.config.get("arch", f"tabular-{fam.name}"),
        )


def store(root: Path, cell: Cell, result: CellResult) -> Path:
    """Add the finished ``cell`` to its entry (with the entry's other finished seeds of
    the same plan) and clear its failure record; returns the entry folder."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    record = _sweep_record(root, cell) or {}
    folder = entry_dir(root, cell.task, cell.entry)
    kept = {  # the entry's other seeds of this same plan (same key but for the seed)
        int(seed): folder / f"{SEED_PREFIX}{seed}"
        for seed, key in record.get("cells", {}).items()
        if int(seed) != cell.seed
        and key == replace(cell, seed=int(seed)).key
        and (folder / f"{SEED_PREFIX}{seed}").is_dir()
    }
    cells = {str(s): record["cells"][str(s)] for s in kept} | {str(cell.seed): cell.key}
    shas = {str(s): record["model_sha256"][str(s)] for s in kept}
    shas[str(cell.seed)] = result.model_sha256
    times = {str(s): record.get("seconds", {}).get(str(s)) for s in kept}
    times[str(cell.seed)] = round(result.seconds, 1)
    # hidden, so a kill here leaves nothing load_boards reads as a board
    with tempfile.TemporaryDirectory(prefix=".medfail-store-", dir=root) as tmp:
        new = Path(tmp) / "seed"
        for name, data in result.files.items():
            path = new / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        seeds = sorted([*kept, cell.seed])
        meta = EntryMetadata(
            name=cell.entry,
            method=cell.method,
            model=result.model,
            task=cell.task,
            task_content_sha256=cell.content_sha256,
            seeds=seeds,
            selection_rule=result.selection_rule,
            config={
                **cell.config,
                "sweep": {
                    "threads": cell.threads,
                    "n_boot": cell.n_boot,
                    **({"preset": cell.preset} if cell.preset else {}),
                    "cells": dict(sorted(cells.items(), key=lambda kv: int(kv[0]))),
                    "model_sha256": dict(sorted(shas.items(), key=lambda kv: int(kv[0]))),
                    # wall seconds of each cell (train + score) where recorded
                    "seconds": dict(sorted(times.items(), key=lambda kv: int(kv[0]))),
                },
            },
            flags=flags(cell.method),
            submitted_by="MedFail sweep",
            medfail_version=__version__,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        path = write_entry_folders(root, meta, {**kept, cell.seed: new})
    (root / FAILED_DIR / f"{cell.key}.json").unlink(missing_ok=True)
    return path


def record_failure(root: Path, cell: Cell, error: str) -> Path | None:
    """``root/.sweep/failed/<key>.json``: the cell and its error (written atomically);
    None when even that cannot be written (a full disk): the sweep goes on regardless."""
    path = Path(root) / FAILED_DIR / f"{cell.key}.json"
    body = {"cell": asdict(cell), "label": str(cell), "error": error}
    body["failed_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(body, indent=2, sort_keys=True) + "\n")
    except OSError:
        return None
    return path


@dataclass
class Progress:
    """Counts the driver reports after every finished cell."""

    total: int
    done: int = 0
    failed: int = 0
    running: int = 0
    seconds: float = 0.0  # summed cell time, for the estimate
    concurrency: int = 1

    def eta_s(self) -> float | None:
        """Seconds left: mean cell time x cells left / cells run at once."""
        finished = self.done + self.failed
        if not self.done:
            return None
        return self.seconds / self.done * (self.total - finished) / max(1, self.concurrency)


Update = Callable[[str, Progress], None]


def _error_text(e: BaseException) -> str:
    cause = getattr(e, "cause", None)  # RayTaskError wraps the worker's exception
    if isinstance(cause, BaseException):
        e = cause
    return f"{type(e).__name__}: {one_line(e)}"


def _settle(root: Path, cell: Cell, result: Callable[[], CellResult], prog: Progress) -> str:
    """File a finished cell (``result()`` runs it, or fetches it from Ray), or record its
    failure: a cell's error, a dead worker or a full disk must not stop the sweep. Returns
    what happened, for the progress line."""
    try:
        got = result()
        store(root, cell, got)
    except Exception as e:  # one cell failing must not stop the sweep
        record_failure(root, cell, _error_text(e) + "\n" + traceback.format_exc())
        prog.failed += 1
        return f"{cell} FAILED: {_error_text(e)}"
    prog.done += 1
    prog.seconds += got.seconds
    return f"{cell} done"


def _serial(todo: list[Cell], root: Path, prog: Progress, update: Update | None) -> None:
    for cell in todo:
        prog.running = 1
        what = _settle(root, cell, lambda c=cell: train_and_score(c), prog)
        prog.running = 0
        if update is not None:
            update(what, prog)


#: How often Ray reruns a cell whose worker died (killed, out of memory); a cell that
#: raises is not rerun: its error is recorded.
WORKER_RETRIES = 2


def _on_ray(
    todo: list[Cell],
    root: Path,
    prog: Progress,
    update: Update | None,
    address: str | None,
    cpus: int | None,
) -> None:
    import ray

    try:
        ray.init(
            address=address,
            num_cpus=None if address else cpus,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    except Exception as e:  # Ray raises many types when it cannot start or connect
        raise MedFailError(f"Ray did not start: {_error_text(e)}") from e
    try:
        threads = max(c.threads for c in todo)
        widest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]), default=0)
        if threads > widest:  # Ray would keep such cells pending for ever
            raise MedFailError(
                f"cells need {threads} CPUs each (--threads) but the largest Ray node has "
                f"{widest:g}; lower --threads or add CPUs"
            )
        prog.concurrency = max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
        remote = ray.remote(train_and_score)
        options = {"max_retries": WORKER_RETRIES, "retry_exceptions": False}
        pending = {remote.options(num_cpus=c.threads, **options).remote(c): c for c in todo}
        while pending:
            prog.running = min(len(pending), prog.concurrency)
            ready, _ = ray.wait(list(pending), num_returns=1)
            cell = pending.pop(ready[0])
            what = _settle(root, cell, lambda ref=ready[0]: ray.get(ref), prog)
            prog.running = min(len(pending), prog.concurrency)
            if update is not None:
                update(what, prog)
    finally:
        ray.shutdown()


def run(
    cells: Sequence[Cell],
    root: Path,
    *,
    serial: bool = False,
    address: str | None = None,
    cpus: int | None = None,
    update: Update | None = None,
) -> Progress:
    """Run the cells not yet finished under ``root`` (cells whose entry another tool
    wrote are left alone: :func:`foreign`); ``update(what, progress)`` hears each finished
    or failed cell. ``serial`` runs them one by one in this process (no Ray)."""
    root = Path(root)
    todo = [c for c in cells if not is_done(root, c) and not foreign(root, c)]
    prog = Progress(total=len(todo))
    if not todo:
        return prog
    if serial:
        _serial(todo, root, prog, update)
    else:
        _on_ray(todo, root, prog, update, address, cpus)
    return prog


def finished_cells(root: Path) -> list[tuple[Path, int, str, str]]:
    """(entry folder, seed, cell key, model sha256) of every sweep seed under ``root``."""
    found = []
    for meta_path in sorted(Path(root).glob(f"*/*/{METADATA_FILE}")):
        meta = read_metadata(meta_path)
        record = meta.config.get("sweep")
        if not isinstance(record, dict):
            continue
        for seed, key in record["cells"].items():
            found.append((meta_path.parent, int(seed), key, record["model_sha256"][seed]))
    return found


def verify(root: Path, k: int, seed: int = 0) -> list[tuple[str, str]]:
    """Retrain ``k`` finished cells drawn at random (``seed``) with their recorded config
    and threads; (what, verdict) each: ``same`` (the model file's sha256 equals the recorded
    one), ``different``, or ``stale`` (today's plan of that cell has another key: the
    config or MedFail version changed since, so the old file cannot be reproduced here)."""
    import random

    import torch

    done = finished_cells(root)
    picks = random.Random(seed).sample(done, min(k, len(done)))
    out = []
    for folder, train_seed, key, sha in picks:
        meta = read_metadata(folder / METADATA_FILE)
        record = meta.config["sweep"]
        threads = int(record["threads"])
        torch.set_num_threads(threads)
        task = Task.load(meta.task, build=True)
        family = meta.name.removeprefix(f"{meta.method}-")
        (fam,) = families(meta.method, task, family, threads=threads)
        what = f"{meta.task} {meta.name} seed {train_seed}"
        n_boot, preset = int(record["n_boot"]), record.get("preset", "full")
        if Cell.of(task, meta.method, fam, train_seed, threads, n_boot, preset).key != key:
            out.append((what, "stale"))
            continue
        with tempfile.TemporaryDirectory(prefix="medfail-verify-") as tmp:
            model_file = fam.fit_and_save(task, train_seed, Path(tmp))
            out.append((what, "same" if sha256_file(model_file) == sha else "different"))
    return out
