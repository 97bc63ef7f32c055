"""The training loop the tabular MLP and the deep networks share.

AdamW over the model's and the objective's own parameters (an adversary, a domain head);
each epoch a seeded permutation split into ``len(y) // batch_size`` batches; the
objective's loss at its schedule position ``(epoch + b / batches) / max_epochs``; after each
epoch the val cross-entropy, and early stopping once it has not fallen by 1e-6 for
``patience`` epochs; the state with the lowest val loss is returned (the selection rule
the entries state). What differs between the families, how a batch is made (flips, PGD
examples, the device) and how val is scored, comes in as functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from baselines.objectives import Objective
from baselines.progress import EpochMeter, OnEpoch

#: Row indices of a batch -> its inputs and labels, ready for the model.
MakeBatch = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
#: () -> (val cross-entropy in nats, val class probabilities), in eval mode.
Validate = Callable[[], tuple[float, np.ndarray]]


@dataclass(frozen=True)
class Schedule:
    """The optimiser and stopping settings of one training run."""

    lr: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    patience: int

    @classmethod
    def of(cls, config: Any) -> Schedule:
        """The schedule of a family's config (any object with these five attributes)."""
        return cls(
            config.lr, config.weight_decay, config.batch_size, config.max_epochs, config.patience
        )


def fit(
    model: nn.Module,
    objective: Objective,
    n_train: int,
    make_batch: MakeBatch,
    validate: Validate,
    y_val: np.ndarray,
    schedule: Schedule,
    rng: np.random.Generator,
    *,
    device: torch.device | None = None,
    on_epoch: OnEpoch | None = None,
) -> dict[str, torch.Tensor]:
    """Train ``model`` (already on ``device``) with ``objective``; its best state, on CPU.
    A RuntimeError if the val loss was never finite (training diverged)."""
    extra = nn.ModuleList(objective.modules())
    extra.to(device or torch.device("cpu"))
    trained = [*model.parameters(), *extra.parameters()]
    opt = torch.optim.AdamW(trained, lr=schedule.lr, weight_decay=schedule.weight_decay)
    batches = max(1, n_train // schedule.batch_size)
    best, best_state, waited = np.inf, None, 0
    meter = EpochMeter(schedule.max_epochs, on_epoch)
    for epoch in range(schedule.max_epochs):
        model.train()
        extra.train()
        for b, idx in enumerate(np.array_split(rng.permutation(n_train), batches)):
            i = torch.as_tensor(idx)
            xb, yb = make_batch(i)
            opt.zero_grad(set_to_none=True)
            progress = (epoch + b / batches) / schedule.max_epochs
            loss = objective.loss(model, xb, yb, i, progress)
            loss.backward()
            opt.step()
            meter.batch(float(loss.detach()), len(idx))
        val_loss, val_proba = validate()
        meter.end(epoch, val_loss, y_val, val_proba)
        if val_loss < best - 1e-6:
            best, waited = val_loss, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
            if waited >= schedule.patience:
                break
    if best_state is None:
        raise RuntimeError("the val loss was never finite (training diverged)")
    return best_state
