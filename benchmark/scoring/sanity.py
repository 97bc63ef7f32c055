"""The model-randomisation sanity check of an attribution method (Adebayo et al., 2018).

A map that explains the model must change when the model does. The check re-initialises
the model's parametrised layers one at a time from the output back to the input (cascading
randomisation, seeded), recomputes the maps after each step and compares them with the
trained model's maps: Spearman's rank correlation of the absolute maps and SSIM
(scikit-image ``structural_similarity``, data range of the trained maps), averaged over the
images. A method *passes* when, with every layer randomised, the mean rank correlation is
below :data:`MAX_RANK_CORRELATION`; a method that fails is marked in the report and its
alignment numbers are withheld. An "explainer" that returns the input image fails: its
maps do not depend on the model at all.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from skimage.metrics import structural_similarity

from benchmark.stats.alignment import rank_correlation

#: With every layer randomised, maps whose mean rank correlation with the trained model's
#: stays at or above this have not changed enough to be explaining the model.
MAX_RANK_CORRELATION = 0.5

#: ``explainer(module, images)`` -> maps (n, H, W).
Explainer = Callable[[torch.nn.Module, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class CascadeStep:
    """The maps after randomising ``layer`` and every layer above it."""

    layer: str
    rank_correlation: float
    ssim: float


@dataclass(frozen=True)
class SanityResult:
    steps: list[CascadeStep]
    passed: bool
    reason: str


def _layers(module: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """Leaf modules with parameters, output side first."""
    leaves = [
        (name, m)
        for name, m in module.named_modules()
        if not list(m.children()) and any(True for _ in m.parameters(recurse=False))
    ]
    return leaves[::-1]


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    values = []
    for x, y in zip(a, b, strict=True):
        span = float(x.max() - x.min()) or 1.0
        values.append(structural_similarity(x, y, data_range=span))
    return float(np.mean(values))


def _blocks(
    layers: list[tuple[str, torch.nn.Module]], blocks: int | None
) -> list[list[tuple[str, torch.nn.Module]]]:
    """The layers in at most ``blocks`` contiguous groups (None: one layer per step)."""
    if blocks is None or blocks >= len(layers):
        return [[layer] for layer in layers]
    cuts = np.array_split(np.arange(len(layers)), blocks)
    return [[layers[i] for i in part] for part in cuts]


def cascading_randomisation(
    module: torch.nn.Module,
    images: np.ndarray,
    explainer: Explainer,
    *,
    seed: int = 0,
    blocks: int | None = None,
) -> SanityResult:
    """Randomise ``module``'s layers from the output back (on a copy), and compare each
    step's maps with the trained model's. ``blocks``: randomise the layers in at most this
    many contiguous groups, one group per step (a deep network's 100+ layers one at a time
    cost 100+ recomputations of the maps); a step is named by its group's last layer."""
    trained = np.abs(explainer(module, images))
    model = copy.deepcopy(module)
    generator = torch.Generator().manual_seed(seed)
    steps = []
    for group in _blocks(_layers(model), blocks):
        with torch.no_grad():
            for _, layer in group:
                for p in layer.parameters(recurse=False):
                    scale = p.detach().std().clamp(min=0.1)
                    p.copy_(torch.randn(p.shape, generator=generator) * scale)
        name = group[-1][0]
        maps = np.abs(explainer(model, images))
        # a map made constant by the randomisation has lost its structure: it has changed
        rho = float(np.nan_to_num(rank_correlation(trained, maps), nan=0.0).mean())
        steps.append(CascadeStep(name, rho, _ssim(trained, maps)))
    if not steps:
        return SanityResult([], False, "the model has no parametrised layer to randomise")
    last = steps[-1].rank_correlation
    passed = bool(last < MAX_RANK_CORRELATION)
    reason = (
        f"maps changed with the model (rank correlation {last:.2f} with every layer random)"
        if passed
        else f"maps barely depend on the model: rank correlation {last:.2f} >= "
        f"{MAX_RANK_CORRELATION} with every layer randomised"
    )
    return SanityResult(steps, passed, reason)
