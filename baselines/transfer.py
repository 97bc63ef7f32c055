"""Transfer learning: pretrain on a source pool, then fine-tune on the task.

The source pool of a synthetic task is the union of the training splits of every *other*
built-in synthetic task of the same modality, input kind, channels and classes (for a
synthetic radiograph task: the other ``synth-cxr-*`` tasks, whose hospitals, scanners and
cohorts differ). Only train splits are read, so no test image of any task enters
pretraining; the entry is flagged ``extra_data``. Pretraining is ERM on at most
:data:`POOL_SIZE` pooled images (a seeded draw; 10% of them held out for its own early
stopping), for at most :data:`PRETRAIN_EPOCHS` epochs; fine-tuning then starts from those
weights with the family's usual settings and selection rule (ID val only).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from baselines import deep
from baselines.progress import OnEpoch
from benchmark.errors import MedFailError
from benchmark.tasks.registry import discover, read_spec
from benchmark.tasks.spec import TaskSpec
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


def source_pool(task: Task) -> list[str]:
    """``ID@VERSION`` of the pool's tasks (newest released version of each), or an error
    naming why there is none."""
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
        newest = max(released, key=lambda s: tuple(map(int, s.version.split("."))), default=None)
        if newest is not None and _same_inputs(spec, newest):
            pool.append(newest.ref)
    if not pool:
        raise MedFailError(
            f"transfer: no other synthetic {spec.modality} task with the inputs and classes of "
            f"{spec.ref} to pretrain on"
        )
    return pool


def pooled_inputs(refs: list[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most :data:`POOL_SIZE` training inputs and labels drawn (seeded) from the pool's
    train splits (each task built first if needed)."""
    xs, ys = [], []
    for ref in refs:
        X, y, _ = Task.load(ref, build=True).split("train")
        xs.append(np.asarray(X, dtype=np.float32))
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
) -> dict[str, torch.Tensor]:
    """Weights after ERM pretraining of ``arch`` on the source pool of ``task``, with
    ``threads`` torch threads (None: the family default)."""
    x, y = pooled_inputs(source_pool(task), seed)
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
