"""Registered network architectures, so weights (safetensors) can be loaded without code.

A registered architecture is built from a JSON-able config; the config travels in the
safetensors metadata (``medfail.arch``, ``medfail.config``) or is read off the weights'
shapes. Every architecture takes the task's input contract and returns logits
``(n, n_classes)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from benchmark.errors import MedFailError


class TabularMLP(nn.Module):
    """Impute (train medians), standardise (train mean/std), then an MLP with ReLU + dropout.

    Input: :class:`benchmark.features.TabularEncoding` rows (NaN allowed). Output: logits.
    The imputation and scaling statistics are buffers, so they live in the weights file.
    """

    def __init__(
        self, n_in: int, n_classes: int, hidden: tuple[int, ...] = (64, 64), dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.config = {
            "n_in": n_in,
            "n_classes": n_classes,
            "hidden": list(hidden),
            "dropout": dropout,
        }
        self.register_buffer("center", torch.zeros(n_in))
        self.register_buffer("scale", torch.ones(n_in))
        self.register_buffer("fill", torch.zeros(n_in))
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_classes)

    def set_input_stats(self, x: torch.Tensor) -> None:
        """Medians for imputation, then mean and std (1 where constant) of the imputed data."""
        fill = torch.nan_to_num(torch.nanmedian(x, dim=0).values, nan=0.0)
        filled = torch.where(torch.isnan(x), fill, x)
        std = filled.std(dim=0)
        self.fill.copy_(fill)
        self.center.copy_(filled.mean(dim=0))
        self.scale.copy_(torch.where(std > 0, std, torch.ones_like(std)))

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Imputed and standardised inputs (what mixup interpolates)."""
        return (torch.where(torch.isnan(x), self.fill, x) - self.center) / self.scale

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer (used by shift diagnostics)."""
        return self.body(self.prepare(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))

    @staticmethod
    def config_from_weights(state: dict[str, torch.Tensor]) -> dict[str, Any]:
        linear = sorted(
            (k for k in state if k.startswith("body.") and k.endswith(".weight")),
            key=lambda k: int(k.split(".")[1]),  # numeric: body.12 comes after body.3
        )
        hidden = [int(state[k].shape[0]) for k in linear]
        return {
            "n_in": int(state["center"].shape[0]),
            "n_classes": int(state["head.weight"].shape[0]),
            "hidden": hidden,
        }


ARCHITECTURES: dict[str, type[nn.Module]] = {"tabular-mlp": TabularMLP}


def build(name: str, config: dict[str, Any]) -> nn.Module:
    """Instantiate a registered architecture; unknown names and bad configs are errors."""
    if name not in ARCHITECTURES:
        raise MedFailError(f"unknown architecture {name!r}; registered: {sorted(ARCHITECTURES)}")
    try:
        return ARCHITECTURES[name](**config)
    except TypeError as e:
        raise MedFailError(f"architecture {name!r}: bad config {config}: {e}") from e


def config_from_weights(name: str) -> Callable[[dict[str, torch.Tensor]], dict[str, Any]]:
    if name not in ARCHITECTURES:
        raise MedFailError(f"unknown architecture {name!r}; registered: {sorted(ARCHITECTURES)}")
    builder = ARCHITECTURES[name]
    if not hasattr(builder, "config_from_weights"):
        raise MedFailError(
            f"architecture {name!r} cannot be inferred from weights alone; "
            "save it as safetensors with medfail metadata"
        )
    return builder.config_from_weights
