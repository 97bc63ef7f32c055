"""The training loss every torch baseline uses, so ERM, reweighting and mixup mean the same
thing for tabular, image and series models."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def training_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    method: str,
    mixup_alpha: float,
    rng: np.random.Generator,
) -> torch.Tensor:
    """Cross-entropy of one batch, in nats.

    ``erm``/``reweight``: the ``w``-weighted mean (``w`` = 1 for ERM). ``mixup``: inputs
    interpolated after the model's own normalisation (``model.prepare``; logits from
    ``model.from_prepared``) with a batch permutation, lambda ~ Beta(alpha, alpha), and the
    cross-entropy against the interpolated one-hot targets.
    """
    if method != "mixup":
        per = F.cross_entropy(model(x), y, reduction="none")
        return (per * w).sum() / w.sum()
    lam = float(rng.beta(mixup_alpha, mixup_alpha))
    perm = torch.as_tensor(rng.permutation(len(y)), device=x.device)
    z = model.prepare(x)
    logits = model.from_prepared(lam * z + (1 - lam) * z[perm])
    return lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])
