"""Dermatology-like photographs: a pigmented lesion on skin of a Fitzpatrick-like tone.

Skin colour follows a simple chromophore model: per pixel, optical densities (natural-log
units) of melanin, hemoglobin and a baseline are summed per RGB channel and the remitted
light is ``spec + (1 - spec) * exp(-OD)``, with ``spec`` a small surface reflection that
does not depend on the skin. Skin tone ``I``..``VI`` sets the epidermal melanin. A
lesion adds melanin (and, for malignant lesions, a blue-grey dermal component), so its
colour multiplies the skin's: darker skin leaves less light for the lesion to absorb, and
lesion-to-skin contrast is lower on darker tones, which is the mechanism by which models
trained on light skin fail on dark skin.

The label is malignancy. Malignant lesions are larger, more asymmetric, have a more
irregular border and more colour variegation (ABCD-like); ``effect`` scales every
difference (0 = classes look alike). ``masks`` ``(n, H, W)`` uint8 is the pixel-exact
lesion ROI (1 inside the lesion boundary) of EVERY image: benign lesions are lesions
too, so a mask never depends on the label, and markers (ink, ruler) never change it.

Shortcuts per cohort: surgical-marker ``ink`` (a violet arc around the lesion, outside
the lesion) and a ``ruler`` (a strip with tick marks along one image edge). For each, with
probability ``strength`` its presence equals the recorded (possibly noisy) label, else it
is Bernoulli(``base_rate``). Lengths below are fractions of the image half-width.

Metadata columns beyond the standard ones: ``skin_tone`` (I..VI), ``tone_group`` (light
I-II, medium III-IV, dark V-VI), ``sex`` (F/M), ``age`` (years), ``ink`` and ``ruler``
(0/1), ``lesion_area`` (share of image pixels inside the mask) and ``scanner`` (the
non-default ``ScannerStyle`` fields, ``none`` without style).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from benchmark.tasks.synth.base import (
    CohortBase,
    GeneratorParams,
    Shortcut,
    SynthBatch,
    apply_label_noise,
    cohort_rng,
    draw_labels,
    metadata,
    shortcut_presence,
    to_uint8,
)
from benchmark.tasks.synth.pathology import smooth_noise
from benchmark.tasks.synth.style import ScannerStyle, apply_style, summary

CLASSES: tuple[str, str] = ("benign", "malignant")

Tone = Literal["I", "II", "III", "IV", "V", "VI"]
TONES: tuple[str, ...] = ("I", "II", "III", "IV", "V", "VI")
TONE_GROUPS: tuple[str, ...] = ("light", "light", "medium", "medium", "dark", "dark")
#: epidermal melanin OD scale of each tone
MELANIN = np.array([0.1, 0.25, 0.5, 0.8, 1.25, 1.8])

# RGB optical-density spectra (natural log) per unit concentration
_MEL = np.array([0.5, 0.75, 1.05], dtype=np.float64)  # melanin: absorbs blue most
_HB = np.array([0.02, 0.4, 0.3], dtype=np.float64)  # hemoglobin: absorbs green
_BASE = np.array([0.02, 0.04, 0.07], dtype=np.float64)
_DERMAL = np.array([0.75, 0.6, 0.4], dtype=np.float64)  # deep melanin looks blue-grey
_INK = np.array([0.9, 1.7, 0.35], dtype=np.float64)  # gentian violet
_SPEC = 0.04
_RULER_RGB = np.array([0.93, 0.91, 0.82], dtype=np.float64)

_RADIUS = 0.28  # benign mean lesion radius
_MAX_RADIUS = 0.62  # lesion boundary radius cap (the ruler strip starts at 0.84)
_MAX_OFFSET = 0.12  # lesion centre offset from the image centre, each axis
_HARMONICS = 8
_ANGLES = 128  # boundary radius table per lesion, interpolated per pixel
_RULER_WIDTH = 0.16
_RULER_SPACING = 0.125
#: pixels rendered at a time (bounds memory; the chunking is part of the seed-to-bytes contract)
CHUNK_PIXELS = 256 * 64 * 64


class Cohort(CohortBase):
    """One site: tone shares (``I``..``VI``, missing = 0, must sum to 1), demographics
    (``female`` share, age in years ~ N(``age_mean``, ``age_sd``) clipped to 18-95),
    malignancy ``effect``, shortcuts and camera ``style``."""

    tone_shares: dict[Tone, float] = Field(default_factory=lambda: dict.fromkeys(TONES, 1 / 6))
    female: float = Field(default=0.5, ge=0, le=1)
    age_mean: float = Field(default=50.0, ge=18, le=95)
    age_sd: float = Field(default=15.0, ge=0, le=40)
    effect: float = Field(default=1.0, ge=0, le=3)
    ink: Shortcut = Field(default_factory=Shortcut)
    ruler: Shortcut = Field(default_factory=Shortcut)
    style: ScannerStyle | None = None

    @field_validator("tone_shares")
    @classmethod
    def _shares(cls, v: dict[str, float]) -> dict[str, float]:
        if min(v.values(), default=-1) < 0 or abs(sum(v.values()) - 1) > 1e-6:
            raise ValueError(f"tone_shares must be non-negative and sum to 1: {v}")
        return v


class Params(GeneratorParams):
    """``image_size``: image side in pixels."""

    image_size: int = Field(default=64, ge=32, le=224)
    cohorts: list[Cohort] = Field(min_length=1)


def _boundary(rng: np.random.Generator, clean: np.ndarray, effect: float) -> np.ndarray:
    """Boundary radius of each lesion at ``_ANGLES`` angles over [-pi, pi), ``(n, A)``.

    ``r(t) = R (1 + sum_k a_k cos(k t + phi_k))``: harmonics 1-2 make the lesion
    asymmetric, 3-8 make the border irregular; malignant lesions get larger ``R`` and
    larger amplitudes.
    """
    n = len(clean)
    m = clean * effect
    z = rng.standard_normal((n, 1 + _HARMONICS))
    phase = rng.random((n, _HARMONICS)) * 2 * np.pi
    radius = _RADIUS * (1 + 0.4 * m) * np.exp(0.18 * z[:, 0])
    k = np.arange(1, _HARMONICS + 1)
    scale = np.where(k <= 2, 0.05 + 0.1 * m[:, None], (0.04 + 0.08 * m[:, None]) * 3 / k)
    amp = scale * np.abs(z[:, 1:])
    t = np.linspace(-np.pi, np.pi, _ANGLES, endpoint=False)
    wave = np.cos(k[None, :, None] * t[None, None, :] + phase[:, :, None])  # (n, K, A)
    shape = 1 + np.einsum("nk,nka->na", amp, wave)
    return np.clip(radius[:, None] * np.maximum(shape, 0.35), 0.02, _MAX_RADIUS)


def _render_chunk(
    c: Cohort,
    rng: np.random.Generator,
    size: int,
    clean: np.ndarray,
    tone: np.ndarray,
    ink: np.ndarray,
    ruler: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 images ``(n, 3, size, size)`` and lesion masks ``(n, size, size)``."""
    n = len(clean)
    f32 = np.float64
    m = (clean * c.effect).astype(f32)
    r_tab = _boundary(rng, clean, c.effect).astype(f32)
    u = rng.random((n, 8)).astype(f32)
    z = rng.standard_normal((n, 3)).astype(f32)

    grid = (np.arange(size, dtype=f32) + 0.5) * f32(2 / size) - 1  # pixel centres in [-1, 1]
    cy = (2 * u[:, 0] - 1) * _MAX_OFFSET
    cx = (2 * u[:, 1] - 1) * _MAX_OFFSET
    dy = (grid[None] - cy[:, None])[:, :, None]  # (n, H, 1)
    dx = (grid[None] - cx[:, None])[:, None, :]  # (n, 1, W)
    rho = np.sqrt(dy**2 + dx**2)
    # boundary radius per pixel: linear interpolation of r_tab at the pixel's angle
    pos = np.arctan2(dy, dx)
    pos += f32(np.pi)
    pos *= f32(_ANGLES / (2 * np.pi))
    i0 = pos.astype(np.intp)
    np.minimum(i0, _ANGLES - 1, out=i0)
    pos -= i0  # fraction towards the next angle
    i0 += np.arange(0, n * _ANGLES, _ANGLES)[:, None, None]
    r0 = r_tab.ravel()
    r1 = np.roll(r_tab, -1, axis=1).ravel()  # the next angle, wrapping around
    r = r0.take(i0)
    r += (r1.take(i0) - r) * pos
    t = np.divide(rho, r, out=r)  # relative radius: 1 on the boundary
    mask = t < 1

    comp = np.empty((n, 4, size, size), dtype=f32)  # melanin, hemoglobin, dermal, ink
    # lesion pigment: a plateau that fades over the outer quarter, with variegation
    pigment = 0.9 * (1 + 0.3 * m) * np.exp(0.25 * z[:, 0])
    vary = smooth_noise(rng, n, size, 6)
    veil = smooth_noise(rng, n, size, 5)
    profile = np.clip((1 - t) * 4, 0, 1, out=t)
    lesion = np.multiply(vary, (0.12 + 0.3 * m)[:, None, None], out=vary)
    lesion += 1
    np.maximum(lesion, 0, out=lesion)
    lesion *= profile
    lesion *= pigment[:, None, None]
    np.maximum(veil, 0, out=comp[:, 2])
    comp[:, 2] *= profile
    comp[:, 2] *= (0.7 * m)[:, None, None]

    skin_tex = smooth_noise(rng, n, size, max(4, size // 6))
    blood = smooth_noise(rng, n, size, 4)
    base = (MELANIN[tone] * np.exp(0.1 * z[:, 1])).astype(f32)[:, None, None]
    np.multiply(skin_tex, f32(0.06), out=comp[:, 0])
    comp[:, 0] += 1
    comp[:, 0] *= base
    comp[:, 0] += lesion
    np.multiply(blood, f32(0.25), out=comp[:, 1])
    comp[:, 1] += 1
    comp[:, 1] *= (0.3 * np.exp(0.2 * z[:, 2]))[:, None, None]

    # ink: a violet arc around the lesion, never inside it (drawn where present only)
    comp[:, 3] = 0
    j = np.flatnonzero(ink)
    if len(j):
        e = (slice(None), None, None)
        ring = np.minimum(r_tab[j].max(axis=1) * (1.15 + 0.25 * u[j, 2]) + 0.06, 0.85)
        width = 0.035 + 0.02 * u[j, 3]
        centre = u[j, 4] * f32(2 * np.pi)
        cos_half_arc = np.cos(np.pi * (0.3 + 0.6 * u[j, 5]))  # arc spans 0.6-1.8 pi
        cos_off = dx[j] * np.cos(centre)[e] + dy[j] * np.sin(centre)[e]  # rho cos(angle)
        on_arc = np.clip((cos_off / np.maximum(rho[j], 1e-6) - cos_half_arc[e]) * 6, 0, 1)
        stroke = np.clip(2 - 2 * np.abs(rho[j] - ring[e]) / width[e], 0, 1)
        comp[j, 3] = f32(1.3) * stroke * on_arc * ~mask[j]

    # Beer-Lambert: od = spectra @ concentrations, remitted light with surface reflection
    spectra = np.stack([_MEL, _HB, _DERMAL, _INK], axis=1)  # (3, 4)
    x = np.matmul(spectra, comp.reshape(n, 4, -1)).reshape(n, 3, size, size)
    x += _BASE[:, None, None]
    np.negative(x, out=x)
    np.exp(x, out=x)
    x *= f32(1 - _SPEC)
    x += f32(_SPEC)

    _ruler(x, ruler, u[:, 6], u[:, 7], grid)
    if c.style is not None:
        x = apply_style(x, c.style, rng)
    return to_uint8(x), mask.astype(np.uint8)


def _ruler(
    x: np.ndarray, present: np.ndarray, u_edge: np.ndarray, u_phase: np.ndarray, grid: np.ndarray
) -> None:
    """Paint, in place, an opaque ruler strip with tick marks (every ``_RULER_SPACING``, a
    long one every fifth) along one random edge of each image where ``present``."""
    idx = np.flatnonzero(present)
    if not len(idx):
        return
    size = x.shape[-1]
    band = int(np.count_nonzero(grid + 1 < _RULER_WIDTH))  # strip depth in pixels
    depth = (grid[:band] + 1) / _RULER_WIDTH  # 0 at the image edge, 1 at the inner side
    cell = (grid[None] / _RULER_SPACING + 5 * u_phase[idx, None]) % 5  # along, (k, size)
    tick = (cell % 1) < 2 / (size * _RULER_SPACING)  # about one pixel wide
    reach = np.where(tick & (cell < 1), 0.8, np.where(tick, 0.45, 0))  # tick length
    dark = depth[None, :, None] < reach[:, None, :]  # (k, band, size): across, along
    strip = np.where(dark[:, None], np.float64(0.1), _RULER_RGB[None, :, None, None])
    edge = np.minimum((u_edge[idx] * 4).astype(np.int64), 3)
    top, bottom, left, right = (edge == e for e in range(4))
    x[idx[top], :, :band, :] = strip[top]
    x[idx[bottom], :, size - band :, :] = strip[bottom, :, ::-1, :]
    x[idx[left], :, :, :band] = strip[left].transpose(0, 1, 3, 2)
    x[idx[right], :, :, size - band :] = strip[right].transpose(0, 1, 3, 2)[..., ::-1]


def _render_cohort(
    c: Cohort, rng: np.random.Generator, size: int
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Images, masks, extra columns, true and recorded labels of one cohort. Per-sample
    draws come first (all of them, whatever the config), then the images by chunk."""
    n = c.n
    clean = draw_labels(rng, n, c.prevalence)
    shares = np.array([c.tone_shares.get(t, 0.0) for t in TONES])
    tone = np.minimum(np.searchsorted(np.cumsum(shares), rng.random(n), side="right"), 5)
    sex = np.where(rng.random(n) < c.female, "F", "M")
    age = np.clip(np.round(c.age_mean + c.age_sd * rng.standard_normal(n)), 18, 95)
    skin_tone = np.asarray(TONES)[tone]
    tone_group = np.asarray(TONE_GROUPS)[tone]
    attrs = {"sex": sex, "skin_tone": skin_tone, "tone_group": tone_group}
    noisy = apply_label_noise(rng, clean, c.label_noise, attrs)
    ink = shortcut_presence(rng, c.ink, len(noisy), noisy).astype(np.int8)
    ruler = shortcut_presence(rng, c.ruler, len(noisy), noisy).astype(np.int8)

    images = np.empty((n, 3, size, size), dtype=np.uint8)
    masks = np.empty((n, size, size), dtype=np.uint8)
    chunk = max(8, CHUNK_PIXELS // size**2)
    for lo in range(0, n, chunk):
        s = slice(lo, min(lo + chunk, n))
        images[s], masks[s] = _render_chunk(c, rng, size, clean[s], tone[s], ink[s], ruler[s])
    cols = {
        **attrs,
        "age": age.astype(np.int64),
        "ink": ink.astype(np.int64),
        "ruler": ruler.astype(np.int64),
        "lesion_area": masks.mean(axis=(1, 2), dtype=np.float64),
        "scanner": np.full(n, summary(c.style), dtype=object),
    }
    return images, masks, cols, clean, noisy


def generate(params: Params, seed: int) -> SynthBatch:
    """Skin-lesion images ``(n, 3, H, W)`` uint8 RGB and lesion masks ``(n, H, W)`` uint8
    for every cohort, in cohort order."""
    frames, images, masks = [], [], []
    start = 0
    for i, c in enumerate(params.cohorts):
        x, mask, cols, clean, noisy = _render_cohort(c, cohort_rng(seed, i), params.image_size)
        frames.append(metadata(c.site, start, clean, noisy, CLASSES, cols))
        images.append(x)
        masks.append(mask)
        start += c.n
    return SynthBatch(
        pd.concat(frames, ignore_index=True), np.concatenate(images), np.concatenate(masks)
    )
