"""Chest-radiograph-like images: sex- and age-dependent anatomy, lesions with exact masks,
site scanner styles and burned-in shortcuts.

Geometry is in normalised image units: ``x`` (columns, left to right) and ``y`` (rows, top
to bottom) run over [-1, 1] from edge to edge, so one unit is ``image_size / 2`` pixels
and a scene renders the same at any size. Lengths given in pixels (lesion sizes) are
pixels of a 64-pixel image and scale with ``image_size``. Views are PA: the patient's left
is the image right, where the heart shadow sits. Intensities are in [0, 1] before the
site's :class:`ScannerStyle`; bright means dense (bone, soft tissue), dark means air.

Anatomy. A body outline (soft tissue, wider for men), two lung fields (ellipses scaled
with the thorax; a little larger and darker with age), a heart shadow over the lower
medial left lung, rib-like arched bands over the lungs whose contrast falls with age
(osteopenia), a breast soft-tissue shadow over the lower lung fields for women, and a
smooth random texture. The sex and age effects are real but modest: a linear classifier
on downsampled pixels tells sex apart well above chance, not perfectly.

Lesions (label ``lesion``). A nodule is a small Gaussian (round, soft edge); an opacity is
three overlapping Gaussians modulated by low-frequency noise (larger, irregular). Each is
centred inside a lung field, truncated to a compact support (below 1/64 of its peak),
clipped to the lung field and normalised to a peak of 1; the image gains ``contrast``
times this profile. The mask is the pixels where the profile is at least half its peak
(pixel-exact, inside the lung field), all zero without a lesion; the image shows the true
lesion status and the mask follows it, whatever label noise did to the recorded label.
Rater masks threshold the same profile at other levels (0.35-0.65) and, for 30% of
(sample, rater) pairs on lesions of 12 pixels or more, shift it by one pixel.

Shortcuts. ``marker``: a bright 5x3 block-letter glyph burned into a corner (letter and
corner derived from the site name unless given). ``line``: a bright thin curved tube
entering the chest from the top. With probability ``strength`` a shortcut is present
exactly when the recorded (possibly noisy) label is ``lesion``, otherwise with
probability ``base_rate``. Shortcuts never touch the lesion masks; the shortcut masks
(``shortcut_masks``) record the pixels they changed: the glyph's, and the tube's where it
adds any intensity (all zero on an image without a shortcut).

Counterfactual pairs. With ``counterfactual_pairs`` each of the cohort's ``n`` patients
gives two rows (``2 n`` in all, ``pair`` = ``with_lesion`` then ``without_lesion``, one
``patient_id``) that share the anatomy, shortcuts, style and noise and differ only by the
lesion. The cohort's ``prevalence`` is not used, label noise applies to each row, and the
shortcuts, shared by both rows, are Bernoulli(``base_rate``) per patient. For any batch,
:func:`cohort_scene` and :func:`render` give the counterfactual images:
``render(scene, size, style, lesion=~scene.lesion)``.

Randomness. Cohort ``i`` draws all per-sample parameters (a :class:`Scene`) from
``cohort_rng(seed, i)``; pixel-level randomness (texture, opacity shape, acquisition
noise) of samples ``[256 b, 256 b + 256)`` comes from ``default_rng([noise_seed, b])``
with ``noise_seed`` part of the scene, so rendering the same scene with or without a
lesion gives the same noise (with Poisson noise, up to the exact low-count draws; see
:mod:`benchmark.tasks.synth.style`). The 256-sample blocks are part of the seed-to-bytes
contract; nothing depends on how many samples are rendered at a time otherwise.

Metadata columns beyond the standard ones: ``sex`` (F/M), ``age`` (years, 1 decimal),
``marker`` and ``line`` (0/1), ``lesion_type`` (none/nodule/opacity, what the image
shows), ``lesion_area`` (mask pixels), ``scanner`` (the non-default style fields,
``default`` if none) and, when any cohort has counterfactual pairs, ``pair``
(with_lesion/without_lesion, ``none`` for the other cohorts' rows).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import Literal, NamedTuple

import numpy as np
from pydantic import Field, field_validator, model_validator

from benchmark.common.schema import StrictModel
from benchmark.tasks.synth.base import (
    CohortBase,
    GeneratorParams,
    Shortcut,
    SynthBatch,
    apply_label_noise,
    cohort_rng,
    concat,
    draw_labels,
    metadata,
    shortcut_presence,
)
from benchmark.tasks.synth.style import ScannerStyle, apply_style, summary

CLASSES: tuple[str, str] = ("no_lesion", "lesion")
BLOCK = 256  # samples per render block: block b's pixel noise is default_rng([noise_seed, b])
LESION_TYPES = ("none", "nodule", "opacity")
CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
Corner = Literal["top_left", "top_right", "bottom_left", "bottom_right"]
Glyph = Literal["A", "H", "L", "P", "R", "T"]
GLYPHS: dict[str, tuple[str, ...]] = {  # 5 rows x 3 columns, '#' = bright
    "A": (".#.", "#.#", "###", "#.#", "#.#"),
    "H": ("#.#", "#.#", "###", "#.#", "#.#"),
    "L": ("#..", "#..", "#..", "#..", "###"),
    "P": ("##.", "#.#", "##.", "#..", "#.."),
    "R": ("##.", "#.#", "##.", "#.#", "#.#"),
    "T": ("###", ".#.", ".#.", ".#.", ".#."),
}
MARKER_LEVEL = 0.92  # intensity of the burned-in glyph (before the style)
_PX = 1 / 32  # one pixel of a 64-pixel image, in normalised units
_HALF_MAX = float(np.sqrt(2 * np.log(2)))  # Gaussian half-max radius / SD
_TAIL = 1 / 64  # lesion profiles are cut (and lowered) by this share of their peak
_H2 = 0.35  # rib profile cos(t) + _H2 cos(2t): narrower bright bands, wider gaps


def _range(v: tuple[float, float], lo: float, hi: float, name: str) -> tuple[float, float]:
    if not lo <= v[0] <= v[1] <= hi:
        raise ValueError(f"{name} must satisfy {lo} <= low <= high <= {hi}, got {list(v)}")
    return v


class Marker(Shortcut):
    """Burned-in site marker: ``glyph`` letter and image ``corner`` (None: derived from the
    site name, so each site has its own)."""

    glyph: Glyph | None = None
    corner: Corner | None = None


class Lesion(StrictModel):
    """Lesion appearance; each lesion draws uniformly within the ranges.

    - ``contrast``: added intensity at the lesion peak (lungs sit near 0.25, soft tissue
      near 0.55). Default 0.06-0.2: subtle to clear (a top-hat detector over the lungs
      scores AUROC about 0.66; with 0.25-0.35 and larger lesions about 0.98).
    - ``size`` / ``opacity_size``: half-maximum radius of nodules / opacities in pixels of
      a 64-pixel image (for opacities, the mask's equivalent-disc radius on average).
      Defaults 1.5-4 and 4-8.
    - ``opacity_share``: share of lesions that are opacities (default 0.4).
    """

    contrast: tuple[float, float] = (0.06, 0.2)
    size: tuple[float, float] = (1.5, 4.0)
    opacity_size: tuple[float, float] = (4.0, 8.0)
    opacity_share: float = Field(default=0.4, ge=0, le=1)

    @field_validator("contrast")
    @classmethod
    def _contrast(cls, v: tuple[float, float]) -> tuple[float, float]:
        return _range(v, 0.0, 1.0, "contrast")

    @field_validator("size", "opacity_size")
    @classmethod
    def _size(cls, v: tuple[float, float]) -> tuple[float, float]:
        return _range(v, 1.0, 16.0, "size")


class Cohort(CohortBase):
    """One site. ``female``: share of women; ``age``: uniform range in years; ``style``: the
    site's scanner; ``marker`` / ``line``: shortcuts; ``lesion``: lesion appearance;
    ``counterfactual_pairs``: two rows per patient, with and without the lesion (then the
    shortcuts cannot follow the label: their ``strength`` must be 0); ``breast_shadow``:
    scale of women's breast soft-tissue shadow (1: peak 0.02-0.05 in intensity units;
    larger values model denser tissue over the lower lung fields)."""

    female: float = Field(default=0.5, ge=0, le=1)
    breast_shadow: float = Field(default=1.0, ge=0, le=10)
    age: tuple[float, float] = (20.0, 90.0)
    style: ScannerStyle = Field(default_factory=ScannerStyle)
    marker: Marker = Field(default_factory=Marker)
    line: Shortcut = Field(default_factory=Shortcut)
    lesion: Lesion = Field(default_factory=Lesion)
    counterfactual_pairs: bool = False

    @field_validator("age")
    @classmethod
    def _age(cls, v: tuple[float, float]) -> tuple[float, float]:
        return _range(v, 0.0, 110.0, "age")

    @model_validator(mode="after")
    def _pairs_share_shortcuts(self) -> Cohort:
        if self.counterfactual_pairs and (self.marker.strength > 0 or self.line.strength > 0):
            raise ValueError(
                "counterfactual pairs share their shortcuts, which cannot follow the label: "
                "set marker.strength and line.strength to 0"
            )
        return self


class Params(GeneratorParams):
    """``image_size``: side in pixels; ``raters``: rater masks per image (0 = none)."""

    image_size: int = Field(default=64, ge=32, le=224)
    raters: int = Field(default=0, ge=0, le=8)
    cohorts: list[Cohort] = Field(min_length=1)


@dataclass(frozen=True, eq=False)
class Scene:
    """Every per-image parameter of a batch (arrays of length n, float64 normalised units
    unless noted). Rendering it is deterministic given ``image_size`` and the style."""

    female: np.ndarray  # bool
    age: np.ndarray  # years
    # anatomy
    centre: np.ndarray  # thorax midline x
    body_width: np.ndarray  # half-width of the body outline (a superellipse, x^4 + y^2)
    body_y: np.ndarray  # body outline centre y (half-height 1.45)
    body_level: np.ndarray  # soft-tissue intensity
    background: np.ndarray  # intensity outside the body
    lung_offset: np.ndarray  # lung centres at centre +- lung_offset
    lung_width: np.ndarray  # lung half-width
    lung_height: np.ndarray  # lung half-height
    lung_y: np.ndarray  # lung centre y
    lung_depth: np.ndarray  # intensity removed by aerated lung
    heart_x: np.ndarray
    heart_y: np.ndarray
    heart_width: np.ndarray
    heart_height: np.ndarray
    rib_period: np.ndarray  # rib band spacing along y
    rib_phase: np.ndarray  # radians
    rib_bend: np.ndarray  # band arching: phase grows with bend * (x - centre)^2
    rib_contrast: np.ndarray  # rib band amplitude (intensity)
    breast: np.ndarray  # breast shadow amplitude (0 for men)
    breast_y: np.ndarray
    texture: np.ndarray  # texture amplitude multiplier
    # lesion (drawn for every image, shown where ``lesion``)
    lesion: np.ndarray  # bool: the image shows its lesion
    lesion_kind: np.ndarray  # int8: 1 nodule, 2 opacity
    lesion_x: np.ndarray
    lesion_y: np.ndarray
    lesion_radius: np.ndarray  # half-maximum radius
    lesion_contrast: np.ndarray  # intensity at the peak
    blob_dx: np.ndarray  # (n, 3) sub-blob offsets from the lesion centre
    blob_dy: np.ndarray  # (n, 3)
    blob_sd: np.ndarray  # (n, 3) Gaussian SDs
    blob_weight: np.ndarray  # (n, 3) weights (nodules: 1, 0, 0)
    lesion_modulation: np.ndarray  # depth of the low-frequency modulation (nodules: 0)
    rater_level: np.ndarray  # (n, R) profile level each rater thresholds at
    rater_shift: np.ndarray  # (n, R, 2) int8 row and column shift of each rater's mask
    # shortcuts
    marker: np.ndarray  # bool
    marker_jitter: np.ndarray  # (n, 2) int8, inward offset in glyph cells
    line: np.ndarray  # bool
    line_x: np.ndarray  # tube x at the top edge
    line_bend: np.ndarray  # x drift: line_x + line_bend * (y + 1)^2
    line_end: np.ndarray  # y where the tube ends
    line_level: np.ndarray  # added intensity on the tube
    # per batch
    glyph: str = "L"
    corner: str = "top_left"
    noise_seed: int = 0

    def __len__(self) -> int:
        return len(self.female)

    def take(self, index: slice | np.ndarray) -> Scene:
        """The scene of the images selected by ``index`` (noise blocks restart at 0)."""
        arrays = {
            f.name: getattr(self, f.name)[index]
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }
        return replace(self, **arrays)


class Rendered(NamedTuple):
    """Images ``(n, 1, H, W)`` uint8, masks ``(n, H, W)`` uint8, rater masks
    ``(n, R, H, W)`` uint8 (None without raters), shortcut masks ``(n, H, W)`` uint8 (the
    pixels a burned-in shortcut changed: the marker's glyph, the tube's path)."""

    images: np.ndarray
    masks: np.ndarray
    rater_masks: np.ndarray | None
    shortcut_masks: np.ndarray


def _f64(x: np.ndarray | float) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _site_marker(site: str, marker: Marker) -> tuple[str, str]:
    """The marker glyph and corner of ``site`` (a stable hash of its name by default)."""
    h = zlib.crc32(site.encode())
    glyph = marker.glyph or sorted(GLYPHS)[h % len(GLYPHS)]
    corner = marker.corner or CORNERS[(h // len(GLYPHS)) % len(CORNERS)]
    return glyph, corner


def draw_scene(
    rng: np.random.Generator,
    cohort: Cohort,
    female: np.ndarray,
    age: np.ndarray,
    lesion: np.ndarray,
    marker: np.ndarray,
    line: np.ndarray,
    raters: int = 0,
) -> Scene:
    """Draw every remaining per-image parameter for the given demographics, lesion status
    (bool) and shortcut presence. Rater parameters come from their own stream, so the
    images do not depend on ``raters``."""
    n = len(age)
    f = female.astype(np.float64)
    a10 = (_f64(age) - 50) / 10  # decades from 50
    z = _f64(rng.standard_normal((n, 16)))
    u = _f64(rng.random((n, 6)))
    centre = 0.025 * z[:, 0]
    body_width = np.where(female, 0.815, 0.855).astype(np.float64) + 0.035 * z[:, 1]
    scale = body_width / 0.835
    anatomy = {
        "centre": centre,
        "body_width": body_width,
        "body_y": 0.5 + 0.03 * z[:, 2],
        "body_level": 0.56 + 0.03 * z[:, 3],
        "background": 0.03 + 0.03 * u[:, 0],
        "lung_offset": 0.42 * scale + 0.01 * z[:, 4],
        "lung_width": 0.32 * scale * (1 + 0.012 * a10) + 0.012 * z[:, 5],
        "lung_height": 0.6 + 0.012 * a10 + 0.025 * z[:, 6],
        "lung_y": -0.1 + 0.02 * z[:, 7],
        "lung_depth": 0.30 + 0.008 * a10 + 0.03 * z[:, 8],
        "heart_x": centre + 0.1 + 0.02 * z[:, 9],
        "heart_y": 0.4 + 0.03 * z[:, 10],
        "heart_width": 0.36 + 0.02 * z[:, 11],
        "heart_height": 0.3 + 0.015 * z[:, 12],
        "rib_period": 0.2 + 0.01 * z[:, 13],
        "rib_phase": _f64(2 * np.pi) * u[:, 1],
        "rib_bend": 0.4 + 0.06 * z[:, 14],
        "rib_contrast": np.maximum(0.04 - 0.0025 * a10 + 0.004 * z[:, 15], 0.01),
        "breast": f * (0.02 + 0.03 * u[:, 2]) * cohort.breast_shadow,
        "breast_y": 0.40 + 0.08 * u[:, 3],
        "texture": 0.8 + 0.4 * u[:, 4],
    }
    anatomy = {k: _f64(v) for k, v in anatomy.items()}

    # lesion: which lung, where in it, kind and size
    spec = cohort.lesion
    lu = _f64(rng.random((n, 12)))
    kind = np.where(lu[:, 0] < spec.opacity_share, 2, 1).astype(np.int8)
    size = np.where(kind[:, None] == 2, spec.opacity_size, spec.size)  # chosen range per row
    radius = _f64((size[:, 0] + (size[:, 1] - size[:, 0]) * lu[:, 1]) * _PX)
    side = np.where(lu[:, 2] < 0.5, -1, 1).astype(np.float64)
    rho, theta = np.sqrt(lu[:, 3]), _f64(2 * np.pi) * lu[:, 4]
    ax = np.maximum(0.7 * anatomy["lung_width"] - 0.5 * radius, 0.02)
    ay = np.maximum(0.7 * anatomy["lung_height"] - 0.5 * radius, 0.02)
    lesion_x = centre + side * anatomy["lung_offset"] + ax * rho * np.cos(theta)
    lesion_y = anatomy["lung_y"] + ay * rho * np.sin(theta)
    lo, hi = spec.contrast
    contrast = lo + (hi - lo) * lu[:, 5]
    opacity = kind == 2
    b_rho, b_theta = 0.5 * radius[:, None] * np.sqrt(lu[:, 6:9]), 2 * np.pi * lu[:, 9:12]
    bu = _f64(rng.random((n, 6)))
    blob_sd = radius[:, None] / _HALF_MAX * np.where(opacity[:, None], 0.85 + 0.4 * bu[:, :3], 1)
    blob_weight = np.where(opacity[:, None], 0.6 + 0.4 * bu[:, 3:], [1.0, 0.0, 0.0])
    blob_dx = np.where(opacity[:, None], b_rho * np.cos(b_theta), 0)
    blob_dy = np.where(opacity[:, None], b_rho * np.sin(b_theta), 0)

    # shortcuts' shapes (drawn for every image)
    su = _f64(rng.random((n, 6)))
    marker_jitter = (su[:, :2] < 0.5).astype(np.int8)
    line_x = centre + 0.6 * su[:, 2] - 0.3
    line_bend = 0.5 * su[:, 3] - 0.25
    line_end = 0.5 * su[:, 4]
    line_level = 0.25 + 0.15 * su[:, 5]
    noise_seed, rater_seed = (int(s) for s in rng.integers(0, 2**63, size=2))

    rater_rng = np.random.default_rng(rater_seed)
    rater_level = rater_rng.uniform(0.35, 0.65, (n, raters))
    moves = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])
    shift = moves[rater_rng.integers(0, len(moves), (n, raters))]
    shift[rater_rng.random((n, raters)) >= 0.3] = 0
    glyph, corner = _site_marker(cohort.site, cohort.marker)
    return Scene(
        female=female.astype(bool),
        age=_f64(age),
        **anatomy,
        lesion=np.asarray(lesion, dtype=bool),
        lesion_kind=kind,
        lesion_x=_f64(lesion_x),
        lesion_y=_f64(lesion_y),
        lesion_radius=radius,
        lesion_contrast=_f64(contrast),
        blob_dx=_f64(blob_dx),
        blob_dy=_f64(blob_dy),
        blob_sd=_f64(blob_sd),
        blob_weight=_f64(blob_weight),
        lesion_modulation=_f64(np.where(opacity, 0.6, 0.0)),
        rater_level=_f64(rater_level),
        rater_shift=shift.astype(np.int8).reshape(n, raters, 2),
        marker=np.asarray(marker, dtype=bool),
        marker_jitter=marker_jitter,
        line=np.asarray(line, dtype=bool),
        line_x=_f64(line_x),
        line_bend=_f64(line_bend),
        line_end=_f64(line_end),
        line_level=_f64(line_level),
        glyph=glyph,
        corner=corner,
        noise_seed=noise_seed,
    )


def _draw(
    cohort: Cohort, rng: np.random.Generator, raters: int
) -> tuple[Scene, np.ndarray, np.ndarray]:
    """A cohort's scene (one per patient for pair cohorts) and its rows' true and recorded
    labels (int8). Draw order: sex, age, labels, label noise, shortcuts, the rest."""
    n = cohort.n
    female = rng.random(n) < cohort.female
    age = np.round(rng.uniform(*cohort.age, n), 1)
    sex = np.where(female, "F", "M")
    if cohort.counterfactual_pairs:
        clean = np.tile(np.array([1, 0], dtype=np.int8), n)
        noisy = apply_label_noise(rng, clean, cohort.label_noise, {"sex": np.repeat(sex, 2)})
        marker, line = (
            shortcut_presence(rng, cohort.marker, n),
            shortcut_presence(rng, cohort.line, n),
        )
        lesion = np.ones(n, dtype=bool)
    else:
        clean = draw_labels(rng, n, cohort.prevalence)
        noisy = apply_label_noise(rng, clean, cohort.label_noise, {"sex": sex})
        marker = shortcut_presence(rng, cohort.marker, n, noisy)
        line = shortcut_presence(rng, cohort.line, n, noisy)
        lesion = clean.astype(bool)
    scene = draw_scene(rng, cohort, female, age, lesion, marker, line, raters)
    return scene, clean, noisy


def cohort_scene(params: Params, seed: int, index: int) -> Scene:
    """The scene cohort ``index`` of ``generate(params, seed)`` rendered (pair cohorts: one
    entry per patient, lesion shown); re-render it, e.g. with the lesions toggled, with
    ``render(scene, params.image_size, params.cohorts[index].style, lesion=...)``."""
    return _draw(params.cohorts[index], cohort_rng(seed, index), params.raters)[0]


# ----------------------------------------------------------------------------- rendering


def _grid(size: int) -> np.ndarray:
    """Pixel-centre coordinates ``(size,)`` in (-1, 1)."""
    return _f64((2 * np.arange(size) + 1) / size - 1)


@lru_cache(maxsize=32)
def _upsampler(size: int, coarse: int) -> np.ndarray:
    """``size x coarse`` Gaussian interpolation (SD 0.7 cells), rows of unit L2 norm: white
    noise on the coarse grid becomes a smooth field of unit variance at every pixel."""
    centres = (2 * np.arange(coarse) + 1) / coarse - 1
    d = (_grid(size)[:, None] - centres[None, :]) / (0.7 * 2 / coarse)
    op = np.exp(-0.5 * d**2)
    op /= np.sqrt((op**2).sum(axis=1, keepdims=True))
    return _f64(op)


def _smooth(z: np.ndarray, size: int) -> np.ndarray:
    """Up-sample coarse fields ``z`` (m, k, k) to ``(m, size, size)`` with two GEMMs (the
    result is the transposed field, which is as good: the noise is isotropic)."""
    m, k, _ = z.shape
    op = _upsampler(size, k)
    y = (z.reshape(m * k, k) @ op.T).reshape(m, k, size).transpose(0, 2, 1)
    y = np.ascontiguousarray(y).reshape(m * size, k)
    return (y @ op.T).reshape(m, size, size)


def _col(v: np.ndarray) -> np.ndarray:
    return v[:, None, None]


def _low_rank(
    rows: list[np.ndarray | float], cols: list[np.ndarray | float], out: np.ndarray
) -> np.ndarray:
    """``out[i] = sum_k rows[k][i] * cols[k][i]`` for ``(m, H, 1)`` row and ``(m, 1, W)``
    column factors (scalars allowed), as one batched matmul: at 64 px a broadcast
    ``row + col`` runs W-long inner loops and is four times slower."""
    m, h, w = out.shape
    r = np.empty((m, h, len(rows)), dtype=np.float64)
    c = np.empty((m, len(cols), w), dtype=np.float64)
    for k, (rk, ck) in enumerate(zip(rows, cols, strict=True)):
        r[:, :, k : k + 1] = rk
        c[:, k : k + 1, :] = ck
    return np.matmul(r, c, out=out)


def _ramp(
    out: np.ndarray, xterm: np.ndarray, yterm: np.ndarray, hi: float | np.ndarray = 1.0
) -> np.ndarray:
    """``out = clip(xterm + yterm, 0, hi)`` for ``(m, 1, W)`` and ``(m, H, 1)`` terms."""
    _low_rank([yterm, 1.0], [1.0, xterm], out)
    return np.clip(out, 0, hi, out=out)


def _ellipse_terms(
    dx: np.ndarray,
    dy: np.ndarray,
    a: np.ndarray | float,
    b: np.ndarray | float,
    k: float,
    amp: np.ndarray | None = None,
    power: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Terms of ``amp * k * (1 - |dx/a|^power - (dy/b)^2)`` (``dx`` ``(m, 1, W)``, ``dy``
    ``(m, H, 1)``): clipped by :func:`_ramp`, a ramp from 0 on the outline to ``amp``
    inside (``amp`` None means 1; ``power`` 4 squares the sides)."""
    g = _f64(k) if amp is None else _col(amp) * k
    a = _col(a) if isinstance(a, np.ndarray) else a
    b = _col(b) if isinstance(b, np.ndarray) else b
    return g - g * (dx / a) ** power, -g * (dy / b) ** 2


def _lung(sc: Scene, x: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Unit lung field (1 inside, linear edge, 0 outside) into ``out``."""
    dx = np.abs(x - _col(sc.centre)) - _col(sc.lung_offset)
    return _ramp(
        out, *_ellipse_terms(dx, y - _col(sc.lung_y), sc.lung_width, sc.lung_height, 3, None)
    )


def lung_field(scene: Scene, image_size: int) -> np.ndarray:
    """The unit lung fields ``(n, H, W)`` float64 the lesions are clipped to (a mask is
    always inside ``lung_field > 0.5``)."""
    g = _grid(image_size)
    out = np.empty((len(scene), image_size, image_size), dtype=np.float64)
    return _lung(scene, g[None, None, :], g[None, :, None], out)


def _glyph_pixels(glyph: str, cell: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column offsets of the bright pixels of ``glyph`` drawn with ``cell`` px cells."""
    bitmap = np.array([[c == "#" for c in row] for row in GLYPHS[glyph]])
    rows, cols = np.nonzero(np.kron(bitmap, np.ones((cell, cell), dtype=bool)))
    return rows, cols


def _lesion_profile(
    sc: Scene, x: np.ndarray, y: np.ndarray, lung: np.ndarray, modulation: np.ndarray
) -> np.ndarray:
    """Lesion profiles ``(m, H, W)`` with peak 1 (sub-blob Gaussians, modulated, cut at
    :data:`_TAIL`, clipped to ``lung``); ``modulation``: smooth unit fields ``(m, H, W)``."""
    sd2 = -0.5 / sc.blob_sd**2  # (m, 3)
    gx = np.exp(sd2[:, :, None] * (x[0] - (sc.lesion_x[:, None] + sc.blob_dx)[:, :, None]) ** 2)
    gy = np.exp(
        sd2[:, :, None] * (y[0, :, 0] - (sc.lesion_y[:, None] + sc.blob_dy)[:, :, None]) ** 2
    )
    gx *= sc.blob_weight[:, :, None]
    p = np.matmul(gy.transpose(0, 2, 1), gx)  # (m, H, 3) @ (m, 3, W): sum of separable blobs
    modulation *= _col(sc.lesion_modulation)
    modulation += 1
    p *= modulation
    np.maximum(p, 0, out=p)
    p /= np.maximum(p.max(axis=(1, 2), keepdims=True), 1e-12)
    p -= _TAIL
    np.maximum(p, 0, out=p)
    p *= lung
    p /= np.maximum(p.max(axis=(1, 2), keepdims=True), 1e-12)
    return p


def _shift(mask: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Shift each mask ``(m, H, W)`` by its ``(dy, dx)`` pixels (lesions never reach the
    image border, so rolling is a shift)."""
    out = mask.copy()
    for dy, dx in {tuple(s) for s in shifts.tolist()} - {(0, 0)}:
        sel = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
        out[sel] = np.roll(mask[sel], (dy, dx), axis=(1, 2))
    return out


def _render_block(
    sc: Scene,
    show: np.ndarray,
    size: int,
    style: ScannerStyle,
    rng: np.random.Generator,
    images: np.ndarray,
    masks: np.ndarray,
    rater_masks: np.ndarray | None,
    shortcut_masks: np.ndarray,
) -> None:
    """Render one block of images into the given output slices."""
    m = len(sc)
    g = _grid(size)
    x, y = g[None, None, :], g[None, :, None]  # (1, 1, W), (1, H, 1)
    shape = (m, size, size)

    # pixel-level randomness, always drawn in this order and amount
    coarse8 = _f64(rng.standard_normal((m, 8, 8)))
    coarse16 = _f64(rng.standard_normal((m, 16, 16)))
    coarse_lesion = _f64(rng.standard_normal((m, 6, 6)))

    # body with texture: background + body * (level - background + texture)
    up = _upsampler(16, 8)
    coarse16 *= 0.6
    coarse16 += up @ coarse8 @ up.T
    coarse16 *= _col(0.03 * sc.texture)
    img = _smooth(coarse16, size)
    img += _col(sc.body_level - sc.background)
    body = np.empty(shape, dtype=np.float64)
    _ramp(
        body,
        *_ellipse_terms(x - _col(sc.centre), y - _col(sc.body_y), sc.body_width, 1.45, 8, power=4),
    )
    img *= body
    img += _col(sc.background)

    # lungs: darkened by lung_depth, rib bands, nothing behind the heart
    lung = _lung(sc, x, y, np.empty(shape, dtype=np.float64))
    pos = np.flatnonzero(show)  # images showing their lesion
    lung_pos = lung[pos]
    tmp = body  # reuse
    omega = _f64(2 * np.pi) / sc.rib_period
    a = _col(omega) * y + _col(sc.rib_phase)  # (m, H, 1)
    b = _col(omega * sc.rib_bend) * (x - _col(sc.centre)) ** 2  # (m, 1, W)
    rc = _col(sc.rib_contrast)
    depth = -_col(sc.lung_depth)
    rows = [rc * np.cos(a), -rc * np.sin(a), rc * _H2 * np.cos(2 * a), -rc * _H2 * np.sin(2 * a)]
    cols = [np.cos(b), np.sin(b), np.cos(2 * b), np.sin(2 * b)]
    ribs = _low_rank([*rows, depth], [*cols, 1.0], tmp)  # rc (cos t + h cos 2t) - depth
    ribs *= lung
    hx, hy = (
        (x - _col(sc.heart_x)) / _col(sc.heart_width),
        (y - _col(sc.heart_y)) / _col(sc.heart_height),
    )
    heart = _ramp(lung, 1 - 2.5 + 2.5 * hx**2, 2.5 * hy**2)  # lung's buffer: 0 in the heart
    ribs *= heart
    img += ribs

    # breast shadow (women): soft ellipses over the lower lateral lung fields
    if sc.breast.any():
        dx = np.abs(x - _col(sc.centre)) - _col(sc.lung_offset + 0.1)
        terms = _ellipse_terms(dx, y - _col(sc.breast_y), 0.3, 0.24, 1.5, sc.breast)
        img += _ramp(tmp, *terms, hi=_col(sc.breast))

    # lesions and their masks
    if pos.size:
        sp = sc.take(pos)
        profile = _lesion_profile(sp, x, y, lung_pos, _smooth(coarse_lesion[pos], size))
        img[pos] += _col(sp.lesion_contrast) * profile
        masks[pos] = profile >= 0.5
        if rater_masks is not None:
            big = masks[pos].sum(axis=(1, 2)) >= 12
            for r in range(rater_masks.shape[1]):
                rm = (profile >= sp.rater_level[:, r, None, None]).astype(np.uint8)
                rater_masks[pos, r] = _shift(rm, sp.rater_shift[:, r] * big[:, None])

    # tube: a bright curved line from the top edge down to line_end
    tube = np.flatnonzero(sc.line)
    if tube.size:
        st = sc.take(tube)
        half_width = 0.9 * _PX
        path = _col(st.line_x) + _col(st.line_bend) * (y + 1) ** 2  # (t, H, 1)
        weight = np.clip((_col(st.line_end) - y) / (2 * _PX), 0, 1) * _col(st.line_level)
        d = np.abs(x - path)
        d *= -1 / half_width
        d += 1
        np.clip(d, 0, 1, out=d)
        d *= weight
        img[tube] += d
        shortcut_masks[tube] = d > 0

    # burned-in marker glyph
    marks = np.flatnonzero(sc.marker)
    if marks.size:
        cell = max(1, round(size / 32))
        glyph_rows, glyph_cols = _glyph_pixels(sc.glyph, cell)
        top, left = sc.corner.startswith("top"), sc.corner.endswith("left")
        r0 = 2 * cell if top else size - 2 * cell - 5 * cell
        c0 = 2 * cell if left else size - 2 * cell - 3 * cell
        jit = sc.marker_jitter[marks].astype(np.int64) * cell
        rr = r0 + (jit[:, :1] if top else -jit[:, :1]) + glyph_rows
        cc = c0 + (jit[:, 1:] if left else -jit[:, 1:]) + glyph_cols
        img[marks[:, None], rr, cc] = MARKER_LEVEL
        shortcut_masks[marks[:, None], rr, cc] = 1

    out = apply_style(img[:, None], style, rng, copy=False)
    out *= 255
    out += 0.5  # values in [0.5, 255.5]: the uint8 cast rounds
    images[...] = out


def render(
    scene: Scene,
    image_size: int,
    style: ScannerStyle,
    lesion: np.ndarray | None = None,
) -> Rendered:
    """Render ``scene`` at ``image_size`` through ``style``. ``lesion`` (bool, length n)
    overrides which images show their lesion; everything else, the noise included, stays
    the same, so ``lesion=~scene.lesion`` gives the counterfactual images."""
    n, size = len(scene), image_size
    show = scene.lesion if lesion is None else np.asarray(lesion, dtype=bool)
    if show.shape != (n,):
        raise ValueError(f"lesion must have shape ({n},), got {show.shape}")
    raters = scene.rater_level.shape[1]
    images = np.empty((n, 1, size, size), dtype=np.uint8)
    masks = np.zeros((n, size, size), dtype=np.uint8)
    rater_masks = np.zeros((n, raters, size, size), dtype=np.uint8) if raters else None
    shortcut_masks = np.zeros((n, size, size), dtype=np.uint8)
    for b, lo in enumerate(range(0, n, BLOCK)):
        s = slice(lo, min(lo + BLOCK, n))
        rng = np.random.default_rng([scene.noise_seed, b])
        _render_block(
            scene.take(s),
            show[s],
            size,
            style,
            rng,
            images[s],
            masks[s],
            None if rater_masks is None else rater_masks[s],
            shortcut_masks[s],
        )
    return Rendered(images, masks, rater_masks, shortcut_masks)


# ----------------------------------------------------------------------------- generate


def _interleave(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rows ``a[0], b[0], a[1], b[1], ...``."""
    return np.stack([a, b], axis=1).reshape(-1, *a.shape[1:])


def _cohort_batch(c: Cohort, index: int, seed: int, start: int, params: Params) -> SynthBatch:
    """Cohort ``index``'s batch; its samples are numbered from ``start``."""
    scene, clean, noisy = _draw(c, cohort_rng(seed, index), params.raters)
    size = params.image_size
    if c.counterfactual_pairs:
        n = len(scene)
        with_, without = (render(scene, size, c.style, np.full(n, v)) for v in (True, False))
        images = _interleave(with_.images, without.images)
        masks = _interleave(with_.masks, without.masks)
        raters = None
        if with_.rater_masks is not None and without.rater_masks is not None:
            raters = _interleave(with_.rater_masks, without.rater_masks)
        shortcuts = _interleave(with_.shortcut_masks, without.shortcut_masks)
        rows = np.repeat(np.arange(len(scene)), 2)
        kind = np.where(clean == 1, scene.lesion_kind[rows], 0)
    else:
        images, masks, raters, shortcuts = render(scene, size, c.style)
        rows = np.arange(len(scene))
        kind = np.where(scene.lesion, scene.lesion_kind, 0)
    cols = {
        "sex": np.where(scene.female[rows], "F", "M").astype(object),
        "age": np.round(scene.age[rows].astype(np.float64), 1),
        "marker": scene.marker[rows].astype(np.int8),
        "line": scene.line[rows].astype(np.int8),
        "lesion_type": np.asarray(LESION_TYPES, dtype=object)[kind],
        "lesion_area": masks.sum(axis=(1, 2), dtype=np.int64),
        "scanner": np.full(len(rows), summary(c.style), dtype=object),
    }
    frame = metadata(c.site, start, clean, noisy, CLASSES, cols)
    if c.counterfactual_pairs:
        frame["patient_id"] = [f"{c.site}-P{p:07d}" for p in rows]
        frame["pair"] = np.where(clean == 1, "with_lesion", "without_lesion").astype(object)
    return SynthBatch(frame, images, masks, raters, extra={"shortcut_masks": shortcuts})


def generate(params: Params, seed: int) -> SynthBatch:
    """Radiographs ``(n, 1, H, W)`` uint8 with lesion masks ``(n, H, W)`` (and rater masks
    ``(n, R, H, W)`` when ``raters`` > 0) and shortcut masks ``(n, H, W)`` (extra array
    ``shortcut_masks``) for every cohort, in cohort order."""
    batches, start = [], 0
    pairs = any(c.counterfactual_pairs for c in params.cohorts)
    for i, c in enumerate(params.cohorts):
        batch = _cohort_batch(c, i, seed, start, params)
        if pairs and "pair" not in batch.frame:
            batch.frame["pair"] = "none"
        batches.append(batch)
        start += len(batch)
    return batches[0] if len(batches) == 1 else concat(batches)
