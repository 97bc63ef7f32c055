"""Adapters that put torch modules and scikit-learn estimators behind the Model contract.

:func:`as_model` wraps either; a torch module's report records the sha256 of its weights
(:func:`weights_sha256`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from benchmark.errors import MedFailError
from benchmark.models.protocol import Batch, Encoder, Model, capabilities
from benchmark.results.report import ModelInfo


def weights_sha256(module: torch.nn.Module) -> str:
    """sha256 over the class name and every state-dict entry (name, dtype, shape, bytes)."""
    h = hashlib.sha256(type(module).__qualname__.encode())
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        # reshape: a 0-dim tensor (e.g. BatchNorm's num_batches_tracked) cannot be viewed as bytes
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _pick_device(device: str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class TorchClassifier:
    """A torch module returning logits, behind the Model contract (softmax applied here).

    ``encode`` turns a batch into a float array (tabular tasks: the task's
    :class:`~benchmark.tasks.features.TabularEncoding`); inference runs in eval mode without
    gradients, in chunks of ``batch_size``, on CUDA when available.
    """

    module: torch.nn.Module
    encode: Encoder | None = None
    batch_size: int = 4096
    device: str | None = None
    info: ModelInfo | None = field(default=None, repr=False)

    def _tensor(self, batch: Batch) -> torch.Tensor:
        x = self.encode(batch) if self.encode is not None else batch
        return torch.as_tensor(np.asarray(x, dtype=np.float32))

    def _run(self, batch: Batch, fn: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
        x = self._tensor(batch)
        dev = _pick_device(self.device)
        self.module.to(dev).eval()
        with torch.no_grad():
            parts = [
                fn(x[i : i + self.batch_size].to(dev)).cpu()
                for i in range(0, len(x), self.batch_size)
            ]
        return torch.cat(parts).double().numpy() if parts else np.zeros((0, 0))

    @classmethod
    def with_info(
        cls, module: torch.nn.Module, encode: Encoder | None, **info: Any
    ) -> TorchClassifier:
        """Wrap ``module``; its ModelInfo gets ``info`` plus the detected capabilities."""
        model = cls(module, encode=encode)
        model.info = ModelInfo(**info, capabilities=capabilities(model))
        return model

    def predict_proba(self, batch: Batch) -> np.ndarray:
        return self._run(batch, lambda x: torch.softmax(self.module(x).double(), dim=1))

    def __getattr__(self, name: str) -> Any:
        # ``embed`` exists exactly when the wrapped module has it (capability detection)
        if name == "embed" and callable(getattr(self.module, "embed", None)):
            return lambda batch: self._run(batch, self.module.embed)
        raise AttributeError(name)


@dataclass
class SklearnClassifier:
    """A fitted scikit-learn classifier (anything with ``predict_proba``)."""

    estimator: Any
    info: ModelInfo | None = field(default=None, repr=False)

    def predict_proba(self, batch: Batch) -> np.ndarray:
        return np.asarray(self.estimator.predict_proba(batch), dtype=np.float64)


def as_model(obj: Any, *, encode: Encoder | None = None, name: str | None = None) -> Model:
    """Wrap a torch module or a fitted estimator; a Model is returned unchanged."""
    if isinstance(obj, torch.nn.Module):
        return TorchClassifier.with_info(
            obj,
            encode,
            name=name or type(obj).__name__,
            adapter="torch-module",
            sha256=weights_sha256(obj),
            hash_of="weights",
        )
    if isinstance(obj, BaseEstimator):
        return SklearnClassifier(
            obj, info=ModelInfo(name=name or type(obj).__name__, adapter="sklearn")
        )
    if isinstance(obj, Model):
        return obj
    raise MedFailError(
        f"{type(obj).__name__} is not a model: it needs predict_proba(batch), or must be a "
        "torch.nn.Module returning logits"
    )
