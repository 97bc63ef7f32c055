"""Baseline methods and the leaderboard entries they produce.

``run(task, method, seeds, root)`` trains every model family the method has for the
task's modality, scores each seed with :func:`benchmark.scoring.evaluate`, and writes one entry
per family under ``root/<task>@<version>/<method>-<family>/`` (metadata, one report and
predictions per seed, and the trained model file, which ``medfail evaluate --model``
loads back).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from baselines import tabular
from baselines.decorrelate import spread_shortcuts
from baselines.progress import OnEpoch
from benchmark.boards.entries import EntryMetadata, entry_dir, write_entry
from benchmark.errors import MedFailError
from benchmark.results.report import Report
from benchmark.scoring.evaluate import evaluate
from benchmark.tasks.task import Task
from benchmark.version import __version__

METHODS = ("erm", "reweight", "mixup", "pgd-at", "wavelet", "shortcut-decorrelated")
IMAGE_ONLY = ("pgd-at", "wavelet", "shortcut-decorrelated")  # methods that need image inputs
#: methods that need the task to record its shortcut's pixels (features.array.shortcut_masks)
NEEDS_SHORTCUT_MASKS = ("shortcut-decorrelated",)


@dataclass(frozen=True)
class Family:
    """A model family a method trains: how to fit one seed and save the result."""

    name: str
    config: dict[str, Any]
    #: ``fit_and_save(task, seed, folder, on_epoch=None)`` -> the saved model file;
    #: ``on_epoch`` hears each epoch of the families that train in epochs
    fit_and_save: Callable[..., Path]
    selection_rule: str = tabular.SELECTION_RULE


def _mlp(method: str) -> Family:
    config = tabular.MLPConfig()

    def fit_and_save(task: Task, seed: int, folder: Path, on_epoch: OnEpoch | None = None) -> Path:
        model = tabular.train_mlp(task, method, seed, config, on_epoch)
        path = folder / "model.safetensors"
        tabular.save_mlp(model, str(path))
        return path

    return Family("mlp", tabular.config_dict(config), fit_and_save)


def _gbm() -> Family:
    config = tabular.GBMConfig()

    def fit_and_save(task: Task, seed: int, folder: Path, on_epoch: OnEpoch | None = None) -> Path:
        import skops.io as sio

        path = folder / "model.skops"
        sio.dump(tabular.train_gbm(task, seed, config), path)
        return path

    return Family("gbm", tabular.config_dict(config), fit_and_save)


#: array-task families: name -> registered architecture (first = default)
IMAGE_FAMILIES = {"cnn": "image-cnn", "densenet121": "densenet121"}
SERIES_FAMILIES = {"transformer": "series-transformer"}


def _deep(method: str, family: str, arch: str) -> Family:
    from baselines import deep

    config = deep.default_config(arch)

    def fit_and_save(task: Task, seed: int, folder: Path, on_epoch: OnEpoch | None = None) -> Path:
        X, y, meta = task.split("train")
        Xv, yv, _ = task.split("val")
        if method == "shortcut-decorrelated":  # ERM, the marker at one rate per class
            X = spread_shortcuts(X, task.array("train", "shortcut_masks"), y, seed)
            Xv = spread_shortcuts(Xv, task.array("val", "shortcut_masks"), yv, seed + 1)
        module = deep.train_network(
            arch,
            X,
            y,
            Xv,
            yv,
            seed=seed,
            method="erm" if method in ("wavelet", "shortcut-decorrelated") else method,
            sample_weight=tabular.group_weights(meta) if method == "reweight" else None,
            config=config,
            arch_config={"n_classes": len(task.spec.label.classes)},
            on_epoch=on_epoch,
        )
        if method == "wavelet":  # ERM, with the denoiser in front of it at inference
            module = deep.wavelet_sanitised(module)
        path = folder / "model.safetensors"
        deep.save_network(module, str(path))
        return path

    config_dict = {"arch": arch, **deep.config_dict(config)}
    return Family(family, config_dict, fit_and_save, deep.SELECTION_RULE)


def available_families(task: Task) -> dict[str, str]:
    """Family name -> what it is, for ``task``'s input kind."""
    array = task.spec.features.array
    if array is None:
        return {"mlp": "tabular-mlp", "gbm": "gradient boosting (ERM only)"}
    return IMAGE_FAMILIES if array.kind == "image" else SERIES_FAMILIES


def families(method: str, task: Task, family: str | None = None) -> list[Family]:
    """The model families ``method`` trains on ``task``: tabular MLP (ERM adds gradient
    boosting); images: the small CNN (or ``family="densenet121"``, MONAI DenseNet-121);
    series: the temporal transformer. ``family`` picks one."""
    if method not in METHODS:
        raise MedFailError(f"unknown method {method!r}; methods: {', '.join(METHODS)}")
    if method not in methods_for(task):
        if method in NEEDS_SHORTCUT_MASKS:
            raise MedFailError(
                f"{method} copies the recorded shortcut onto every image; {task.spec.ref} records "
                "none (features.array.shortcut_masks)"
            )
        raise MedFailError(f"{method} trains image models; {task.spec.ref} has no image inputs")
    known = available_families(task)
    if family is not None and family not in known:
        raise MedFailError(
            f"{task.spec.ref}: unknown model family {family!r}; families: {', '.join(known)}"
        )
    if task.spec.features.array is not None:
        name = family or next(iter(known))
        return [_deep(method, name, known[name])]
    if family == "gbm" and method != "erm":
        raise MedFailError("gradient boosting is trained with erm only")
    todo = [_mlp(method)] + ([_gbm()] if method == "erm" else [])
    return [f for f in todo if family is None or f.name == family]


def methods_for(task: Task) -> list[str]:
    """The methods that apply to ``task``'s inputs."""
    array = task.spec.features.array
    image = array is not None and array.kind == "image"
    marked = image and array is not None and array.shortcut_masks
    return [
        m
        for m in METHODS
        if (image or m not in IMAGE_ONLY) and (marked or m not in NEEDS_SHORTCUT_MASKS)
    ]


_NONE = {"extra_data": False, "uses_group_labels": False, "uses_ood_val": False}
FLAGS = {
    "erm": _NONE,
    "reweight": _NONE | {"uses_group_labels": True},
    "mixup": _NONE,
    "pgd-at": _NONE,
    "wavelet": _NONE,
    # uses the shortcut's recorded pixels: privileged annotations, a reference only
    "shortcut-decorrelated": _NONE | {"uses_annotations": True},
}


def _epochs(
    detail: Callable[[str, int, int], None] | None, entry: str, seed: int
) -> OnEpoch | None:
    if detail is None:
        return None
    return lambda log: detail(f"{entry} seed {seed}: {log.line()}", log.epoch, log.max_epochs)


def run(
    task: Task,
    method: str,
    seeds: Sequence[int],
    root: Path,
    *,
    n_boot: int = 1000,
    overwrite: bool = False,
    step: Callable[[str], None] | None = None,
    family: str | None = None,
    detail: Callable[[str, int, int], None] | None = None,
) -> list[Path]:
    """Train, score and write one entry per model family; returns the entry folders.

    ``step(what)`` hears each finished seed; ``detail(what, done, total)`` each training
    epoch (:class:`baselines.progress.EpochLog` as text, epoch of max epochs) and the start
    of each seed's scoring."""
    if not seeds:
        raise MedFailError("give at least one seed")
    todo = families(method, task, family)
    existing = [
        p
        for p in (entry_dir(root, task.spec.ref, f"{method}-{f.name}") for f in todo)
        if p.exists()
    ]
    if existing and not overwrite:  # refuse before training anything: no partial entry sets
        raise MedFailError(
            f"entries exist: {', '.join(map(str, existing))}; overwrite them explicitly "
            "(--overwrite)"
        )
    written = []
    for fam in todo:
        entry = f"{method}-{fam.name}"
        reports: dict[int, Report] = {}
        with tempfile.TemporaryDirectory(prefix="medfail-train-") as tmp:
            files: dict[int, list[Path]] = {}
            for seed in seeds:
                folder = Path(tmp) / f"seed-{seed}"
                folder.mkdir()
                model_file = fam.fit_and_save(task, seed, folder, _epochs(detail, entry, seed))
                if detail is not None:
                    detail(f"{entry} seed {seed}: scoring", 0, 1)
                reports[seed] = evaluate(
                    str(model_file), task, n_boot=n_boot, seeds={"train": seed}, name=entry
                )
                files[seed] = [model_file]
                if step is not None:
                    step(f"{entry} seed {seed}")
            meta = EntryMetadata(
                name=entry,
                method=method,
                model=fam.config.get("arch", f"tabular-{fam.name}"),
                task=task.spec.ref,
                task_content_sha256=task.manifest.content_sha256,
                seeds=list(seeds),
                selection_rule=fam.selection_rule,
                config=fam.config,
                flags=FLAGS[method],
                submitted_by="MedFail baselines",
                medfail_version=__version__,
                created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            )
            written.append(
                write_entry(
                    root, meta, reports, predictions=True, extra_files=files, overwrite=overwrite
                )
            )
    return written
