"""Pathology-like H&E patches: pink eosin stroma with purple-blue hematoxylin nuclei.

Each patch is a fixed field of view rendered at ``image_size`` pixels; lengths below are
fractions of the patch width, so the tissue does not change with the resolution. The
label is nuclear atypia: atypical patches hold more nuclei (density), larger ones (size),
more variable ones (pleomorphism) and darker ones (hyperchromasia); ``Atypia`` sets each
ratio and ``effect`` scales them all, so a task can make the difference subtle.

Rendering goes through a stain model. Per pixel the generator computes a hematoxylin and
an eosin optical density (natural-log units) and colours it by Beer-Lambert,
``RGB = 255 * exp(-(OD_H * h + OD_E * e))``, with unit stain vectors ``h`` and ``e``
(default: the H and E vectors of colour deconvolution, Ruifrok AC, Johnston DA.
Quantification of histochemical staining by color deconvolution. Anal Quant Cytol Histol
2001;23(4):291-299). A site's staining (``Stain``: other vectors, stronger or weaker
hematoxylin and eosin, per-patient jitter) and its scanner (``ScannerStyle``) shift the
colours the way hospitals' slides differ.

Patches come in groups of ``patches_per_patient``: a patient's patches share the label
(true and recorded), sex, age and stain jitter. Metadata columns beyond the standard ones:
``sex`` (F/M), ``age`` (years), ``nuclei_count`` (nuclei centred in the patch),
``nuclear_area`` (share of pixels inside nuclei), ``stain`` (the site's stain in short),
``h_scale`` and ``e_scale`` (the applied stain strengths, jitter included) and ``scanner``
(the non-default ``ScannerStyle`` fields, ``none`` without style).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from benchmark.common.schema import StrictModel
from benchmark.tasks.synth.base import (
    CohortBase,
    GeneratorParams,
    SynthBatch,
    apply_label_noise,
    cohort_rng,
    draw_labels,
    metadata,
    to_uint8,
)
from benchmark.tasks.synth.style import ScannerStyle, apply_style, gaussian_operator, summary

CLASSES: tuple[str, str] = ("benign", "atypical")

#: Ruifrok & Johnston (2001) hematoxylin and eosin OD vectors (R, G, B), before normalising
RUIFROK_H = (0.650, 0.704, 0.286)
RUIFROK_E = (0.072, 0.990, 0.105)

# benign tissue, in fractions of the patch width and natural-log OD units
_NUCLEI_MEAN = 14.0  # nuclei per patch
_RADIUS = 0.045  # mean nucleus radius
_RADIUS_CV = 0.12  # coefficient of variation of the radius
_NUCLEUS_OD = 1.1  # hematoxylin OD at a nucleus centre
_MAX_NUCLEI = 120
_MAX_SEMI_AXIS = 0.14
_EOSIN_OD = 0.55
_BACKGROUND_H = 0.06
#: pixels rendered at a time (bounds memory; the chunking is part of the seed-to-bytes contract)
CHUNK_PIXELS = 256 * 64 * 64


class Atypia(StrictModel):
    """How atypical patches differ from benign ones, each as a ratio atypical / benign.

    ``density``: mean nuclei count; ``size``: mean nucleus radius; ``pleomorphism``:
    coefficient of variation of the radius (and of the elongation); ``hyperchromasia``:
    nuclear hematoxylin OD. Each ratio is applied as ``ratio ** effect``: ``effect`` 0
    makes the classes look alike, 1 applies the ratios as given.
    """

    effect: float = Field(default=1.0, ge=0, le=3)
    density: float = Field(default=1.8, gt=0, le=5)
    size: float = Field(default=1.35, gt=0, le=2.5)
    pleomorphism: float = Field(default=2.5, gt=0, le=6)
    hyperchromasia: float = Field(default=1.35, gt=0, le=3)


class Stain(StrictModel):
    """A site's staining. ``hematoxylin`` / ``eosin``: RGB optical-density vectors
    (normalised to unit length; ``None`` = Ruifrok & Johnston); ``h_scale`` / ``e_scale``:
    stain strength (OD multiplier; 1.5 = over-stained); ``jitter``: per-patient random
    perturbation, the SD of the log scales and (times 0.3) of the vector components."""

    hematoxylin: tuple[float, float, float] | None = None
    eosin: tuple[float, float, float] | None = None
    h_scale: float = Field(default=1.0, gt=0, le=4)
    e_scale: float = Field(default=1.0, gt=0, le=4)
    jitter: float = Field(default=0.0, ge=0, le=1)

    @field_validator("hematoxylin", "eosin")
    @classmethod
    def _positive(cls, v: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
        if v is not None and (min(v) < 0 or max(v) <= 0):
            raise ValueError("a stain vector needs non-negative components, not all zero")
        return v

    def summary(self) -> str:
        """Short text, e.g. ``H=ruifrok*1.5 E=ruifrok*1 jitter=0``."""
        h = "ruifrok" if self.hematoxylin is None else "({:g},{:g},{:g})".format(*self.hematoxylin)
        e = "ruifrok" if self.eosin is None else "({:g},{:g},{:g})".format(*self.eosin)
        return f"H={h}*{self.h_scale:g} E={e}*{self.e_scale:g} jitter={self.jitter:g}"


class Cohort(CohortBase):
    """One site: atypia effect, stain, scanner and demographics (``female`` share, age in
    years ~ N(``age_mean``, ``age_sd``) clipped to 18-95)."""

    atypia: Atypia = Field(default_factory=Atypia)
    stain: Stain = Field(default_factory=Stain)
    style: ScannerStyle | None = None
    female: float = Field(default=0.5, ge=0, le=1)
    age_mean: float = Field(default=60.0, ge=18, le=95)
    age_sd: float = Field(default=12.0, ge=0, le=40)


class Params(GeneratorParams):
    """``image_size``: patch side in pixels; ``patches_per_patient``: patches per patient
    (the last patient of a cohort may have fewer)."""

    image_size: int = Field(default=64, ge=32, le=224)
    patches_per_patient: int = Field(default=1, ge=1, le=1000)
    cohorts: list[Cohort] = Field(min_length=1)


@lru_cache(maxsize=32)
def interpolation_operator(size: int, coarse: int) -> np.ndarray:
    """``size x coarse`` operator: linear interpolation of a ``coarse`` grid up to ``size``
    pixels, then a Gaussian blur of one coarse cell / 2; rows scaled to unit L2 norm so that
    white noise maps to unit variance at every pixel."""
    pos = np.clip((np.arange(size) + 0.5) * coarse / size - 0.5, 0, coarse - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, coarse - 1)
    t = pos - lo
    op = np.zeros((size, coarse))
    np.add.at(op, (np.arange(size), lo), 1 - t)
    np.add.at(op, (np.arange(size), hi), t)
    op = gaussian_operator(size, size / coarse / 2).astype(np.float64) @ op
    op /= np.sqrt((op**2).sum(axis=1, keepdims=True))
    return op.astype(np.float64)


def smooth_noise(rng: np.random.Generator, n: int, size: int, coarse: int) -> np.ndarray:
    """``n`` smooth random fields ``(n, size, size)``, unit variance per pixel, with about
    ``coarse`` blobs across the image."""
    op = interpolation_operator(size, coarse)
    z = rng.standard_normal((n * coarse, coarse), dtype=np.float64)
    y = (z @ op.T).reshape(n, coarse, size).transpose(0, 2, 1).reshape(n * size, coarse)
    return (y @ op.T).reshape(n, size, size).transpose(0, 2, 1)


def _unit(v: tuple[float, float, float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    return a / np.linalg.norm(a)


def _stain_vectors(
    rng: np.random.Generator, stain: Stain, m: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-patient ``(h, e)`` unit vectors ``(m, 3)`` and scales ``(m,)`` with jitter."""
    z = rng.standard_normal((m, 8))  # drawn even without jitter: streams stay aligned
    out = []
    for vec, cols in (
        (stain.hematoxylin or RUIFROK_H, slice(2, 5)),
        (stain.eosin or RUIFROK_E, slice(5, 8)),
    ):
        v = _unit(vec)[None] + 0.3 * stain.jitter * z[:, cols]
        v = np.maximum(v, 1e-3)
        out.append(v / np.linalg.norm(v, axis=1, keepdims=True))
    h_scale = stain.h_scale * np.exp(stain.jitter * z[:, 0])
    e_scale = stain.e_scale * np.exp(stain.jitter * z[:, 1])
    return out[0], out[1], h_scale, e_scale


def _nuclei(
    rng: np.random.Generator, labels: np.ndarray, atypia: Atypia, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hematoxylin OD of the nuclei ``(n, size, size)``, nuclei counts and nuclear area.

    Every nucleus is a soft-edged ellipse evaluated in a square window around its centre;
    nuclei are grouped by window size and each group is evaluated at once and summed into
    the images (overlapping nuclei add up).
    """
    n = len(labels)
    a = atypia
    pos = labels.astype(bool)
    f = a.effect
    mean_count = np.where(pos, _NUCLEI_MEAN * a.density**f, _NUCLEI_MEAN)
    counts = np.minimum(rng.poisson(mean_count), _MAX_NUCLEI)
    radius_mean = np.where(pos, _RADIUS * a.size**f, _RADIUS)
    cv = np.where(pos, _RADIUS_CV * a.pleomorphism**f, _RADIUS_CV)
    od = np.where(pos, _NUCLEUS_OD * a.hyperchromasia**f, _NUCLEUS_OD)

    img = np.repeat(np.arange(n), counts)
    k = len(img)
    u = rng.random((k, 3))
    z = rng.standard_normal((k, 3))
    sigma = np.sqrt(np.log1p(cv[img] ** 2))  # lognormal with the asked mean and CV
    r = radius_mean[img] * np.exp(sigma * z[:, 0] - sigma**2 / 2)
    aspect = np.exp(0.15 + np.minimum(0.35, 0.8 * cv[img]) * np.abs(z[:, 1]))
    semi_a = np.minimum(r * np.sqrt(aspect), _MAX_SEMI_AXIS) * size  # pixels
    semi_b = np.minimum(r / np.sqrt(aspect), _MAX_SEMI_AXIS) * size
    cy, cx = u[:, 0] * size, u[:, 1] * size  # centre, pixel units (pixel i spans [i, i+1))
    cos, sin = np.cos(u[:, 2] * np.pi), np.sin(u[:, 2] * np.pi)
    # d^2 = qxx dx^2 + qxy dx dy + qyy dy^2: squared elliptical radius (1 on the boundary)
    ia, ib = semi_a**-2, semi_b**-2
    q = np.stack([cos**2 * ia + sin**2 * ib, 2 * cos * sin * (ia - ib), sin**2 * ia + cos**2 * ib])
    strength = od[img] * np.exp(0.12 * z[:, 2])
    # the antialiased rim reaches d = 1 + 0.5 / semi_b, i.e. up to semi_a (1 + 0.5 / semi_b)
    half = np.ceil(semi_a * (1 + 0.5 / semi_b) + 0.5).astype(np.int64)

    pad = int(half.max()) if k else 0
    padded = size + 2 * pad
    flats, values = [], []
    for h in np.unique(half):
        j = np.flatnonzero(half == h)
        win = np.arange(-h, h + 1)
        iy = np.floor(cy[j]).astype(np.int64)[:, None, None] + win[None, :, None]  # (k, B, 1)
        ix = np.floor(cx[j]).astype(np.int64)[:, None, None] + win[None, None, :]  # (k, 1, B)
        dy = (iy + 0.5 - cy[j, None, None]).astype(np.float64)
        dx = (ix + 0.5 - cx[j, None, None]).astype(np.float64)
        qxx, qxy, qyy = (q[i, j, None, None].astype(np.float64) for i in range(3))
        d = qxx * dx**2 + (qxy * dy) * dx + qyy * dy**2
        np.sqrt(np.maximum(d, 0, out=d), out=d)
        edge = (1 - d) * semi_b[j, None, None].astype(np.float64) + 0.5
        np.clip(edge, 0, 1, out=edge)  # ~1 px antialiased rim
        edge *= strength[j, None, None].astype(np.float64) * (0.75 + 0.25 * d)
        flat = (img[j, None, None] * padded + iy + pad) * padded + (ix + pad)
        flats.append(flat.ravel())
        values.append(edge.ravel())
    flat = np.concatenate([np.zeros(0, np.int64), *flats])
    value = np.concatenate([np.zeros(0, np.float64), *values])
    canvas = np.bincount(flat, value, minlength=n * padded * padded)
    out = canvas.reshape(n, padded, padded)[:, pad : pad + size, pad : pad + size]
    area = (out > 0.3).mean(axis=(1, 2))
    return out.astype(np.float64), counts, area


def _render_chunk(
    c: Cohort,
    rng: np.random.Generator,
    clean: np.ndarray,
    hs: np.ndarray,
    es: np.ndarray,
    size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB uint8 images of one chunk, their nuclei counts and nuclear area; ``hs`` / ``es``
    are the scaled stain vectors ``(n, 3)`` of its patches."""
    n = len(clean)
    od_n, counts, area = _nuclei(rng, clean, c.atypia, size)
    chromatin = smooth_noise(rng, n, size, max(4, size // 4))
    region = smooth_noise(rng, n, size, 5)
    fibres = smooth_noise(rng, n, size, max(4, size // 6))
    lumen = np.clip((region - 1.1) * 3, 0, 1)  # white spaces where the coarse field peaks
    od_e = (1 + 0.25 * region + 0.2 * fibres) * (1 - 0.85 * lumen)
    np.maximum(od_e, 0, out=od_e)
    od_e *= _EOSIN_OD
    od_e += 0.15 * np.minimum(od_n, 1)  # nuclei sit in cytoplasm
    od_h = od_n * (1 + 0.15 * chromatin)
    od_h += _BACKGROUND_H * (1 - 0.8 * lumen)
    x = np.empty((n, 3, size, size), dtype=np.float64)
    for ch in range(3):  # Beer-Lambert per channel
        np.multiply(od_h, -hs[:, ch, None, None], out=x[:, ch])
        x[:, ch] -= od_e * es[:, ch, None, None]
    np.exp(x, out=x)
    if c.style is not None:
        x = apply_style(x, c.style, rng)
    return to_uint8(x), counts, area


def _render_cohort(
    c: Cohort, rng: np.random.Generator, size: int, per_patient: int
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Images ``(n, 3, size, size)`` uint8, extra columns, true and recorded labels, and
    per-patch patient index. Patient-level draws come first, then the images by chunk."""
    n = c.n
    m = -(-n // per_patient)
    patient = np.arange(n) // per_patient
    clean_p = draw_labels(rng, m, c.prevalence)
    sex_p = np.where(rng.random(m) < c.female, "F", "M")
    age_p = np.clip(np.round(c.age_mean + c.age_sd * rng.standard_normal(m)), 18, 95)
    noisy_p = apply_label_noise(rng, clean_p, c.label_noise, {"sex": sex_p})
    h_vec, e_vec, h_scale, e_scale = _stain_vectors(rng, c.stain, m)
    clean, noisy = clean_p[patient], noisy_p[patient]
    hs = (h_vec * h_scale[:, None])[patient].astype(np.float64)
    es = (e_vec * e_scale[:, None])[patient].astype(np.float64)

    images = np.empty((n, 3, size, size), dtype=np.uint8)
    counts = np.empty(n, dtype=np.int64)
    area = np.empty(n, dtype=np.float64)
    chunk = max(8, CHUNK_PIXELS // size**2)
    for lo in range(0, n, chunk):
        s = slice(lo, min(lo + chunk, n))
        images[s], counts[s], area[s] = _render_chunk(c, rng, clean[s], hs[s], es[s], size)
    cols = {
        "sex": sex_p[patient],
        "age": age_p[patient].astype(np.int64),
        "nuclei_count": counts,
        "nuclear_area": area,
        "stain": np.full(n, c.stain.summary(), dtype=object),
        "h_scale": h_scale[patient],
        "e_scale": e_scale[patient],
        "scanner": np.full(n, summary(c.style), dtype=object),
    }
    return images, cols, clean, noisy, patient


def generate(params: Params, seed: int) -> SynthBatch:
    """H&E-like patches ``(n, 3, H, W)`` uint8 RGB for every cohort, in cohort order."""
    frames, images = [], []
    start = patient_start = 0
    for i, c in enumerate(params.cohorts):
        rng = cohort_rng(seed, i)
        x, cols, clean, noisy, patient = _render_cohort(
            c, rng, params.image_size, params.patches_per_patient
        )
        frame = metadata(c.site, start, clean, noisy, CLASSES, cols)
        frame["patient_id"] = [f"{c.site}-P{patient_start + p:07d}" for p in patient]
        frames.append(frame)
        images.append(x)
        start += c.n
        patient_start += int(patient[-1]) + 1
    return SynthBatch(pd.concat(frames, ignore_index=True), np.concatenate(images))
