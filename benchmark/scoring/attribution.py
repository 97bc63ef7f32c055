"""Attribution maps for image models, batched, through captum.

:func:`attribute` returns one map per image, shape (n, H, W) at the input's resolution,
higher = more evidence for the ``target`` class (its logit), for three methods:

- ``gradcam``: Grad-CAM on the module's last ``Conv2d`` layer (:func:`gradcam_layer`
  names it), ReLU applied, upsampled bilinearly to the input size (captum
  ``LayerGradCam`` and ``LayerAttribution.interpolate``);
- ``integrated_gradients``: Integrated Gradients from an all-zero baseline image with
  ``steps`` Gauss-Legendre steps (captum's default rule), summed over channels (signed);
- ``occlusion``: the drop of the target's score when a ``window`` x ``window`` patch (all
  channels) is set to 0, stride ``window // 2``, averaged over the patches covering a
  pixel (captum ``Occlusion``). It needs only a forward function, so it also serves a
  model without gradients (a predictions-only ``predict_proba``; its score is then the
  target's probability, not its logit).

Images go through in batches of ``batch_size`` (Integrated Gradients: one image at a time,
its steps batched); a map with NaN or a constant value is
returned as is (the probe counts such maps: :func:`benchmark.stats.alignment.degenerate`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Occlusion

METHODS = ("gradcam", "integrated_gradients", "occlusion")

#: A forward function from a float tensor (b, C, H, W) to scores (b, n_classes).
Forward = Callable[[torch.Tensor], torch.Tensor]


def gradcam_layer(module: torch.nn.Module) -> tuple[str, torch.nn.Module]:
    """The last ``Conv2d`` of ``module`` (in registration order) and its dotted name."""
    convs = [(n, m) for n, m in module.named_modules() if isinstance(m, torch.nn.Conv2d)]
    if not convs:
        raise ValueError("Grad-CAM needs a Conv2d layer; the model has none")
    return convs[-1]


def predict_forward(predict_proba: Callable[[np.ndarray], np.ndarray]) -> Forward:
    """A gradient-free forward function around a ``predict_proba`` (for occlusion)."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        proba = predict_proba(x.detach().cpu().numpy().astype(np.float32))
        return torch.as_tensor(np.asarray(proba, dtype=np.float64))

    return forward


def _batches(x: np.ndarray, size: int) -> list[torch.Tensor]:
    t = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if t.ndim != 4:
        raise ValueError(f"images must be (n, C, H, W); got shape {tuple(t.shape)}")
    return [t[i : i + size] for i in range(0, len(t), size)]


def attribute(
    model: torch.nn.Module | Forward,
    x: np.ndarray,
    method: str,
    *,
    target: int = 1,
    batch_size: int = 64,
    steps: int = 32,
    window: int = 8,
) -> np.ndarray:
    """Maps (n, H, W) of ``method`` for images ``x`` (n, C, H, W); ``model`` is a module
    returning logits, or (occlusion only) a forward function."""
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; one of {', '.join(METHODS)}")
    is_module = isinstance(model, torch.nn.Module)
    if method != "occlusion" and not is_module:
        raise ValueError(f"{method} needs a torch module (gradients); use occlusion")
    if is_module:
        model.eval()
    if method == "integrated_gradients":
        # IG is batched over its steps already: one image's steps per pass measured faster
        # on a CPU than a batch of images one step at a time (what captum does with a
        # larger batch: its internal batch is at least the number of images): 36 against
        # 24 images/s on the small CNN (benchmarks/performance/attribution.py, 2 cores)
        batch_size = 1
    out = []
    for xb in _batches(x, batch_size):
        if method == "gradcam":
            assert isinstance(model, torch.nn.Module)
            _, layer = gradcam_layer(model)
            cam = LayerGradCam(model, layer).attribute(xb, target=target, relu_attributions=True)
            maps = LayerAttribution.interpolate(cam, tuple(xb.shape[2:]), "bilinear")[:, 0]
        elif method == "integrated_gradients":
            ig = IntegratedGradients(model)
            att = ig.attribute(xb, baselines=torch.zeros_like(xb), target=target, n_steps=steps)
            maps = att.sum(dim=1)
        else:
            channels = xb.shape[1]
            stride = max(1, window // 2)
            occ = Occlusion(model).attribute(
                xb,
                sliding_window_shapes=(channels, window, window),
                strides=(channels, stride, stride),
                baselines=0.0,
                target=target,
            )
            maps = occ.sum(dim=1)
        out.append(maps.detach().double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, *np.asarray(x).shape[2:]))
