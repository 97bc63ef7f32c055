"""Tabular baselines: an MLP in torch (with the objectives of :mod:`baselines.objectives`:
ERM, group reweighting, mixup, GroupDRO, adversarial debiasing, DANN, CORAL) and gradient
boosting.

Every run is seeded (torch, numpy and the batch order) and selects its model the same
way, recorded in :data:`SELECTION_RULE`; the full config is a plain dict that goes into
the leaderboard entry's metadata.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder
from torch import nn
from torch.nn import functional as F

from baselines import loop, objectives
from baselines.progress import OnEpoch
from baselines.saving import save_safetensors
from benchmark.models.architectures import TabularMLP
from benchmark.tasks.spec import GROUP_PREFIX
from benchmark.tasks.task import Task

SELECTION_RULE = (
    "the epoch (MLP) or boosting iteration (gradient boosting) with the lowest "
    "cross-entropy on the task's val split (in-distribution); no test split is used"
)


@dataclass(frozen=True)
class MLPConfig:
    hidden: tuple[int, ...] = (64, 64)
    dropout: float = 0.1
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    max_epochs: int = 100
    patience: int = 15
    mixup_alpha: float = 0.4  # used by mixup only: lambda ~ Beta(alpha, alpha)
    num_threads: int | None = None  # CPU threads (None: min(4, cores))


@dataclass(frozen=True)
class GBMConfig:
    learning_rate: float = 0.05
    max_iter: int = 300
    max_leaf_nodes: int = 15
    l2_regularization: float = 1.0
    n_iter_no_change: int = 20


def config_dict(config: MLPConfig | GBMConfig) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


MLP_METHODS = ("erm", "reweight", "mixup", "group-dro", "adversarial-debiasing", "dann", "coral")


def _group_key(meta: pd.DataFrame) -> pd.Series:
    """Each row's intersection of the task's attributes, as text (``F|<50``)."""
    cols = [c for c in meta.columns if c.startswith(GROUP_PREFIX)]
    if not cols:
        raise ValueError("the task defines no group attributes")
    return meta[cols].astype(str).agg("|".join, axis=1)


def group_weights(meta: pd.DataFrame) -> np.ndarray:
    """Group-balanced weights: each intersection of the task's attributes gets equal total
    weight, ``w_i = N / (G * n_g(i))`` (mean 1)."""
    key = _group_key(meta)
    counts = key.map(key.value_counts())
    return (len(key) / (key.nunique() * counts)).to_numpy(dtype=np.float64)


def group_codes(meta: pd.DataFrame) -> np.ndarray:
    """One int code per row for its intersection of the task's attributes (codes follow
    the sorted group names, so they do not depend on the row order)."""
    key = _group_key(meta)
    names = sorted(key.unique())
    return key.map({n: i for i, n in enumerate(names)}).to_numpy(dtype=np.int64)


def _set_threads(n: int | None) -> None:
    torch.set_num_threads(n or max(1, min(4, os.cpu_count() or 1)))


def train_mlp(
    task: Task,
    method: str,
    seed: int,
    config: MLPConfig = MLPConfig(),
    on_epoch: OnEpoch | None = None,
    target_split: str | None = None,
) -> TabularMLP:
    """Train the MLP with ``method`` (one of :data:`MLP_METHODS`); returns the selected
    model. dann and coral read the unlabelled features of ``target_split``. ``on_epoch``
    hears each epoch: training loss, val loss and AUROC, ETA."""
    if method not in MLP_METHODS:
        raise ValueError(f"unknown MLP method {method!r}")
    _set_threads(config.num_threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    enc = task.encoding()
    X, y, meta = task.split("train")
    Xv, yv, _ = task.split("val")
    x, yt = torch.tensor(enc(X)), torch.tensor(y)
    xv, yvt = torch.tensor(enc(Xv)), torch.tensor(yv)
    w = torch.tensor(group_weights(meta) if method == "reweight" else np.ones(len(y)))
    n_classes = len(task.spec.label.classes)
    model = TabularMLP(enc.width, n_classes, config.hidden, config.dropout)
    model.set_input_stats(x)
    objective = objectives.make(
        method,
        model,
        x,
        rng=rng,
        seed=seed,
        n_classes=n_classes,
        mixup_alpha=config.mixup_alpha,
        weights=w,
        groups=group_codes(meta) if method in objectives.GROUP_OBJECTIVES else None,
        target=torch.tensor(enc(task.split(target_split)[0])) if target_split else None,
    )

    def validate() -> tuple[float, np.ndarray]:
        model.eval()
        with torch.no_grad():
            logits = model(xv)
        return float(F.cross_entropy(logits, yvt)), torch.softmax(logits, dim=1).numpy()

    best_state = loop.fit(
        model,
        objective,
        len(y),
        lambda i: (x[i], yt[i]),
        validate,
        yv,
        loop.Schedule.of(config),
        rng,
        on_epoch=on_epoch,
    )
    model.load_state_dict(best_state)
    return model.eval()


def train_gbm(task: Task, seed: int, config: GBMConfig = GBMConfig()) -> Pipeline:
    """Histogram gradient boosting (ERM) on the raw features; categoricals ordinal-coded.

    Early stopping watches the task's val split (``X_val``), never a test split.
    """
    f = task.spec.features
    X, y, _ = task.split("train")
    Xv, yv, _ = task.split("val")
    coder = ColumnTransformer(
        [
            (
                "categorical",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                ),
                list(f.categorical),
            )
        ],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    gbm = HistGradientBoostingClassifier(
        learning_rate=config.learning_rate,
        max_iter=config.max_iter,
        max_leaf_nodes=config.max_leaf_nodes,
        l2_regularization=config.l2_regularization,
        early_stopping=True,
        n_iter_no_change=config.n_iter_no_change,
        categorical_features=list(range(len(f.categorical))),
        random_state=seed,
    )
    coder.fit(X)
    gbm.fit(coder.transform(X), y, X_val=coder.transform(Xv), y_val=yv)
    return Pipeline([("coder", coder), ("gbm", gbm)])


def save_mlp(model: nn.Module, path: str) -> None:
    """safetensors weights with the architecture and config in the metadata."""
    import json

    meta = {"medfail.arch": "tabular-mlp", "medfail.config": json.dumps(model.config)}
    save_safetensors(model.state_dict(), meta, path)
