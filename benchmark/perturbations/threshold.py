"""The decision at a frozen threshold as logits: what an attack on a binary decision attacks.

A binary model decides ``p1 >= t`` with ``t`` frozen on ``val``. Attacks written for
argmax decisions (ART's, MedFail's PGD) attack that decision once the logits are shifted
by ``logit(t)``: ``p1 >= t  <=>  z1 - z0 >= logit(t)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def decision_logit(threshold: float) -> float:
    """logit(t), with t kept inside (0, 1): p1 >= t  <=>  z1 - z0 >= logit(t)."""
    t = min(max(threshold, 1e-6), 1 - 1e-6)
    return math.log(t / (1 - t))


class ThresholdShift(nn.Module):
    """Logits whose argmax is the decision ``p1 >= t`` of the wrapped binary module."""

    def __init__(self, module: nn.Module, threshold: float) -> None:
        super().__init__()
        self.module = module
        self.register_buffer("shift", torch.tensor([0.0, -decision_logit(threshold)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x) + self.shift
