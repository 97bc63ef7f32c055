"""Projected gradient descent (PGD) in torch, L-inf and L2, with random restarts.

Used by the adversarial probe (the ``pgd`` and ``pgd-l2`` attacks), by PGD adversarial
training (``baselines``) and to craft published adversarial test sets. The other attacks
(FGSM, APGD, Square) run through ART, except in the probe's fast preset, where
:func:`pgd_grid` runs FGSM and PGD at every radius at once with early exit.

Hand-written, not ART's ``ProjectedGradientDescent``, because it is measured faster on the
same model, batch and settings (``benchmarks/performance/pgd.py``; figures in the README): it
asks autograd for the input gradient only (``torch.autograd.grad``), so no weight
gradients are computed or stored, where ART's ``loss_gradient`` calls ``backward()`` and
fills every parameter's ``.grad``; it also keeps the batch on the module's device between
steps instead of a NumPy round trip per step.

Conventions: inputs are images in [0, 1] and stay there; ``eps`` is the radius of the
threat model in those intensity units (L-inf: per pixel; L2: the Euclidean norm of the
whole perturbation of one image); the step is ``2.5 * eps / steps`` (Madry et al.'s
choice, eps/4 at 10 steps); the random start is uniform in the L-inf ball, or uniform in
the L2 ball. With several restarts each example keeps the restart with the largest margin
``z_wrong - z_true`` at the end. The loss is cross-entropy on the module's logits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

Norm = Literal["inf", "2"]


def module_device(module: nn.Module) -> torch.device:
    """The device of the module's first parameter or buffer (CPU for a parameterless one)."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def _flat_norm(t: torch.Tensor) -> torch.Tensor:
    """L2 norm of each example, shaped to broadcast against ``t``."""
    return t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (t.dim() - 1)))


def _random_start(
    x: torch.Tensor, eps: float, norm: Norm, generator: torch.Generator
) -> torch.Tensor:
    """A perturbation drawn uniformly from the eps-ball (drawn on the CPU: reproducible on
    any device)."""
    shape = tuple(x.shape)
    if norm == "inf":
        delta = (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * eps
    else:
        direction = torch.randn(shape, generator=generator, dtype=torch.float64)
        d = direction[0].numel()
        radius = torch.rand((shape[0],), generator=generator, dtype=torch.float64) ** (1 / d)
        delta = (
            direction / _flat_norm(direction) * (eps * radius).view(-1, *([1] * (len(shape) - 1)))
        )
    return delta.to(device=x.device, dtype=x.dtype)


def _project(adv: torch.Tensor, x: torch.Tensor, eps: float, norm: Norm) -> torch.Tensor:
    if norm == "inf":
        adv = torch.min(torch.max(adv, x - eps), x + eps)
    else:
        delta = adv - x
        delta = delta * (eps / _flat_norm(delta)).clamp(max=1.0)
        adv = x + delta
    return adv.clamp(0.0, 1.0)


def _step(grad: torch.Tensor, size: float, norm: Norm) -> torch.Tensor:
    return size * (grad.sign() if norm == "inf" else grad / _flat_norm(grad))


def pgd_batch(
    module: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    steps: int,
    norm: Norm = "inf",
    step_size: float | None = None,
    restarts: int = 1,
    generator: torch.Generator,
    random_start: bool = True,
) -> torch.Tensor:
    """Adversarial examples for one batch ``x`` (on the module's device) with labels ``y``.

    The module is put in eval mode for the attack and returned to its previous mode; the
    result is detached. Gradients are enabled inside, whatever the caller's grad mode.
    ``eps == 0`` returns ``x`` unchanged."""
    if eps < 0 or steps < 1 or restarts < 1:
        raise ValueError(
            f"PGD needs eps >= 0, steps >= 1, restarts >= 1; got {eps}, {steps}, {restarts}"
        )
    if eps == 0:
        return x.detach().clone()
    size = 2.5 * eps / steps if step_size is None else step_size
    was_training = module.training
    module.eval()
    best, best_margin = x.detach().clone(), None
    try:
        for _ in range(restarts):
            adv = x.detach().clone()
            if random_start:
                adv = _project(adv + _random_start(x, eps, norm, generator), x, eps, norm)
            for _ in range(steps):
                with torch.enable_grad():  # also when the caller is under no_grad
                    adv.requires_grad_(True)
                    loss = F.cross_entropy(module(adv), y)
                    (grad,) = torch.autograd.grad(loss, adv)  # the input gradient only
                adv = _project(adv.detach() + _step(grad, size, norm), x, eps, norm)
            if restarts == 1:
                return adv.detach()
            with torch.no_grad():
                z = module(adv)
                margin = z.gather(1, (1 - y)[:, None])[:, 0] - z.gather(1, y[:, None])[:, 0]
            if best_margin is None:
                best, best_margin = adv.detach(), margin
            else:
                better = margin > best_margin
                best = torch.where(better.view(-1, *([1] * (x.dim() - 1))), adv.detach(), best)
                best_margin = torch.where(better, margin, best_margin)
        return best
    finally:
        module.train(was_training)


def pgd(
    module: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    eps: float,
    *,
    steps: int = 10,
    norm: Norm = "inf",
    restarts: int = 1,
    seed: int = 0,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """PGD adversarial examples for NumPy images ``x`` (n, C, H, W) in [0, 1] and binary
    labels ``y``, batched on the module's device; float32 in, float32 out.
    ``progress(n_done)`` is called after each batch."""
    device = module_device(module)
    generator = torch.Generator().manual_seed(int(seed) % 2**63)
    out = np.empty_like(x, dtype=np.float32)
    for start in range(0, len(x), batch_size):
        xb = torch.as_tensor(x[start : start + batch_size], dtype=torch.float32, device=device)
        yb = torch.as_tensor(y[start : start + batch_size], dtype=torch.long, device=device)
        adv = pgd_batch(
            module, xb, yb, eps, steps=steps, norm=norm, restarts=restarts, generator=generator
        )
        out[start : start + len(xb)] = adv.cpu().numpy()
        if progress is not None:
            progress(len(xb))
    return out


def _per_example(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values`` (m,) shaped to broadcast against ``like`` (m, ...), in its dtype/device."""
    shape = (-1, *([1] * (like.dim() - 1)))
    return values.to(device=like.device, dtype=like.dtype).view(shape)


def _grid_batch(
    module: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    radii: list[float],
    *,
    steps: int,
    norm: Norm,
    fgsm: bool,
    generator: torch.Generator,
) -> torch.Tensor:
    """(len(radii), b, ...) adversarial examples of the batch ``x``: every radius in one
    forward pass; an example whose decision already flipped (the argmax of ``module`` is
    not ``y``) leaves the batch and keeps its current point (early exit)."""
    k = len(radii)
    xs, ys = x.repeat(k, *([1] * (x.dim() - 1))), y.repeat(k)
    eps = _per_example(torch.tensor(radii, dtype=torch.float64).repeat_interleave(len(x)), xs)
    if fgsm:  # one step of eps from the clean point: FGSM (Goodfellow et al. 2015)
        adv, size = xs.clone(), eps
    else:
        start = torch.cat([_random_start(x, r, norm, generator) for r in radii])
        adv, size = _project(xs + start, xs, eps, norm), 2.5 * eps / steps
    active = torch.arange(len(xs), device=xs.device)
    for _ in range(1 if fgsm else steps):
        with torch.enable_grad():
            point = adv[active].requires_grad_(True)
            z = module(point)
            # summed: each example's gradient, whatever the batch (L2 steps divide by its norm)
            loss = F.cross_entropy(z, ys[active], reduction="sum")
            (grad,) = torch.autograd.grad(loss, point)
        still = z.detach().argmax(dim=1) == ys[active]  # not flipped yet: keep attacking
        step = _step(grad, size[active], norm)
        moved = _project(point.detach() + step, xs[active], eps[active], norm)
        adv[active[still]] = moved[still]
        active = active[still]
        if len(active) == 0:
            break
    return adv.view(k, *x.shape)


def pgd_grid(
    module: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    radii: list[float],
    *,
    steps: int = 10,
    norm: Norm = "inf",
    fgsm: bool = False,
    seed: int = 0,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """PGD (or, with ``fgsm``, FGSM) at every radius of ``radii`` at once, for NumPy images
    ``x`` (n, C, H, W) in [0, 1] and binary labels ``y``: returns (len(radii), n, C, H, W)
    float32. Each batch holds ``batch_size`` images at every radius; an example leaves the
    attack once ``module``'s argmax differs from its label (early exit: the point that
    flipped it is kept, not pushed further), so flipped examples cost nothing more.
    Steps and random starts as :func:`pgd_batch` with one restart. ``progress(n_done)``
    hears each batch (images times radii)."""
    if not radii or min(radii) <= 0 or steps < 1:
        raise ValueError(f"pgd_grid needs radii > 0 and steps >= 1; got {radii}, {steps}")
    device = module_device(module)
    generator = torch.Generator().manual_seed(int(seed) % 2**63)
    out = np.empty((len(radii), *x.shape), dtype=np.float32)
    was_training = module.training
    module.eval()
    try:
        for start in range(0, len(x), batch_size):
            xb = torch.as_tensor(x[start : start + batch_size], dtype=torch.float32, device=device)
            yb = torch.as_tensor(y[start : start + batch_size], dtype=torch.long, device=device)
            adv = _grid_batch(
                module, xb, yb, radii, steps=steps, norm=norm, fgsm=fgsm, generator=generator
            )
            out[:, start : start + len(xb)] = adv.cpu().numpy()
            if progress is not None:
                progress(len(xb) * len(radii))
    finally:
        module.train(was_training)
    return out
