"""Transfer learning: pretrain on a source pool, then fine-tune on the task.

The source pool of a synthetic task is the union of the training splits of every *other*
built-in synthetic task of the same modality, input kind, channels and classes (for a
synthetic radiograph task: the other ``synth-cxr-*`` tasks, whose hospitals, scanners and
cohorts differ), and of every built-in MedMNIST task of the same modality, image channels
and number of classes whose MedMNIST file is on this machine (``$MEDMNIST_ROOT``,
``~/.medmnist``; PneumoniaMNIST for radiographs, DermaMNIST for skin, PathMNIST for
pathology), its images resized (bilinear) to the task's size. The pool is recorded in the
entry's config, so a machine with other files present trains another cell. Only train
splits are read, so no test image of any task enters pretraining; the entry is flagged
``extra_data``. Pretraining is ERM on at most :data:`POOL_SIZE` pooled images (a seeded
draw; 10% of them held out for its own early stopping), for at most
:data:`PRETRAIN_EPOCHS` epochs; fine-tuning then starts from those weights with the
family's usual settings and selection rule (ID val only).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch.nn import functional as F

from baselines import deep
from baselines.progress import OnEpoch
from benchmark.errors import MedFailError
from benchmark.tasks.registry import discover, read_spec
from benchmark.tasks.sources import medmnist
from benchmark.tasks.spec import TaskSpec, version_key
from benchmark.tasks.task import Task

POOL_SIZE = 6000
PRETRAIN_EPOCHS = 10


def _same_inputs(a: TaskSpec, b: TaskSpec) -> bool:
    x, y = a.features.array, b.features.array
    return (
        x is not None
        and y is not None
        and (x.kind, list(x.channels)) == (y.kind, list(y.channels))
        and a.modality == b.modality
        and list(a.label.classes) == list(b.label.classes)
    )


def _medmnist_fits(task: TaskSpec, source: TaskSpec) -> bool:
    """A MedMNIST task of the same modality, image channels and number of classes whose
    file is on this machine (its checksum is checked when it is built)."""
    x, y = task.features.array, source.features.array
    if source.source.name != "medmnist" or x is None or y is None:
        return False
    params = source.source.params
    present = any(
        p.is_file() for p in medmnist.candidates(params["dataset"], int(params.get("size", 28)))
    )
    return (
        present
        and (x.kind, len(x.channels)) == (y.kind, len(y.channels))
        and task.modality == source.modality
        and len(task.label.classes) == len(source.label.classes)
    )


def _newest(specs: list[TaskSpec]) -> TaskSpec | None:
    return max(specs, key=lambda s: version_key(s.version), default=None)


def source_pool(task: Task) -> list[str]:
    """``ID@VERSION`` of the pool's tasks (newest released version of each synthetic task,
    newest version of each MedMNIST task), or an error naming why there is none."""
    spec = task.spec
    if spec.source.name != "synthetic":
        raise MedFailError(
            f"transfer pretrains on other synthetic tasks of the same modality; {spec.ref} "
            f"is not synthetic (source {spec.source.name!r})"
        )
    pool = []
    for task_id, versions in sorted(discover().items()):
        if task_id == spec.id:
            continue
        specs = [read_spec(p) for p in versions.values()]
        released = [s for s in specs if s.manifest_sha256 and s.source.name == "synthetic"]
        synthetic = _newest(released)
        medmnist_task = _newest([s for s in specs if s.source.name == "medmnist"])
        if synthetic is not None and _same_inputs(spec, synthetic):
            pool.append(synthetic.ref)
        elif medmnist_task is not None and _medmnist_fits(spec, medmnist_task):
            pool.append(medmnist_task.ref)
    if not pool:
        raise MedFailError(
            f"transfer: no other synthetic {spec.modality} task with the inputs and classes of "
            f"{spec.ref}, and no MedMNIST {spec.modality} file here, to pretrain on"
        )
    return pool


def _resized(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Images (n, C, H, W) resized to ``size`` (bilinear, antialiased when shrinking)."""
    if tuple(x.shape[2:]) == size:
        return x
    shrink = x.shape[2] > size[0] or x.shape[3] > size[1]
    out = F.interpolate(torch.from_numpy(x), size=size, mode="bilinear", antialias=shrink)
    return out.clamp(0.0, 1.0).numpy()


def pooled_inputs(
    refs: list[str], seed: int, size: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """At most :data:`POOL_SIZE` training inputs and labels drawn (seeded) from the pool's
    train splits (each task built first if needed), images resized to ``size`` (H, W)
    where it is given and they differ."""
    xs, ys = [], []
    for ref in refs:
        X, y, _ = Task.load(ref, build=True).split("train")
        x = np.asarray(X, dtype=np.float32)
        xs.append(_resized(x, size) if size is not None and x.ndim == 4 else x)
        ys.append(np.asarray(y))
    x, y = np.concatenate(xs), np.concatenate(ys)
    pick = np.random.default_rng(seed).permutation(len(y))[:POOL_SIZE]
    return x[pick], y[pick]


def pretrained_state(
    task: Task,
    arch: str,
    seed: int,
    on_epoch: OnEpoch | None = None,
    threads: int | None = None,
    size: tuple[int, int] | None = None,
) -> dict[str, torch.Tensor]:
    """Weights after ERM pretraining of ``arch`` on the source pool of ``task``, with
    ``threads`` torch threads (None: the family default); images of the pool are resized
    to ``size`` (H, W), the task's, where they differ."""
    x, y = pooled_inputs(source_pool(task), seed, size)
    held = max(1, len(y) // 10)
    config = replace(deep.default_config(arch), max_epochs=PRETRAIN_EPOCHS, num_threads=threads)
    module = deep.train_network(
        arch,
        x[held:],
        y[held:],
        x[:held],
        y[:held],
        seed=seed,
        config=config,
        arch_config={"n_classes": len(task.spec.label.classes)},
        on_epoch=on_epoch,
    )
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
