"""The corruption suite (ImageNet-C / MedMNIST-C style): named corruptions, five severities
each, grouped in families and tagged with the modalities they make sense for.

Images are float32 ``(n, C, H, W)`` in [0, 1] (what :meth:`benchmark.tasks.task.Task.split`
hands out); a corruption returns the same shape, clipped to [0, 1]. Each image gets its own
seed, derived from ``(seed, corruption, severity, sample id)``, so a corrupted image does not
depend on batch order, subsampling or thread count: the same call gives the same bytes.

Spatial parameters are stated in pixels at 28 px and scale with the image width (a 64 px
image gets a 64/28 times wider blur), so a severity means the same thing at every MedMNIST
size. Intensities are in units of the [0, 1] range. Transforms come from albumentations
and MONAI; the few written here say why in their docstring.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from benchmark.common.optional import heavy

# albumentations asks PyPI for a newer version at import (2 s timeout, a warning offline);
# a benchmark that must run offline and reproducibly opts out
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

SEVERITIES = (1, 2, 3, 4, 5)
REFERENCE_WIDTH = 28  # spatial parameters are given at this width and scaled

#: One image (H, W, C) float32 in [0, 1], its seed and the image width -> corrupted image.
ApplyFn = Callable[[np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class Corruption:
    """A corruption: its family, the modalities it applies to, and one parameter per
    severity with the parameter's name and unit (the card and report print them)."""

    name: str
    family: str
    parameter: str
    levels: tuple[float, ...]
    modalities: frozenset[str]
    make: Callable[[float, int], ApplyFn]  # (level, image width) -> per-image function
    rgb_only: bool = False

    def describe(self) -> str:
        levels = ", ".join(f"{v:g}" for v in self.levels)
        return f"{self.name} ({self.family}): {self.parameter} = {levels} at severities 1-5"


def _scale(width: int) -> float:
    return width / REFERENCE_WIDTH


def _album(factory: Callable[[], Any]) -> ApplyFn:
    """An albumentations transform, seeded per image."""
    transform = factory()

    def apply(img: np.ndarray, seed: int) -> np.ndarray:
        transform.set_random_seed(seed)
        return np.asarray(transform(image=img)["image"], dtype=np.float32)

    return apply


def _gaussian_noise(sigma: float, width: int) -> ApplyFn:
    import albumentations as A

    return _album(lambda: A.GaussNoise(std_range=(sigma, sigma), per_channel=True, p=1.0))


def _speckle_noise(half_width: float, width: int) -> ApplyFn:
    import albumentations as A

    return _album(
        lambda: A.MultiplicativeNoise(
            multiplier=(1 - half_width, 1 + half_width), elementwise=True, p=1.0
        )
    )


def _shot_noise(scale: float, width: int) -> ApplyFn:
    import albumentations as A

    return _album(lambda: A.ShotNoise(scale_range=(scale, scale), p=1.0))


def _salt_pepper(amount: float, width: int) -> ApplyFn:
    import albumentations as A

    return _album(
        lambda: A.SaltAndPepper(amount=(amount, amount), salt_vs_pepper=(0.5, 0.5), p=1.0)
    )


def _gaussian_blur(sigma: float, width: int) -> ApplyFn:
    import albumentations as A

    s = sigma * _scale(width)
    return _album(lambda: A.GaussianBlur(blur_limit=0, sigma_limit=(s, s), p=1.0))


def _odd(x: float) -> int:
    k = max(3, round(x))
    return k if k % 2 else k + 1


def _motion_blur(length: float, width: int) -> ApplyFn:
    import albumentations as A

    k = _odd(length * _scale(width))
    return _album(lambda: A.MotionBlur(blur_limit=(k, k), allow_shifted=False, p=1.0))


def _defocus(radius: float, width: int) -> ApplyFn:
    import albumentations as A

    r = max(1, round(radius * _scale(width)))
    return _album(lambda: A.Defocus(radius=(r, r), alias_blur=(0.1, 0.1), p=1.0))


def _jpeg(quality: float, width: int) -> ApplyFn:
    import albumentations as A

    q = int(quality)
    return _album(lambda: A.ImageCompression(quality_range=(q, q), p=1.0))


def _downscale(kind: str) -> Callable[[float, int], ApplyFn]:
    def make(scale: float, width: int) -> ApplyFn:
        import albumentations as A
        import cv2

        up = cv2.INTER_NEAREST if kind == "pixelate" else cv2.INTER_LINEAR
        pair = {"downscale": cv2.INTER_AREA, "upscale": up}
        return _album(
            lambda: A.Downscale(scale_range=(scale, scale), interpolation_pair=pair, p=1.0)
        )

    return make


def _brightness(delta: float, width: int) -> ApplyFn:
    import albumentations as A

    return _album(
        lambda: A.RandomBrightnessContrast(
            brightness_limit=(delta, delta), contrast_limit=(0, 0), p=1.0
        )
    )


def _gamma(gamma: float, width: int) -> ApplyFn:
    import albumentations as A

    g = 100 * gamma
    return _album(lambda: A.RandomGamma(gamma_limit=(g, g), p=1.0))


def _contrast(factor: float, width: int) -> ApplyFn:
    """(x - mean) * factor + mean per image, as ImageNet-C does. Written here because
    albumentations' contrast is a gain about 0, which also darkens the image."""

    def apply(img: np.ndarray, seed: int) -> np.ndarray:
        mean = img.mean(axis=(0, 1), keepdims=True)
        return (img - mean) * np.float32(factor) + mean

    return apply


def _bias_field(coeff: float, width: int) -> ApplyFn:
    """MONAI RandBiasField: a smooth multiplicative field exp(polynomial of degree 3)."""
    RandBiasField = heavy("monai.transforms", "RandBiasField")

    transform = RandBiasField(degree=3, coeff_range=(coeff, coeff), prob=1.0)

    def apply(img: np.ndarray, seed: int) -> np.ndarray:
        transform.set_random_state(seed=seed)
        out = transform(np.moveaxis(img, -1, 0))
        return np.moveaxis(np.asarray(out, dtype=np.float32), 0, -1)

    return apply


def _stain_shift(strength: float, width: int) -> ApplyFn:
    import albumentations as A

    return _album(
        lambda: A.HEStain(
            method="random_preset",
            intensity_scale_range=(1 - strength, 1 + strength),
            intensity_shift_range=(-strength / 2, strength / 2),
            augment_background=False,
            p=1.0,
        )
    )


def _occlusion(side: float, width: int) -> ApplyFn:
    import albumentations as A

    return _album(
        lambda: A.CoarseDropout(
            num_holes_range=(1, 1),
            hole_height_range=(side, side),
            hole_width_range=(side, side),
            fill=0,
            p=1.0,
        )
    )


def _markers(count: float, width: int) -> ApplyFn:
    """Bright square markers (lead side markers, skin ink dots, pen marks), side 3 px at
    28 px. Written here: albumentations has no opaque-marker overlay (its dropout fills
    holes, which would make this a copy of occlusion with another colour)."""
    n = int(count)
    side = max(2, round(3 * _scale(width)))

    def apply(img: np.ndarray, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        out = img.copy()
        h, w = img.shape[:2]
        for _ in range(n):
            y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            out[y : y + side, x : x + side] = 1.0
        return out

    return apply


def _text(lines: float, width: int) -> ApplyFn:
    """Burned-in annotation text (dates, ids) in white with Pillow's built-in font.
    Written here: albumentations' TextImage needs a font file and text boxes."""
    Image, ImageDraw = heavy("PIL", "Image", "ImageDraw")

    n = int(lines)
    size = max(6, round(7 * _scale(width)))
    font = font_of(size)

    def apply(img: np.ndarray, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        h, w = img.shape[:2]
        layer = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(layer)
        for _ in range(n):
            text = "".join(str(d) for d in rng.integers(0, 10, 6))
            at = (int(rng.integers(0, max(1, w // 3))), int(rng.integers(0, h)))
            draw.text(at, text, fill=255, font=font)
        alpha = np.asarray(layer, dtype=np.float32)[..., None] / 255.0
        return img * (1 - alpha) + alpha

    return apply


@cache
def font_of(size: int) -> Any:
    ImageFont = heavy("PIL", "ImageFont")

    return ImageFont.load_default(size=size)


RADIOLOGY = frozenset({"radiology"})
PATHOLOGY = frozenset({"pathology"})
DERMATOLOGY = frozenset({"dermatology"})
OPHTHALMOLOGY = frozenset({"ophthalmology"})
IMAGING = RADIOLOGY | PATHOLOGY | DERMATOLOGY | OPHTHALMOLOGY

#: The suite, in report order. Levels follow ImageNet-C's spacing where a counterpart exists.
CORRUPTIONS: dict[str, Corruption] = {
    c.name: c
    for c in (
        Corruption(
            "gaussian_noise",
            "noise",
            "noise SD (intensity)",
            (0.02, 0.04, 0.06, 0.09, 0.12),
            IMAGING,
            _gaussian_noise,
        ),
        Corruption(
            "speckle_noise",
            "noise",
            "multiplicative noise half-width",
            (0.1, 0.2, 0.3, 0.45, 0.6),
            RADIOLOGY,
            _speckle_noise,
        ),
        Corruption(
            "poisson_noise",
            "noise",
            "shot-noise scale (1 / photons per unit intensity)",
            (0.005, 0.01, 0.02, 0.04, 0.08),
            IMAGING,
            _shot_noise,
        ),
        Corruption(
            "salt_pepper",
            "noise",
            "share of pixels set to 0 or 1",
            (0.01, 0.02, 0.04, 0.07, 0.1),
            RADIOLOGY | DERMATOLOGY | OPHTHALMOLOGY,
            _salt_pepper,
        ),
        Corruption(
            "gaussian_blur",
            "blur",
            "Gaussian sigma (px at 28 px)",
            (0.4, 0.6, 0.8, 1.0, 1.3),
            IMAGING,
            _gaussian_blur,
        ),
        Corruption(
            "motion_blur",
            "blur",
            "kernel length (px at 28 px)",
            (3, 3.5, 4.5, 5.5, 7),
            IMAGING,
            _motion_blur,
        ),
        Corruption(
            "defocus_blur",
            "blur",
            "disc radius (px at 28 px)",
            (1, 1.4, 1.8, 2.3, 3),
            IMAGING,
            _defocus,
        ),
        Corruption("jpeg", "digital", "JPEG quality", (60, 40, 25, 15, 8), IMAGING, _jpeg),
        Corruption(
            "pixelate",
            "digital",
            "downscale factor, nearest upscale",
            (0.8, 0.65, 0.5, 0.4, 0.3),
            IMAGING,
            _downscale("pixelate"),
        ),
        Corruption(
            "resample",
            "digital",
            "downscale factor, bilinear upscale",
            (0.8, 0.65, 0.5, 0.4, 0.3),
            IMAGING,
            _downscale("resample"),
        ),
        Corruption(
            "contrast",
            "intensity",
            "contrast factor about the image mean",
            (0.75, 0.6, 0.45, 0.3, 0.2),
            IMAGING,
            _contrast,
        ),
        Corruption(
            "brightness",
            "intensity",
            "added brightness (intensity)",
            (0.1, 0.2, 0.3, 0.4, 0.5),
            IMAGING,
            _brightness,
        ),
        Corruption(
            "gamma", "intensity", "gamma exponent", (1.3, 1.6, 2.0, 2.5, 3.0), IMAGING, _gamma
        ),
        Corruption(
            "bias_field",
            "intensity",
            "polynomial coefficient of the log bias field",
            (0.1, 0.2, 0.3, 0.45, 0.6),
            RADIOLOGY,
            _bias_field,
        ),
        Corruption(
            "stain_shift",
            "stain",
            "H&E stain intensity scale/shift half-width",
            (0.1, 0.2, 0.3, 0.4, 0.5),
            PATHOLOGY,
            _stain_shift,
            rgb_only=True,
        ),
        Corruption(
            "text_overlay",
            "overlay",
            "lines of burned-in text",
            (1, 2, 3, 4, 5),
            RADIOLOGY | DERMATOLOGY | OPHTHALMOLOGY,
            _text,
        ),
        Corruption(
            "markers",
            "overlay",
            "bright square markers",
            (1, 2, 3, 5, 8),
            IMAGING,
            _markers,
        ),
        Corruption(
            "occlusion",
            "occlusion",
            "side of one black square (share of the image side)",
            (0.1, 0.15, 0.2, 0.25, 0.3),
            IMAGING,
            _occlusion,
        ),
    )
}


def for_modality(modality: str, channels: int) -> list[str]:
    """The corruptions that apply to a modality (``stain_shift`` needs RGB)."""
    return [
        name
        for name, c in CORRUPTIONS.items()
        if modality in c.modalities and not (c.rgb_only and channels != 3)
    ]


def sample_seed(seed: int, corruption: str, severity: int, sample_id: str) -> int:
    """The seed of one corrupted image: SeedSequence([seed, crc32(name), severity,
    crc32(sample id)]), so it depends on nothing but these four."""
    ss = np.random.SeedSequence(
        [seed, zlib.crc32(corruption.encode()), severity, zlib.crc32(str(sample_id).encode())]
    )
    return int(ss.generate_state(1)[0])


def corrupt(
    images: np.ndarray,
    corruption: str,
    severity: int,
    sample_ids: Sequence[str],
    seed: int = 0,
) -> np.ndarray:
    """``images`` (n, C, H, W) float32 in [0, 1], corrupted; the input is not modified."""
    if corruption not in CORRUPTIONS:
        raise KeyError(f"unknown corruption {corruption!r}; known: {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity}")
    if images.ndim != 4 or images.dtype != np.float32:
        raise ValueError(f"images must be float32 (n, C, H, W), got {images.dtype} {images.shape}")
    if len(sample_ids) != len(images):
        raise ValueError(f"{len(sample_ids)} sample ids for {len(images)} images")
    spec = CORRUPTIONS[corruption]
    if spec.rgb_only and images.shape[1] != 3:
        raise ValueError(f"{corruption} needs RGB images, got {images.shape[1]} channel(s)")
    apply = spec.make(spec.levels[severity - 1], images.shape[-1])
    out = np.empty_like(images)
    for i, (img, sid) in enumerate(zip(images, sample_ids, strict=True)):
        hwc = np.ascontiguousarray(np.moveaxis(img, 0, -1))
        res = apply(hwc, sample_seed(seed, corruption, severity, sid))
        out[i] = np.moveaxis(res.reshape(hwc.shape), -1, 0)
    return np.clip(out, 0.0, 1.0, out=out)
