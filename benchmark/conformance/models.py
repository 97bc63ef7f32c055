"""``check_model``: the Model contract (:class:`benchmark.models.protocol.Model`).

A model turns a batch of a task's inputs into probabilities ``(n, n_classes)``. On a
seeded sample of ``split`` the kit checks: valid probabilities (finite, in [0, 1], rows
summing to 1), the same output twice, rows that follow their inputs (reversed inputs give
reversed outputs) and outputs that do not depend on the batch (the first half alone gives
the first half of the whole). A model offering ``embed`` must return one finite row per
input; a recorded ``info`` must be a ModelInfo. Tolerance: 1e-6 (batched float kernels).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from benchmark.conformance.errors import require
from benchmark.errors import PredictionError
from benchmark.models.protocol import Model, capabilities
from benchmark.results.report import ModelInfo
from benchmark.scoring.predictions import check_proba
from benchmark.tasks.task import Task

TOL = 1e-6


def _rows(batch: Any, rows: np.ndarray) -> Any:
    return batch.iloc[rows] if isinstance(batch, pd.DataFrame) else batch[rows]


def _predictor(model: Model, ids: np.ndarray) -> Callable[[Any, np.ndarray], np.ndarray]:
    """How the scorer asks: by sample id for a predictions file, else on the inputs."""
    by_id = getattr(model, "predict_ids", None)
    if callable(by_id):
        return lambda batch, rows: np.asarray(by_id(ids[rows]))
    return lambda batch, rows: np.asarray(model.predict_proba(_rows(batch, rows)))


def check_model(model: Model, task: Task, split: str = "val", n: int = 64, seed: int = 0) -> None:
    """Check ``model`` on ``n`` seeded samples of ``task``'s ``split``; raises
    :class:`~benchmark.conformance.ConformanceError` naming the first broken rule."""
    what = f"model {type(model).__name__}"
    require(callable(getattr(model, "predict_proba", None)), what, "has no predict_proba(batch)")
    X, _, meta = task.split(split)
    ids = meta["sample_id"].to_numpy(dtype=str)
    rows = np.sort(np.random.default_rng(seed).permutation(len(ids))[: min(n, len(ids))])
    k = len(task.spec.label.classes)
    predict = _predictor(model, ids)
    try:
        whole = check_proba(predict(X, rows), ids[rows], k, f"{task.spec.ref} {split}")
    except PredictionError as e:
        require(False, what, str(e))
    again = check_proba(predict(X, rows), ids[rows], k, split)
    require(np.allclose(whole, again, rtol=0, atol=TOL), what, "two calls on one batch differ")
    reverse = check_proba(predict(X, rows[::-1]), ids[rows[::-1]], k, split)
    require(
        np.allclose(reverse[::-1], whole, rtol=0, atol=TOL),
        what,
        "reversed inputs do not give reversed outputs (a row's output depends on its position)",
    )
    half = rows[: len(rows) // 2]
    part = check_proba(predict(X, half), ids[half], k, split)
    require(
        np.allclose(part, whole[: len(half)], rtol=0, atol=TOL),
        what,
        "a row's output depends on the other rows in its batch",
    )
    if "embed" in capabilities(model):
        emb = np.asarray(model.embed(_rows(X, rows)))  # type: ignore[attr-defined]
        require(
            emb.ndim == 2 and len(emb) == len(rows) and bool(np.isfinite(emb).all()),
            what,
            f"embed must return one finite row per input, got shape {emb.shape}",
        )
    info = getattr(model, "info", None)
    require(info is None or isinstance(info, ModelInfo), what, "info must be a ModelInfo")
