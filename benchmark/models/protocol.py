"""The Model contract: one method, ``predict_proba(batch) -> (n, n_classes)`` probabilities.

Anything with that method is a model. Optional capabilities are detected, never assumed:

- ``module``: a differentiable ``torch.nn.Module`` returning logits (gradient probes);
- ``embed(batch)``: a representation ``(n, d)`` (shift diagnostics).

``batch`` is what the task hands out: for tabular tasks a feature ``DataFrame`` indexed by
``sample_id``. :func:`benchmark.models.adapters.as_model` wraps a torch module or a
scikit-learn estimator; files are loaded by :func:`benchmark.models.loading.load_model`.
This module imports no torch, so reading reports and ranking entries never loads it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from benchmark.results.report import ModelInfo

Batch = Any
Encoder = Callable[[Batch], np.ndarray]


@runtime_checkable
class Model(Protocol):
    def predict_proba(self, batch: Batch) -> np.ndarray: ...


def capabilities(model: Model) -> list[str]:
    """The optional capabilities a model offers, by detection."""
    found = []
    torch = sys.modules.get("torch")  # without torch loaded, nothing can be a torch module
    if torch is not None and isinstance(getattr(model, "module", None), torch.nn.Module):
        found.append("differentiable")
    if callable(getattr(model, "embed", None)):
        found.append("embed")
    return found


def model_info(model: Model, fallback_name: str) -> ModelInfo:
    """The model's recorded info, or a minimal one (hashed by its predictions later)."""
    info = getattr(model, "info", None)
    if isinstance(info, ModelInfo):
        return info.model_copy(update={"capabilities": capabilities(model)})
    return ModelInfo(name=fallback_name, adapter="python", capabilities=capabilities(model))


def frame_index(batch: Batch) -> pd.Index | None:
    """Sample ids of a batch: a DataFrame's index, or a ``.ids`` attribute."""
    if isinstance(batch, pd.DataFrame):
        return batch.index
    ids = getattr(batch, "ids", None)
    return pd.Index(ids) if ids is not None else None
