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
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from baselines import fairness, tabular
from baselines.decorrelate import spread_shortcuts
from baselines.objectives import GROUP_OBJECTIVES, METHOD_PARAMS, TARGET_OBJECTIVES
from baselines.progress import OnEpoch
from baselines.saving import dump_skops
from benchmark.boards.entries import EntryMetadata, entry_dir, write_entry
from benchmark.errors import MedFailError
from benchmark.results.report import Report
from benchmark.scoring.evaluate import evaluate
from benchmark.tasks.task import Task
from benchmark.version import __version__


@dataclass(frozen=True)
class Method:
    """A mitigation: what it does and its reference (``summary``), the input kinds it
    trains on, what it needs from a task, and the flags its entries carry.

    ``needs``: ``groups`` (group attributes), ``shortcut_masks`` (recorded shortcut
    pixels), ``target`` (an ``ood_val`` split whose unlabelled inputs it may read),
    ``pool`` (other synthetic tasks to pretrain on)."""

    name: str
    summary: str
    inputs: tuple[str, ...] = ("tabular", "image", "series")
    needs: tuple[str, ...] = ()
    flags: dict[str, bool] = field(default_factory=dict)


_NONE = {"extra_data": False, "uses_group_labels": False, "uses_ood_val": False}
_IMAGES = ("image",)
_GROUPS = {"uses_group_labels": True}
_TARGET = {"uses_unlabelled_target": True}
_METHODS = [
    Method("erm", "empirical risk minimisation: the reference every method is compared with"),
    Method(
        "reweight",
        "group-balanced sample weights (each group equal total weight)",
        needs=("groups",),
        flags=_GROUPS,
    ),
    Method("mixup", "mixup (Zhang et al., 2018), lambda ~ Beta(0.4, 0.4)"),
    Method("cutmix", "CutMix (Yun et al., 2019), lambda ~ Beta(1, 1)", _IMAGES),
    Method("pgd-at", "PGD adversarial training (Madry et al., 2018), L-inf eps 4/255", _IMAGES),
    Method("wavelet", "ERM behind wavelet denoising of the input (a proposed defence)", _IMAGES),
    Method(
        "shortcut-decorrelated",
        "ERM on data where the recorded shortcut no longer predicts the label (DeGrave 2021)",
        _IMAGES,
        needs=("shortcut_masks",),
        flags={"uses_annotations": True},  # privileged annotations: a reference only
    ),
    Method(
        "group-dro",
        "GroupDRO (Sagawa et al., 2020), online group weights, step size 0.01",
        needs=("groups",),
        flags=_GROUPS,
    ),
    Method(
        "adversarial-debiasing",
        "adversarial debiasing (Zhang et al., 2018): a group adversary behind gradient reversal",
        needs=("groups",),
        flags=_GROUPS,
    ),
    Method(
        "dann",
        "DANN (Ganin et al., 2016) on ood_val's unlabelled inputs, lambda_p = 2/(1+exp(-10p)) - 1",
        needs=("target",),
        flags=_TARGET,
    ),
    Method(
        "coral",
        "Deep CORAL (Sun & Saenko, 2016) on ood_val's unlabelled inputs, weight 1",
        needs=("target",),
        flags=_TARGET,
    ),
    Method(
        "transfer",
        "pretrain on the other synthetic tasks of the modality (and its MedMNIST set when "
        "present), then fine-tune",
        ("image", "series"),
        needs=("pool",),
        flags={"extra_data": True},
    ),
    Method(
        "fairlearn-eg-dp",
        "fairlearn ExponentiatedGradient (Agarwal et al., 2018), demographic parity",
        ("tabular",),
        needs=("groups",),
        flags=_GROUPS,
    ),
    Method(
        "fairlearn-eg-eo",
        "fairlearn ExponentiatedGradient (Agarwal et al., 2018), equalized odds",
        ("tabular",),
        needs=("groups",),
        flags=_GROUPS,
    ),
    Method(
        "threshold-optimizer",
        "fairlearn ThresholdOptimizer (Hardt et al., 2016) on ERM scores, equalized odds",
        needs=("groups",),
        flags={**_GROUPS, "group_aware_inference": True},
    ),
]
METHODS = {m.name: m for m in _METHODS}


def flags(method: str) -> dict[str, bool]:
    """The flags an entry of ``method`` carries (the three standard ones always present)."""
    return _NONE | METHODS[method].flags


@dataclass(frozen=True)
class Family:
    """A model family a method trains: how to fit one seed and save the result."""

    name: str
    config: dict[str, Any]
    #: ``fit_and_save(task, seed, folder, on_epoch=None)`` -> the saved model file;
    #: ``on_epoch`` hears each epoch of the families that train in epochs
    fit_and_save: Callable[..., Path]
    selection_rule: str = tabular.SELECTION_RULE


def _method_config(method: str) -> dict[str, Any]:
    params = METHOD_PARAMS.get(method)
    return {"method_params": dict(params)} if params else {}


def _mlp(method: str, threads: int | None = None) -> Family:
    config = tabular.MLPConfig(num_threads=threads)

    def fit_and_save(task: Task, seed: int, folder: Path, on_epoch: OnEpoch | None = None) -> Path:
        target = TARGET_SPLIT if method in TARGET_OBJECTIVES else None
        model = tabular.train_mlp(task, method, seed, config, on_epoch, target_split=target)
        path = folder / "model.safetensors"
        tabular.save_mlp(model, str(path))
        return path

    return Family("mlp", {**tabular.config_dict(config), **_method_config(method)}, fit_and_save)


def _gbm() -> Family:
    config = tabular.GBMConfig()

    def fit_and_save(task: Task, seed: int, folder: Path, on_epoch: OnEpoch | None = None) -> Path:
        return dump_skops(tabular.train_gbm(task, seed, config), folder / "model.skops")

    return Family("gbm", tabular.config_dict(config), fit_and_save)


def _logistic(method: str) -> Family:
    """Logistic regression: ERM (a skops model) or inside a fairlearn reduction (scores)."""

    def fit_and_save(task: Task, seed: int, folder: Path, on_epoch: OnEpoch | None = None) -> Path:
        X, y, _ = task.split("train")
        if method == "erm":
            fitted = fairness.logistic_pipeline(task, seed).fit(X, y)
            return dump_skops(fitted, folder / "model.skops")
        mitigator = fairness.fit_exponentiated_gradient(task, method.rsplit("-", 1)[1], seed)
        scores = {
            s: fairness.exponentiated_gradient_scores(mitigator, task.split(s)[0])
            for s in task.splits
        }
        return fairness.write_scores(task, scores, folder / "scores.parquet")

    config = {"model": "one-hot, median impute, standardise, L2 logistic regression (C=1)"}
    if method != "erm":
        config |= {"reduction": "ExponentiatedGradient", "eps": 0.01, "max_iter": 50}
        config["protected"] = "the task's fairness attribute (fairness.fairness_attribute)"
    return Family("logistic", config, fit_and_save)


def _post_processed(base: Family) -> Family:
    """ThresholdOptimizer on the scores of ``base`` trained with ERM (same seed)."""

    def fit_and_save(task: Task, seed: int, folder: Path, on_epoch: OnEpoch | None = None) -> Path:
        from benchmark.models.loading import load_model

        model = load_model(str(base.fit_and_save(task, seed, folder, on_epoch)), task)
        scores = {s: model.predict_proba(task.split(s)[0])[:, 1] for s in task.splits}
        fitted = fairness.threshold_optimize(scores, task)
        return fairness.write_scores(task, fitted, folder / "scores.parquet")

    config = {
        "base": {"family": base.name, "method": "erm", **base.config},
        "post_processing": "ThresholdOptimizer, equalized_odds, balanced accuracy, fit on val",
    }
    return Family(base.name, config, fit_and_save, base.selection_rule)


#: array-task families: name -> registered architecture (first = default)
IMAGE_FAMILIES = {"cnn": "image-cnn", "densenet121": "densenet121"}
SERIES_FAMILIES = {"transformer": "series-transformer"}
#: the split whose unlabelled inputs dann and coral may read
TARGET_SPLIT = "ood_val"


def _deep(method: str, task: Task, family: str, arch: str, threads: int | None = None) -> Family:
    from baselines import deep

    config = replace(deep.default_config(arch), num_threads=threads)

    def fit_and_save(task: Task, seed: int, folder: Path, on_epoch: OnEpoch | None = None) -> Path:
        X, y, meta = task.split("train")
        Xv, yv, _ = task.split("val")
        if method == "shortcut-decorrelated":  # ERM, the marker at one rate per class
            X = spread_shortcuts(X, task.array("train", "shortcut_masks"), y, seed)
            Xv = spread_shortcuts(Xv, task.array("val", "shortcut_masks"), yv, seed + 1)
        init = None
        if method == "transfer":
            from baselines.transfer import pretrained_state

            size = (X.shape[2], X.shape[3]) if X.ndim == 4 else None
            init = pretrained_state(task, arch, seed, on_epoch, threads, size)
        module = deep.train_network(
            arch,
            X,
            y,
            Xv,
            yv,
            seed=seed,
            method=_TRAINS_AS.get(method, method),
            sample_weight=tabular.group_weights(meta) if method == "reweight" else None,
            config=config,
            arch_config={"n_classes": len(task.spec.label.classes)},
            on_epoch=on_epoch,
            groups=tabular.group_codes(meta) if method in GROUP_OBJECTIVES else None,
            target=task.split(TARGET_SPLIT)[0] if method in TARGET_OBJECTIVES else None,
            init_state=init,
        )
        if method == "wavelet":  # ERM, with the denoiser in front of it at inference
            module = deep.wavelet_sanitised(module)
        path = folder / "model.safetensors"
        deep.save_network(module, str(path))
        return path

    config_dict = {"arch": arch, **deep.config_dict(config), **_method_config(method)}
    if method == "transfer":
        from baselines import transfer

        config_dict["pretraining"] = {  # released versions are immutable: refs pin the data
            "pool": transfer.source_pool(task),
            "pool_size": transfer.POOL_SIZE,
            "max_epochs": transfer.PRETRAIN_EPOCHS,
        }
    return Family(family, config_dict, fit_and_save, deep.SELECTION_RULE)


#: methods that train as another objective (and change the data or the model around it)
_TRAINS_AS = {"wavelet": "erm", "shortcut-decorrelated": "erm", "transfer": "erm"}


def input_kind(task: Task) -> str:
    """``tabular``, ``image`` or ``series``."""
    array = task.spec.features.array
    return "tabular" if array is None else array.kind


def available_families(task: Task) -> dict[str, str]:
    """Family name -> what it is, for ``task``'s input kind."""
    kind = input_kind(task)
    if kind == "tabular":
        return {
            "mlp": "tabular-mlp",
            "gbm": "gradient boosting (ERM only)",
            "logistic": "logistic regression (ERM and the fairlearn reductions)",
        }
    return IMAGE_FAMILIES if kind == "image" else SERIES_FAMILIES


def unmet_need(method: str, task: Task) -> str | None:
    """Why ``method`` does not apply to ``task`` (one line), or None when it does."""
    m, spec = METHODS[method], task.spec
    kind = input_kind(task)
    if kind not in m.inputs:
        return f"{method} trains on {' or '.join(m.inputs)} inputs; {spec.ref} has {kind} inputs"
    array = spec.features.array
    if "groups" in m.needs and not spec.attributes:
        return f"{method} needs group attributes; {spec.ref} defines none"
    if "shortcut_masks" in m.needs and not (array is not None and array.shortcut_masks):
        return (
            f"{method} copies the recorded shortcut onto every image; {spec.ref} records none "
            "(features.array.shortcut_masks)"
        )
    if "target" in m.needs and TARGET_SPLIT not in task.splits:
        return f"{method} adapts to the unlabelled inputs of {TARGET_SPLIT}; {spec.ref} has none"
    if "pool" in m.needs:
        from baselines.transfer import source_pool

        try:
            source_pool(task)
        except MedFailError as e:
            return str(e)
    return None


def methods_for(task: Task) -> list[str]:
    """The methods that apply to ``task``."""
    return [m for m in METHODS if unmet_need(m, task) is None]


def families(
    method: str, task: Task, family: str | None = None, *, threads: int | None = None
) -> list[Family]:
    """The model families ``method`` trains on ``task``: tabular MLP (ERM adds gradient
    boosting and logistic regression; the fairlearn reductions train logistic regression
    only); images: the small CNN (or ``family="densenet121"``, MONAI DenseNet-121); series:
    the temporal transformer. ``family`` picks one; ``threads`` fixes the torch threads (a
    CPU run is bitwise reproducible for a given seed and thread count). An unknown method, a
    method that does not apply or an unknown family is a one-line :class:`MedFailError`."""
    if method not in METHODS:
        raise MedFailError(f"unknown method {method!r}; methods: {', '.join(METHODS)}")
    why = unmet_need(method, task)
    if why is not None:
        raise MedFailError(why)
    known = available_families(task)
    if family is not None and family not in known:
        raise MedFailError(
            f"{task.spec.ref}: unknown model family {family!r}; families: {', '.join(known)}"
        )
    if input_kind(task) != "tabular":
        name = family or next(iter(known))
        trained = "erm" if method == "threshold-optimizer" else method
        fam = _deep(trained, task, name, known[name], threads)
        return [_post_processed(fam) if method == "threshold-optimizer" else fam]
    if method.startswith("fairlearn-eg"):
        todo = [_logistic(method)]
    elif method == "erm":
        todo = [_mlp(method, threads), _gbm(), _logistic(method)]
    elif method == "threshold-optimizer":
        todo = [_post_processed(_mlp("erm", threads))]
    else:
        todo = [_mlp(method, threads)]
    chosen = [f for f in todo if family is None or f.name == family]
    if not chosen:
        raise MedFailError(
            f"{method} trains {', '.join(f.name for f in todo)} on tabular tasks, not {family}"
        )
    return chosen


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
                flags=flags(method),
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
