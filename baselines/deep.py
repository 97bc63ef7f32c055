"""Deep baselines for image and telemetry tasks: one seeded training loop for the registered
``image-cnn``, ``densenet121`` and ``series-transformer`` architectures, with every objective
of :mod:`baselines.objectives` (ERM, reweighting, mixup, CutMix, GroupDRO, adversarial
debiasing, DANN, CORAL) and PGD adversarial training.

Inputs follow the task contracts: images ``(n, C, H, W)`` float in [0, 1], series
``(n, C, T)`` float in physical units with NaN where missing; labels are int class indices.
Every run is seeded (torch, numpy, python ``random``, the batch order, flips and mixup draws)
and selects its model by :data:`SELECTION_RULE`. On CPU a run is bitwise reproducible for a
given seed and thread count; on CUDA it is seeded but not bitwise reproducible (see
:func:`_deterministic`).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from baselines import loop, objectives
from baselines.progress import OnEpoch
from baselines.saving import save_safetensors
from benchmark.models import architectures
from benchmark.perturbations.attacks import pgd_batch

SELECTION_RULE = (
    "the epoch with the lowest (unweighted) cross-entropy on the task's val split "
    "(in-distribution), with early stopping after `patience` epochs without improvement; "
    "no test split is used"
)
METHODS = (
    "erm",
    "reweight",
    "mixup",
    "pgd-at",
    "cutmix",
    "group-dro",
    "adversarial-debiasing",
    "dann",
    "coral",
)
IMAGE_METHODS = ("pgd-at", "cutmix")
IMAGE_ARCHITECTURES = ("image-cnn", "densenet121")
SERIES_ARCHITECTURES = ("series-transformer",)


@dataclass(frozen=True)
class DeepConfig:
    """Optimisation settings. ``augment``: random horizontal flips (p = 0.5 per image) for
    image architectures, ignored for series; ``num_threads``: CPU threads (None: min(4, cores)).
    """

    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    max_epochs: int = 30
    patience: int = 5
    mixup_alpha: float = 0.4  # used by mixup only: lambda ~ Beta(alpha, alpha)
    adv_eps: float = 4 / 255  # pgd-at only: L-inf radius in intensity units of [0, 1] images
    adv_steps: int = 7  # pgd-at only: PGD steps of adv_eps / 4 from a random start
    augment: bool = True
    num_threads: int | None = None


_DEFAULTS = {
    "image-cnn": DeepConfig(),
    "densenet121": DeepConfig(lr=3e-4, batch_size=32, max_epochs=20, patience=4),
    "series-transformer": DeepConfig(weight_decay=1e-2, max_epochs=40, patience=8, augment=False),
}


def default_config(arch: str) -> DeepConfig:
    """The default :class:`DeepConfig` for a deep architecture."""
    if arch not in _DEFAULTS:
        raise ValueError(f"no deep baseline for {arch!r}; one of {sorted(_DEFAULTS)}")
    return _DEFAULTS[arch]


def config_dict(config: DeepConfig) -> dict[str, Any]:
    return asdict(config)


def pick_device(device: str | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def _set_threads(n: int | None) -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(n or max(1, min(4, cores or 1)))


@contextmanager
def _deterministic(device: torch.device) -> Iterator[None]:
    """On CPU, ``torch.use_deterministic_algorithms(True)`` for the run (restored after).

    The CPU kernels used here are deterministic anyway; the flag is a guard that raises if a
    nondeterministic op slips in. It stays off on CUDA, where adaptive average pooling and
    max-pool backward have no deterministic kernels and would raise.
    """
    if device.type != "cpu":
        yield
        return
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def _tensor(a: np.ndarray, dtype: type[np.generic]) -> torch.Tensor:
    """A CPU tensor sharing ``a``'s memory where it can (copied if read-only or recast)."""
    arr = np.asarray(a, dtype=dtype)
    return torch.from_numpy(arr if arr.flags.writeable else arr.copy())


def _arch_defaults(arch: str, x: torch.Tensor, n_classes: int) -> dict[str, Any]:
    if arch in IMAGE_ARCHITECTURES:
        if x.dim() != 4:
            raise ValueError(f"{arch} needs images (n, C, H, W); got shape {tuple(x.shape)}")
        return {"in_channels": int(x.shape[1]), "n_classes": n_classes}
    if x.dim() != 3:
        raise ValueError(f"{arch} needs series (n, C, T); got shape {tuple(x.shape)}")
    return {"n_channels": int(x.shape[1]), "n_classes": n_classes, "max_len": max(256, x.shape[2])}


def train_network(
    arch: str,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    seed: int,
    method: str = "erm",
    sample_weight: np.ndarray | None = None,
    config: DeepConfig | None = None,
    device: str | None = None,
    arch_config: dict[str, Any] | None = None,
    on_epoch: OnEpoch | None = None,
    groups: np.ndarray | None = None,
    target: np.ndarray | None = None,
    init_state: dict[str, torch.Tensor] | None = None,
    params: dict[str, Any] | None = None,
) -> nn.Module:
    """Train ``arch`` with ``method`` (one of :data:`METHODS`); the selected model, on CPU,
    in eval mode. ``pgd-at`` (images only) trains on L-inf PGD examples of every batch
    (``config.adv_eps``, ``config.adv_steps`` steps of eps/4 from a random start, as Madry
    et al.; :func:`benchmark.perturbations.attacks.pgd_batch`).

    ``reweight`` needs ``sample_weight`` (one non-negative weight per training sample; the
    batch loss is the weighted mean cross-entropy); ``mixup`` interpolates normalised inputs
    and one-hot targets with lambda ~ Beta(alpha, alpha) per batch; ``group-dro`` and
    ``adversarial-debiasing`` need ``groups`` (one int code per training sample); ``dann``
    and ``coral`` need ``target`` (unlabelled inputs of the split the task allows); their
    settings are :data:`baselines.objectives.METHOD_PARAMS`, overridden by ``params``.
    ``init_state`` starts from given weights (transfer learning; the input statistics are
    still the training data's). ``arch_config`` overrides the architecture config read off
    the data (channels; ``n_classes`` = largest label + 1, at least 2). Optimiser AdamW;
    early stopping and selection by :data:`SELECTION_RULE`. Data stay on CPU; each batch is
    moved to ``device`` (None: CUDA when available). ``on_epoch`` hears each epoch:
    training loss, val loss and AUROC, ETA.
    """
    config = config or default_config(arch)
    if arch not in _DEFAULTS:
        raise ValueError(f"no deep baseline for {arch!r}; one of {sorted(_DEFAULTS)}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; one of {METHODS}")
    if (method == "reweight") != (sample_weight is not None):
        raise ValueError("sample_weight is required by, and only used with, method 'reweight'")
    if method in IMAGE_METHODS and arch not in IMAGE_ARCHITECTURES:
        raise ValueError(f"{method} trains image models; {arch} is not one")
    dev = pick_device(device)
    if dev.type == "cpu":
        _set_threads(config.num_threads)
    x, y = _tensor(X_train, np.float32), _tensor(y_train, np.int64)
    xv, yv = _tensor(X_val, np.float32), _tensor(y_val, np.int64)
    if len(x) != len(y) or len(xv) != len(yv) or len(y) == 0 or len(yv) == 0:
        raise ValueError("X and y must be non-empty and of the same length, for train and val")
    if min(int(y.min()), int(yv.min())) < 0:
        raise ValueError("labels must be class indices (>= 0)")
    w = torch.ones(len(y))
    if sample_weight is not None:
        w = _tensor(sample_weight, np.float32)
        if w.shape != y.shape or not bool(torch.isfinite(w).all()) or (w < 0).any() or w.sum() <= 0:
            raise ValueError("sample_weight: one finite weight >= 0 per sample, not all 0")
    n_classes = max(2, int(max(y.max(), yv.max())) + 1)
    flips = config.augment and arch in IMAGE_ARCHITECTURES

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA; before the weights are initialised
    rng = np.random.default_rng(seed)  # batch order, flips, mixup draws
    attack_rng = torch.Generator().manual_seed(seed)  # PGD random starts (pgd-at)
    model = architectures.build(arch, {**_arch_defaults(arch, x, n_classes), **(arch_config or {})})
    if init_state is not None:
        model.load_state_dict(init_state)
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
        groups=groups,
        target=None if target is None else _tensor(target, np.float32),
        params=params,
    )
    model.to(dev)

    def make_batch(i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xb = x[i]
        if flips:
            flip = torch.as_tensor(rng.random(len(i)) < 0.5)[:, None, None, None]
            xb = torch.where(flip, xb.flip(-1), xb)
        xb, yb = xb.to(dev), y[i].to(dev)
        if method == "pgd-at":
            xb = pgd_batch(
                model,
                xb,
                yb,
                config.adv_eps,
                steps=config.adv_steps,
                step_size=config.adv_eps / 4,
                generator=attack_rng,
            )
        return xb, yb

    with _deterministic(dev):
        try:
            best_state = loop.fit(
                model,
                objective,
                len(y),
                make_batch,
                lambda: _validate(model, xv, yv, dev),
                yv.numpy(),
                loop.Schedule.of(config),
                rng,
                device=dev,
                on_epoch=on_epoch,
            )
        except RuntimeError as e:
            raise RuntimeError(f"{arch}: {e}") from e
    model.cpu().load_state_dict(best_state)
    return model.eval()


def _validate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, dev: torch.device, chunk: int = 256
) -> tuple[float, np.ndarray]:
    """Mean (unweighted) cross-entropy in nats, and the class probabilities, in eval mode."""
    model.eval()
    total, proba = 0.0, []
    with torch.no_grad():
        for s in range(0, len(y), chunk):
            logits = model(x[s : s + chunk].to(dev))
            total += float(F.cross_entropy(logits, y[s : s + chunk].to(dev), reduction="sum"))
            proba.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
    return total / len(y), np.concatenate(proba)


def arch_name(module: nn.Module) -> str:
    """The registered name of ``module``'s architecture."""
    for name, cls in architectures.ARCHITECTURES.items():
        if type(module) is cls:
            return name
    raise ValueError(f"{type(module).__name__} is not a registered architecture")


def wavelet_sanitised(module: nn.Module, gradient: str = "none") -> nn.Module:
    """``module`` (a trained image network) behind wavelet denoising of its input
    (:class:`benchmark.models.architectures.WaveletSanitised`), in eval mode."""
    wrapped = architectures.WaveletSanitised(arch_name(module), module.config, gradient=gradient)
    wrapped.inner.load_state_dict(module.state_dict())
    return wrapped.to(next(module.parameters()).device).eval()


def save_network(module: nn.Module, path: str) -> None:
    """safetensors weights with the architecture (``medfail.arch``) and its config
    (``medfail.config``, JSON) in the metadata; ``safetensors:PATH`` loads it back."""
    meta = {"medfail.arch": arch_name(module), "medfail.config": json.dumps(module.config)}
    save_safetensors(module.state_dict(), meta, path)


def load_network(path: str) -> nn.Module:
    """A network saved by :func:`save_network`, on CPU, in eval mode (as ``load_model`` does:
    build from the metadata, then a strict ``load_state_dict``)."""
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
        state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    module = architectures.build(meta["medfail.arch"], json.loads(meta["medfail.config"]))
    module.load_state_dict(state, strict=True)
    return module.eval()
