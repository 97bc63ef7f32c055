"""Registered network architectures, so weights (safetensors) can be loaded without code.

A registered architecture is built from a JSON-able config; the config travels in the
safetensors metadata (``medfail.arch``, ``medfail.config``) or is read off the weights'
shapes. Every architecture takes the task's input contract and returns logits
``(n, n_classes)``, has ``embed`` (the penultimate representation, ``(n, d)``), keeps its
input normalisation statistics as buffers (set from training data by ``set_input_stats``)
and exposes ``prepare`` (normalised input) and ``from_prepared`` (logits from it), so that
mixup can interpolate normalised inputs.

Input contracts: tabular rows ``(n, features)``; images ``(n, C, H, W)`` in [0, 1];
series ``(n, C, T)`` in physical units, one step per minute, NaN where missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from benchmark.common.optional import heavy
from benchmark.errors import MedFailError


class TabularMLP(nn.Module):
    """Impute (train medians), standardise (train mean/std), then an MLP with ReLU + dropout.

    Input: :class:`benchmark.tasks.features.TabularEncoding` rows (NaN allowed). Output: logits.
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

    def embed_prepared(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)

    def classify(self, h: torch.Tensor) -> torch.Tensor:
        """Logits from the representation ``embed_prepared`` returns."""
        return self.head(h)

    def from_prepared(self, z: torch.Tensor) -> torch.Tensor:
        """Logits from prepared inputs (mixup interpolates there)."""
        return self.classify(self.embed_prepared(z))

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


def channel_stats(x: torch.Tensor, chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """NaN-aware per-channel mean and std of ``x`` (channels on dim 1, reduced over all others).

    Two passes in float64, chunked over samples. A channel never observed gets mean 0; std
    is 1 where it is undefined (under 2 values) or 0, so standardising never divides by 0.
    """
    c = x.shape[1]
    count = torch.zeros(c, dtype=torch.float64)
    total = torch.zeros(c, dtype=torch.float64)
    squares = torch.zeros(c, dtype=torch.float64)

    def parts() -> Iterator[torch.Tensor]:  # (C, values) per chunk; never all of x copied
        for i in range(0, len(x), chunk):
            yield x[i : i + chunk].transpose(0, 1).reshape(c, -1)

    for part in parts():
        seen = ~torch.isnan(part)
        count += seen.sum(dim=1)
        total += torch.where(seen, part.double(), 0.0).sum(dim=1)
    mean = torch.where(count > 0, total / count.clamp(min=1), 0.0)
    for part in parts():
        dev = part.double() - mean[:, None]
        squares += torch.where(torch.isnan(dev), 0.0, dev * dev).sum(dim=1)
    std = (squares / (count - 1).clamp(min=1)).sqrt()
    std = torch.where((count > 1) & (std > 0), std, 1.0)
    return mean.float(), std.float()


class _Standardised(nn.Module):
    """Per-channel standardisation with train statistics held in buffers ``mean``/``std``.

    Subclasses define ``prepare`` (raw input -> normalised input), ``embed_prepared``
    (normalised input -> penultimate features) and ``from_prepared`` (-> logits).
    """

    def _init_stats(self, channels: int) -> None:
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))

    def set_input_stats(self, x: torch.Tensor) -> None:
        """Per-channel mean and std of the training inputs ``(n, C, ...)`` (NaN ignored)."""
        mean, std = channel_stats(x.detach().cpu())
        self.mean.copy_(mean)
        self.std.copy_(std)

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / std`` per channel, with NaN replaced by 0 (the train mean)."""
        shape = (1, -1) + (1,) * (x.dim() - 2)
        z = (x - self.mean.view(shape)) / self.std.view(shape)
        return torch.where(torch.isnan(z), 0.0, z)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return self.standardise(x)

    def embed_prepared(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def classify(self, h: torch.Tensor) -> torch.Tensor:
        """Logits from the representation ``embed_prepared`` returns (domain-adaptation
        losses read the representation and the logits from one forward pass)."""
        raise NotImplementedError

    def from_prepared(self, z: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed_prepared(z))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate representation ``(n, d)`` (used by shift diagnostics)."""
        return self.embed_prepared(self.prepare(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_prepared(self.prepare(x))


class ImageCNN(_Standardised):
    """A small CNN for images ``(n, C, H, W)`` in [0, 1]: per-channel standardisation (train
    statistics), blocks of conv3x3-BN-ReLU-maxpool2 (``widths`` channels), global average
    pooling, dropout and a linear head. Any H, W >= 1 works (pooling rounds up)."""

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 2,
        widths: Sequence[int] = (16, 32, 64, 64),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.config = {
            "in_channels": in_channels,
            "n_classes": n_classes,
            "widths": list(widths),
            "dropout": dropout,
        }
        self._init_stats(in_channels)
        layers: list[nn.Module] = []
        width = in_channels
        for w in widths:
            layers += [
                nn.Conv2d(width, w, 3, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            width = w
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, n_classes)

    def embed_prepared(self, z: torch.Tensor) -> torch.Tensor:
        return self.features(z)

    def classify(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(h))

    @staticmethod
    def config_from_weights(state: dict[str, torch.Tensor]) -> dict[str, Any]:
        convs = sorted(
            (k for k in state if k.startswith("features.") and state[k].dim() == 4),
            key=lambda k: int(k.split(".")[1]),
        )
        return {
            "in_channels": int(state["mean"].shape[0]),
            "n_classes": int(state["head.weight"].shape[0]),
            "widths": [int(state[k].shape[0]) for k in convs],
        }


class DenseNet121(_Standardised):
    """MONAI's 2D DenseNet-121 (random init; no pretrained weights) behind per-channel
    standardisation of images ``(n, C, H, W)`` in [0, 1]. Needs H, W >= 32. ``embed`` is the
    1024-d globally pooled feature vector the classifier reads."""

    def __init__(self, in_channels: int = 1, n_classes: int = 2, pretrained: bool = False) -> None:
        if pretrained:
            raise ValueError("densenet121: pretrained weights are not available; use false")
        MonaiDenseNet121 = heavy("monai.networks.nets", "DenseNet121")

        super().__init__()
        self.config = {"in_channels": in_channels, "n_classes": n_classes, "pretrained": False}
        self._init_stats(in_channels)
        self.net = MonaiDenseNet121(
            spatial_dims=2, in_channels=in_channels, out_channels=n_classes, pretrained=False
        )

    def embed_prepared(self, z: torch.Tensor) -> torch.Tensor:
        head = self.net.class_layers  # relu -> pool -> flatten -> out
        return head.flatten(head.pool(head.relu(self.net.features(z))))

    def classify(self, h: torch.Tensor) -> torch.Tensor:
        return self.net.class_layers.out(h)

    @staticmethod
    def config_from_weights(state: dict[str, torch.Tensor]) -> dict[str, Any]:
        return {
            "in_channels": int(state["net.features.conv0.weight"].shape[1]),
            "n_classes": int(state["net.class_layers.out.weight"].shape[0]),
        }


class SeriesTransformer(_Standardised):
    """A transformer encoder over time for telemetry ``(n, C, T)`` (NaN = missing).

    Each channel is standardised with train statistics (NaN-aware), NaN becomes 0 and C
    missing-indicator channels are appended; non-overlapping patches of ``patch`` steps
    (the tail padded as missing) are embedded linearly, a [CLS] token and learned positional
    embeddings are added, then ``n_layers`` pre-norm encoder layers attend over time. The
    [CLS] output is ``embed``; a linear head gives logits. ``max_len`` is the longest series
    accepted, in time steps.
    """

    #: Config entries that count layers, and the tensors each layer holds in a weights file.
    COUNTS: ClassVar[dict[str, int]] = {"n_layers": 12}

    def __init__(
        self,
        n_channels: int = 5,
        n_classes: int = 2,
        d_model: int = 32,
        n_heads: int = 4,
        n_layers: int = 2,
        patch: int = 4,
        dropout: float = 0.1,
        max_len: int = 256,
    ) -> None:
        if d_model % n_heads or patch < 1 or max_len < 1:
            raise ValueError("need d_model divisible by n_heads, patch >= 1 and max_len >= 1")
        super().__init__()
        self.config = {
            "n_channels": n_channels,
            "n_classes": n_classes,
            "d_model": d_model,
            "n_heads": n_heads,
            "n_layers": n_layers,
            "patch": patch,
            "dropout": dropout,
            "max_len": max_len,
        }
        self._init_stats(n_channels)
        self.patch = patch
        self.n_tokens = math.ceil(max_len / patch)
        self.patch_embed = nn.Linear(2 * n_channels * patch, d_model)
        self.cls = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, self.n_tokens + 1, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, 2 * d_model, dropout, batch_first=True, norm_first=True
        )
        # nested tensors would only warn (they are unused with norm_first)
        self.encoder = nn.TransformerEncoder(
            layer, n_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, n_classes)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, C, T)`` -> ``(n, 2C, T)``: standardised values (NaN -> 0), then indicators."""
        return torch.cat([self.standardise(x), torch.isnan(x).to(x.dtype)], dim=1)

    def embed_prepared(self, z: torch.Tensor) -> torch.Tensor:
        n, width, steps = z.shape
        tokens = math.ceil(steps / self.patch)
        if tokens > self.n_tokens:
            raise ValueError(f"series of {steps} steps is longer than max_len")
        pad = tokens * self.patch - steps
        if pad:  # padded steps read as missing: value 0, indicator 1
            half = width // 2
            z = torch.cat(
                [F.pad(z[:, :half], (0, pad)), F.pad(z[:, half:], (0, pad), value=1.0)], 1
            )
        patches = z.reshape(n, width, tokens, self.patch).transpose(1, 2).reshape(n, tokens, -1)
        h = torch.cat([self.cls.expand(n, -1, -1), self.patch_embed(patches)], dim=1)
        return self.encoder(h + self.pos[:, : tokens + 1])[:, 0]

    def classify(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(h))


class WaveletSanitised(nn.Module):
    """An image network behind input sanitisation by wavelet denoising (a proposed
    adversarial defence), for images ``(n, C, H, W)`` in [0, 1].

    Each image is denoised by scikit-image's ``denoise_wavelet`` (BayesShrink, soft
    thresholding, ``wavelet``, noise level estimated per image), clipped to [0, 1] and
    passed to ``inner`` (a registered image architecture, built from ``inner_config``).
    The denoiser runs in NumPy, so it has no gradient. ``gradient``: ``"none"`` is the
    sanitiser as deployed: the input gradient is exactly zero, which masks gradients, and
    the adversarial probe's badge must say so; ``"bpda"`` passes the gradient through the
    denoiser as the identity (Athalye et al.'s BPDA), the honest white-box evaluation.
    """

    def __init__(
        self,
        inner: str = "image-cnn",
        inner_config: dict[str, Any] | None = None,
        wavelet: str = "db1",
        gradient: str = "none",
    ) -> None:
        if inner not in ("image-cnn", "densenet121"):
            raise ValueError(f"inner must be an image architecture, got {inner!r}")
        if gradient not in ("none", "bpda"):
            raise ValueError(f"gradient must be 'none' or 'bpda', got {gradient!r}")
        super().__init__()
        self.inner = build(inner, inner_config or {})
        self.gradient = gradient
        self.wavelet = wavelet
        self.config = {
            "inner": inner,
            "inner_config": self.inner.config,
            "wavelet": wavelet,
            "gradient": gradient,
        }

    def _denoise(self, image: np.ndarray) -> np.ndarray:
        """One image ``(C, H, W)``; returned as is when its finest diagonal wavelet detail
        is all zero (no noise to estimate: scikit-image's estimate would be undefined)."""
        pywt = heavy("pywt")
        denoise_wavelet = heavy("skimage.restoration", "denoise_wavelet")

        if not np.any(pywt.dwt2(image, self.wavelet, axes=(-2, -1))[1][2]):
            return image
        return denoise_wavelet(
            image,
            wavelet=self.wavelet,
            method="BayesShrink",
            mode="soft",
            rescale_sigma=True,
            channel_axis=0,
        )

    def sanitise(self, x: torch.Tensor) -> torch.Tensor:
        images = x.detach().cpu().numpy().astype("float64")
        clean = np.clip(np.stack([self._denoise(img) for img in images]), 0.0, 1.0)
        d = torch.as_tensor(clean, dtype=x.dtype, device=x.device)
        if self.gradient == "bpda":
            return x + (d - x).detach()
        return d + 0 * x  # connected, so attacks run, but the input gradient is exactly 0

    def set_input_stats(self, x: torch.Tensor) -> None:
        self.inner.set_input_stats(x)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.prepare(self.sanitise(x))

    def from_prepared(self, z: torch.Tensor) -> torch.Tensor:
        return self.inner.from_prepared(z)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.embed(self.sanitise(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(self.sanitise(x))


ARCHITECTURES: dict[str, type[nn.Module]] = {
    "tabular-mlp": TabularMLP,
    "image-cnn": ImageCNN,
    "densenet121": DenseNet121,
    "series-transformer": SeriesTransformer,
    "wavelet-sanitised": WaveletSanitised,
}


def build(name: str, config: dict[str, Any]) -> nn.Module:
    """Instantiate a registered architecture; unknown names and bad configs are errors."""
    if name not in ARCHITECTURES:
        raise MedFailError(f"unknown architecture {name!r}; registered: {sorted(ARCHITECTURES)}")
    try:
        return ARCHITECTURES[name](**config)
    except (TypeError, ValueError) as e:
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
