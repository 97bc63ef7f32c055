"""What a training loop tells the person waiting for it: one record per epoch.

Each epoch reports the mean training loss over its batches, the validation cross-entropy
and AUROC (binary tasks; the selection split is ``val``), the time so far and an estimate
of the time left. Early stopping can end training before ``max_epochs``, so the estimate
is an upper bound and is shown as ``ETA <= ...``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score


@dataclass(frozen=True)
class EpochLog:
    """One finished epoch (``epoch`` counts from 1); losses in nats per sample."""

    epoch: int
    max_epochs: int
    train_loss: float
    val_loss: float
    val_auroc: float | None
    seconds: float  # since training started

    @property
    def eta_seconds(self) -> float:
        """Time left if every remaining epoch runs (early stopping may end sooner)."""
        return self.seconds / self.epoch * (self.max_epochs - self.epoch)

    def line(self) -> str:
        auroc = "" if self.val_auroc is None else f"  val AUROC {self.val_auroc:.3f}"
        return (
            f"epoch {self.epoch}/{self.max_epochs}  loss {self.train_loss:.4f}  "
            f"val loss {self.val_loss:.4f}{auroc}  ETA <= {clock(self.eta_seconds)}"
        )


OnEpoch = Callable[[EpochLog], None]


def clock(seconds: float) -> str:
    """``45s``, ``3m05s`` or ``1h02m``."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def val_auroc(y: np.ndarray, proba: np.ndarray) -> float | None:
    """AUROC of the positive-class probability on val (binary tasks with both classes)."""
    if proba.shape[1] != 2 or len(np.unique(y)) != 2:
        return None
    return float(roc_auc_score(y, proba[:, 1]))


class EpochMeter:
    """Accumulates batch losses and reports each epoch to ``on_epoch`` (None: silent)."""

    def __init__(self, max_epochs: int, on_epoch: OnEpoch | None) -> None:
        self.max_epochs, self.on_epoch = max_epochs, on_epoch
        self.start = time.monotonic()
        self._sum, self._n = 0.0, 0

    def batch(self, loss: float, n: int) -> None:
        """One batch's mean loss over its ``n`` samples."""
        self._sum += loss * n
        self._n += n

    def end(self, epoch: int, val_loss: float, y_val: np.ndarray, val_proba: np.ndarray) -> None:
        """Close epoch ``epoch`` (from 0) and report it."""
        if self.on_epoch is not None:
            self.on_epoch(
                EpochLog(
                    epoch=epoch + 1,
                    max_epochs=self.max_epochs,
                    train_loss=self._sum / max(self._n, 1),
                    val_loss=val_loss,
                    val_auroc=val_auroc(y_val, val_proba),
                    seconds=time.monotonic() - self.start,
                )
            )
        self._sum, self._n = 0.0, 0
