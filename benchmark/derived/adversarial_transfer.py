"""``adversarial-transfer``: a parent task's test split, attacked once on a fixed surrogate.

A published adversarial test set measures transfer (black-box) robustness without anyone
running attacks. The parent is a released image task (``parent: ID@VERSION``), built and
verified first. Its ``train``, ``val`` and ``id_test`` rows pass through unchanged (column
``parent_split``); every row of ``attack_split`` also gets an adversarial copy
(``parent_split = adversarial``), crafted with L-inf PGD on the **surrogate**: the parent's
ERM baseline, shipped as safetensors beside the spec and checked against
``surrogate_sha256`` before use. The attack's goal is the probe's: flip the surrogate's
decision at its own threshold, frozen on the parent's ``val`` by the parent's rule.

Byte-identical rebuilds: the attack lives on the 8-bit grid the images are stored on. The
radius ``eps`` and the ``step`` are whole grey levels (units of 1/255), the random start is
drawn in whole grey levels from the task seed, and each step adds ``step * sign(gradient)``
to an integer image, so only the *sign* of the input gradient is read. The surrogate runs
in float64 in fixed batches, where kernel and thread differences are far below what could
flip a sign (a test rebuilds with other CPU kernels and compares bytes).

The copies are the attacked split's own patients by construction (pairs); they carry ids
``adv-<sample_id>``, so the build's check that no patient spans two domains, which guards
training data, does not refuse a test-only paired copy. The parent's group columns are
passed through without their ``group_`` prefix (already binned), its ``domain`` as
``parent_domain``, and the label as its class name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch.nn import functional as F

from benchmark.errors import BuildError
from benchmark.tasks.sources.base import Source, SourceContext, SourceData, SourceParams

BATCH = 64  # fixed: part of what makes the crafted bytes reproducible


class AdversarialTransferParams(SourceParams):
    parent: str = Field(description="the released parent task, ID@VERSION")
    surrogate: str = Field(description="safetensors weights, relative to the spec's folder")
    surrogate_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    attack_split: Literal["id_test", "ood_test"] = "id_test"
    eps: int = Field(ge=1, le=64, description="L-inf radius in grey levels (1/255)")
    step: int = Field(default=1, ge=1, description="step size in grey levels")
    steps: int = Field(default=10, ge=1)


def grid_pgd(
    module: torch.nn.Module,
    images: np.ndarray,
    y: np.ndarray,
    eps: int,
    step: int,
    steps: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """L-inf PGD on uint8 images ``(n, C, H, W)`` in whole grey levels: random start in
    ``[-eps, eps]``, ``steps`` steps of ``step * sign(grad)`` on cross-entropy, projected
    to the eps-ball and to [0, 255]. ``module`` takes float images in [0, 1] (its dtype
    sets the precision). Returns uint8 images of the same shape."""
    dtype = next(module.parameters()).dtype
    out = np.empty_like(images)
    for start in range(0, len(images), BATCH):
        x = torch.from_numpy(images[start : start + BATCH].astype(np.int16))
        target = torch.from_numpy(y[start : start + BATCH].astype(np.int64))
        noise = torch.from_numpy(rng.integers(-eps, eps + 1, size=x.shape).astype(np.int16))
        adv = torch.min(torch.max(x + noise, x - eps), x + eps).clamp(0, 255)
        for _ in range(steps):
            inputs = (adv.to(dtype) / 255).requires_grad_(True)
            loss = F.cross_entropy(module(inputs), target)
            (grad,) = torch.autograd.grad(loss, inputs)
            adv = adv + step * grad.sign().to(torch.int16)
            adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 255)
        out[start : start + len(x)] = adv.numpy().astype(np.uint8)
    return out


class AdversarialTransferSource(Source):
    name = "adversarial-transfer"
    Params = AdversarialTransferParams

    def load(self, params: AdversarialTransferParams, ctx: SourceContext) -> SourceData:
        from benchmark.common.hashing import sha256_file
        from benchmark.models.adapters import TorchClassifier
        from benchmark.models.loading import load_model
        from benchmark.perturbations.threshold import ThresholdShift
        from benchmark.stats.metrics import choose_threshold
        from benchmark.tasks.build import BUILD_STEPS, build_task
        from benchmark.tasks.registry import resolve
        from benchmark.tasks.task import Task

        resolved = resolve(params.parent)
        parent = resolved.spec
        if not parent.released:
            raise BuildError(f"adversarial-transfer: parent {parent.ref} is a draft; pin it first")
        array = parent.features.array
        if array is None or array.kind != "image":
            raise BuildError(f"adversarial-transfer: parent {parent.ref} is not an image task")
        if params.attack_split not in parent.splits.present():
            raise BuildError(f"adversarial-transfer: {parent.ref} has no {params.attack_split}")
        path = Path(ctx.spec_dir) / params.surrogate
        if not path.is_file():
            raise BuildError(f"adversarial-transfer: surrogate weights missing: {path}")
        digest = sha256_file(path)
        if digest != params.surrogate_sha256:
            raise BuildError(
                f"adversarial-transfer: {path} has sha256 {digest}, the spec pins "
                f"{params.surrogate_sha256}; the surrogate file was changed or corrupted"
            )
        done = iter(range(1, BUILD_STEPS + 1))

        def parent_step(what: str, *inner: int) -> None:
            """The parent's build stages, as work inside this build's first stage."""
            if ctx.detail is None:
                return
            if inner:  # the parent's own inner work
                ctx.detail(what, *inner)
            else:
                stage = next(done, BUILD_STEPS)
                ctx.detail(f"building the parent {parent.ref}: {what}", stage, BUILD_STEPS)

        build_task(parent, resolved.spec_path, offline=ctx.offline, step=parent_step)
        task = Task.load(parent.ref)
        model = load_model(f"safetensors:{path}", task)
        if not isinstance(model, TorchClassifier):
            raise BuildError(f"adversarial-transfer: {path} is not a torch model")
        module = model.module.cpu().double().eval()  # CPU float64: reproducible bytes
        x_val, y_val, _ = task.split("val")
        with torch.no_grad():
            z = module(torch.from_numpy(x_val.astype(np.float64)))
            score = torch.softmax(z, dim=1)[:, 1].numpy()
        spec_t = parent.threshold
        threshold = choose_threshold(
            spec_t.rule, y_val, score, specificity=spec_t.specificity, value=spec_t.value
        )
        target = ThresholdShift(module, threshold).double().eval()

        keep = [s for s in ("train", "val", "id_test") if s in task.splits]
        frames, inputs, masks = [], [], []
        for split in keep:
            frames.append(task.frame(split).assign(parent_split=split))
            inputs.append(task.array(split))
            if array.masks:
                masks.append(task.array(split, "masks"))
        attacked = task.frame(params.attack_split)
        clean = task.array(params.attack_split)
        adv = grid_pgd(
            target,
            clean,
            attacked["label"].to_numpy(),
            params.eps,
            params.step,
            params.steps,
            ctx.rng,
        )
        copies = attacked.assign(
            sample_id="adv-" + attacked["sample_id"],
            patient_id="adv-" + attacked["patient_id"],
            parent_split="adversarial",
        )
        frames.append(copies)
        inputs.append(adv)
        if array.masks:
            masks.append(task.array(params.attack_split, "masks"))
        frame = pd.concat(frames, ignore_index=True)
        frame["label"] = [parent.label.classes[i] for i in frame["label"]]
        frame = frame.rename(
            columns={c: c.removeprefix("group_") for c in frame if c.startswith("group_")}
            | {"domain": "parent_domain"}
        )
        arrays = {"inputs": np.concatenate(inputs)}
        if masks:
            arrays["masks"] = np.concatenate(masks)
        changed = (adv != clean).reshape(len(adv), -1).mean(axis=1)
        provenance = (
            f"{parent.ref} (content {task.manifest.content_sha256[:12]}), its "
            f"{params.attack_split} attacked with L-inf PGD ({params.steps} steps of "
            f"{params.step}/255, eps {params.eps}/255) on the surrogate {params.surrogate} "
            f"(sha256 {digest[:12]}) at its threshold {threshold:.6g}"
        )
        notes = (
            f"- Parent: `{parent.ref}`, content sha256 `{task.manifest.content_sha256}`; rows of "
            f"{', '.join(f'`{s}`' for s in keep)} are kept unchanged (`parent_split`).\n"
            f"- Surrogate: `{params.surrogate}` (sha256 `{digest}`), run in float64; its "
            f"decision threshold {threshold:.6g} was frozen on the parent's `val` "
            f"({spec_t.rule}).\n"
            f"- Attack: L-inf PGD on cross-entropy at that threshold, eps {params.eps}/255, "
            f"{params.steps} steps of {params.step}/255, random start in whole grey levels; "
            f"{len(adv)} adversarial copies of `{params.attack_split}` (ids `adv-<id>`), "
            f"{changed.mean():.1%} of pixels changed on average.\n"
        )
        return SourceData(frame, provenance, arrays=arrays, notes=notes)
