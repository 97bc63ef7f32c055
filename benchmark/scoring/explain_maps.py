"""The part of the explanation probe that runs the model: attribution maps and their
sanity check (the probe itself, :mod:`benchmark.scoring.probes.explanation`, only scores
maps and loads this module when it has a model to run).

A model that exposes a differentiable torch module (``model.module``, returning logits)
gets the methods asked for; any other model that predicts gets occlusion, a perturbation
method that needs only ``predict_proba``, with the reason stated. Every map explains the
positive class (target 1): its logit for a module, its probability otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from benchmark.models.protocol import Model
from benchmark.scoring.attribution import METHODS, attribute, gradcam_layer, predict_forward
from benchmark.scoring.sanity import cascading_randomisation


@dataclass(frozen=True)
class MapSettings:
    """``ig_steps``: Integrated Gradients steps (zero baseline); ``window``: occlusion
    patch side in pixels (stride half of it, zero baseline); ``batch_size``: images per
    pass; ``sanity_blocks``: layer groups of the cascading randomisation."""

    ig_steps: int = 32
    window: int = 8
    batch_size: int = 64
    sanity_blocks: int = 6


@dataclass
class MapMaker:
    """Maps of ``model`` by each usable method, with how each was computed."""

    model: Model
    asked: list[str]
    settings: MapSettings
    methods: list[str] = field(init=False)
    notes: dict[str, str] = field(init=False)
    warnings: list[str] = field(init=False)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.asked) - set(METHODS))
        if unknown:
            raise ValueError(f"unknown attribution methods {unknown}; one of {list(METHODS)}")
        module = getattr(self.model, "module", None)
        self.module = module if isinstance(module, torch.nn.Module) else None
        self.warnings = []
        if self.module is None:
            self.methods = ["occlusion"]
            others = [m for m in self.asked if m != "occlusion"]
            self.warnings.append(
                "explanation probe: the model exposes no differentiable torch module, so "
                "occlusion only (a perturbation method: forward passes)"
                + (f", not {', '.join(others)}" if others else "")
            )
        else:
            self.methods = list(dict.fromkeys(self.asked))
        self.notes = {m: self._note(m) for m in self.methods}

    def _note(self, method: str) -> str:
        s = self.settings
        if method == "gradcam":
            assert self.module is not None
            layer, _ = gradcam_layer(self.module)
            return f"Grad-CAM on layer {layer!r} (the last Conv2d), ReLU, bilinear upsampling"
        if method == "integrated_gradients":
            return f"Integrated Gradients, zero baseline, {s.ig_steps} Gauss-Legendre steps"
        target = "logit" if self.module is not None else "probability"
        return (
            f"occlusion: {s.window}x{s.window} zero patches, stride {max(1, s.window // 2)}, "
            f"drop of the positive class's {target}"
        )

    def _forward(self) -> Any:
        if self.module is not None:
            return self.module
        return predict_forward(self.model.predict_proba)

    def maps(self, x: np.ndarray, method: str) -> np.ndarray:
        """Maps (n, H, W) of ``method`` for float32 images ``x`` (n, C, H, W)."""
        s = self.settings
        return attribute(
            self._forward(),
            x,
            method,
            target=1,
            batch_size=s.batch_size,
            steps=s.ig_steps,
            window=s.window,
        )

    def sanity(self, x: np.ndarray, method: str, seed: int) -> dict[str, Any]:
        """The cascading-randomisation check of ``method`` on images ``x``: ``passed``
        (None: not run), ``reason`` and the per-step rank correlation and SSIM."""
        if self.module is None:
            return {
                "passed": None,
                "reason": "not run: a model without a torch module has no layers to randomise",
                "steps": [],
            }
        s = self.settings

        def explainer(module: torch.nn.Module, images: np.ndarray) -> np.ndarray:
            return attribute(
                module,
                images,
                method,
                target=1,
                batch_size=s.batch_size,
                steps=s.ig_steps,
                window=s.window,
            )

        result = cascading_randomisation(
            self.module, x, explainer, seed=seed, blocks=s.sanity_blocks
        )
        steps = [
            {"layer": st.layer, "rank_correlation": st.rank_correlation, "ssim": st.ssim}
            for st in result.steps
        ]
        return {"passed": result.passed, "reason": result.reason, "steps": steps}
