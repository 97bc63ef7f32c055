"""Site and scanner style: acquisition effects applied to a batch of images.

Images are float64 ``(n, C, H, W)`` in [0, 1]. Every operation is vectorised over the
batch; spatial filters are written as ``H x H`` (and ``W x W``) linear operators applied
with one matrix product per axis. Hand-written on purpose: MONAI's transforms run one
image at a time; blur, bias field, contrast and noise through them measured 385 64x64
images per CPU second, against about 6,900 here (README, "Synthetic failure tasks"), and
the generators' target is 5,000 per second per core (``benchmarks/performance/generators.py``).

Order of application (a simple acquisition chain): point-spread blur -> resolution loss
(down- then up-sampling) -> bias field and vignetting (multiplicative) -> contrast, gamma
and intensity offset -> noise (Gaussian or Poisson) -> clip to [0, 1].

Speed notes (one core, 5,000 64x64 images): NumPy's ziggurat normal sampler costs about
0.2 s and exact ``rng.poisson`` about 1.2 s, more than the whole rendering budget, so
:func:`normal_noise` draws normals by table look-up and Poisson noise is exact only at low
counts (see :func:`apply_style`). Every step works in place on one float64 array.

Why float64: BLAS and NumPy's SIMD kernels are chosen per CPU (AVX-512, AVX2, ...) and
round the last bits differently. In float32 that moved a few uint8 pixels between CPUs,
so a rebuild on another machine missed its pin; in float64 the differences (~1e-16) stay
far below what the uint8 output resolves (``tests/test_synth_tasks.py`` checks it by
switching the kernels off).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
from pydantic import Field
from scipy.special import ndtri

from benchmark.common.schema import StrictModel

#: expected photon count from which Poisson noise uses its normal approximation
POISSON_EXACT_BELOW = 50.0


class ScannerStyle(StrictModel):
    """One site's acquisition style. The defaults leave an image unchanged except for noise.

    - ``noise``: ``gaussian`` adds N(0, ``noise_level``^2) in intensity units (drawn by
      :func:`normal_noise`); ``poisson`` draws photon counts with mean
      ``x / noise_level^2`` (so the SD at x = 1 is ``noise_level``) and rescales (exact
      below :data:`POISSON_EXACT_BELOW` counts, rounded normal approximation above).
    - ``blur``: SD of the Gaussian point-spread function, in pixels (0 = none).
    - ``resolution``: acquisition resolution as a fraction of the output (1 = native;
      0.5 = acquired at half size, then linearly up-sampled).
    - ``contrast``: gain about mid-grey 0.5; ``gamma``: ``x ** gamma``; ``offset``: added.
    - ``bias_field``: peak log-gain of a smooth random multiplicative field (0 = none).
    - ``vignetting``: fractional intensity loss at the image corners (0 = none).
    """

    noise: Literal["gaussian", "poisson"] = "gaussian"
    noise_level: float = Field(default=0.02, ge=0, le=0.5)
    blur: float = Field(default=0.0, ge=0, le=8)
    resolution: float = Field(default=1.0, gt=0.05, le=1)
    contrast: float = Field(default=1.0, gt=0, le=4)
    gamma: float = Field(default=1.0, gt=0.1, le=5)
    offset: float = Field(default=0.0, ge=-0.5, le=0.5)
    bias_field: float = Field(default=0.0, ge=0, le=1)
    vignetting: float = Field(default=0.0, ge=0, lt=1)


def summary(style: ScannerStyle | None) -> str:
    """The non-default fields of ``style`` as ``key=value`` text (``none`` / ``default``)."""
    if style is None:
        return "none"
    fields = style.model_dump(exclude_defaults=True)
    text = ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
    return text or "default"


@lru_cache(maxsize=64)
def gaussian_operator(size: int, sigma: float) -> np.ndarray:
    """``size x size`` Gaussian blur matrix with reflected borders (rows sum to 1)."""
    if sigma <= 0:
        return np.eye(size, dtype=np.float64)
    radius = max(1, int(np.ceil(3 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    op = np.zeros((size, size), dtype=np.float64)
    for k, w in zip(offsets, kernel, strict=True):
        j = np.arange(size) + k
        j = np.where(j < 0, -j - 1, j)  # reflect (edge pixel repeated)
        j = np.where(j >= size, 2 * size - j - 1, j)
        j = np.clip(j, 0, size - 1)
        np.add.at(op, (np.arange(size), j), w)
    return op.astype(np.float64)


@lru_cache(maxsize=64)
def resample_operator(size: int, fraction: float) -> np.ndarray:
    """``size x size`` operator: box-average down to ``round(size * fraction)`` pixels,
    then linear interpolation back up (pixel centres aligned)."""
    small = max(2, round(size * fraction))
    if small >= size:
        return np.eye(size, dtype=np.float64)
    edges = np.linspace(0, size, small + 1)
    down = np.zeros((small, size))
    for i in range(small):  # area weights of each output cell over the input pixels
        lo, hi = edges[i], edges[i + 1]
        for j in range(int(np.floor(lo)), min(size, int(np.ceil(hi)))):
            down[i, j] = min(hi, j + 1) - max(lo, j)
        down[i] /= down[i].sum()
    centres_small = (np.arange(small) + 0.5) * size / small - 0.5
    up = np.zeros((size, small))
    for r in range(size):
        pos = np.clip(np.interp(r, centres_small, np.arange(small)), 0, small - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, small - 1)
        t = pos - lo
        up[r, lo] += 1 - t
        up[r, hi] += t
    return (up @ down).astype(np.float64)


def apply_separable(x: np.ndarray, op_h: np.ndarray, op_w: np.ndarray) -> np.ndarray:
    """``op_h @ img @ op_w.T`` for every image of ``x`` (..., H, W); a new C-contiguous
    array. One large GEMM along W, then a batched product along H (no transposed copies)."""
    shape = x.shape
    h, w = shape[-2:]
    y = (np.ascontiguousarray(x).reshape(-1, w) @ op_w.T).reshape(-1, h, w)
    return np.matmul(op_h, y).reshape(shape)


@lru_cache(maxsize=4)
def _normal_table() -> np.ndarray:
    """The 65,536 equiprobable quantiles of N(0, 1), rescaled to unit variance (float64)."""
    q = ndtri((np.arange(65536) + 0.5) / 65536)
    table = (q / q.std()).astype(np.float64)
    table.flags.writeable = False  # shared by every caller
    return table


def normal_noise(
    rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0
) -> np.ndarray:
    """Float32 N(0, ``scale``^2) draws by inverse-CDF table look-up on 16-bit uniforms.

    Each value is one of 65,536 equiprobable normal quantiles (tails end at +-4.3 SD, a
    probability of 2e-5 beyond), about 3x faster than ``rng.standard_normal``; after the
    uint8 quantisation of an image the difference from exact normals is invisible. Uses
    ``rng``'s bit generator directly (``ceil(size / 4)`` 64-bit words).
    """
    size = int(np.prod(shape))
    bits = rng.bit_generator.random_raw(-(-size // 4)).view(np.uint16)[:size]
    table = _normal_table() if scale == 1 else _normal_table() * np.float64(scale)
    return np.take(table, bits).reshape(shape)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [-1, 1]: ``(H, 1)`` rows and ``(1, W)`` columns."""
    yy = np.linspace(-1, 1, h, dtype=np.float64)[:, None]
    xx = np.linspace(-1, 1, w, dtype=np.float64)[None, :]
    return yy, xx


def bias_field(rng: np.random.Generator, n: int, h: int, w: int, peak: float) -> np.ndarray:
    """Smooth multiplicative fields ``(n, 1, H, W)``: ``exp`` of a random quadratic surface
    scaled so its largest absolute log-gain is ``peak``."""
    yy, xx = _grid(h, w)
    c = rng.standard_normal((n, 5)).astype(np.float64)[:, :, None, None]  # c[:, k]: (n, 1, 1)
    # c0 x + c1 y + c2 xy + c3 (x^2 - 1/3) + c4 (y^2 - 1/3) as a rank-3 batched product
    # [row, 1, c2 y] @ [1, col, x]: one pass over (n, H, W) instead of three broadcasts
    rows = np.empty((n, h, 3), dtype=np.float64)
    rows[:, :, :1] = c[:, 1] * yy + c[:, 4] * (yy**2 - 1 / 3)
    rows[:, :, 1:2] = 1
    rows[:, :, 2:] = c[:, 2] * yy
    cols = np.empty((n, 3, w), dtype=np.float64)
    cols[:, :1] = 1
    cols[:, 1:2] = c[:, 0] * xx + c[:, 3] * (xx**2 - 1 / 3)
    cols[:, 2:] = xx
    log_gain = np.matmul(rows, cols)
    flat = log_gain.reshape(n, -1)
    scale = np.maximum(flat.max(axis=1), -flat.min(axis=1))
    log_gain *= (peak / np.maximum(scale, 1e-6))[:, None, None]
    return np.exp(log_gain, out=log_gain)[:, None]


def vignette(h: int, w: int, strength: float) -> np.ndarray:
    """Radial fall-off ``(H, W)``: 1 at the centre, ``1 - strength`` at the corners."""
    yy, xx = _grid(h, w)
    return (1 - strength * (xx**2 + yy**2) / 2).astype(np.float64)


def _poisson(x: np.ndarray, level: float, rng: np.random.Generator) -> None:
    """Replace ``x`` (float64, in place) by Poisson counts of mean ``x / level^2``, rescaled.

    Exact ``rng.poisson`` (about 60 ns a draw) only where the mean count is below
    :data:`POISSON_EXACT_BELOW`; above it, N(lam, lam) rounded to whole counts, whose
    skewness (``lam ** -0.5`` <= 0.14) is the only difference from Poisson. The normals
    are drawn for every pixel first, so two images that differ in a few pixels share the
    noise elsewhere (only the exact low-count draws can shift).
    """
    peak = np.float64(1.0 / level**2)
    lam = np.maximum(x, 0, out=x)
    lam *= peak
    flat = lam.reshape(-1)
    z = normal_noise(rng, x.shape)  # first: a fixed number of draws
    low = np.flatnonzero(flat < POISSON_EXACT_BELOW)
    exact = rng.poisson(flat[low]) if low.size else None
    z *= np.sqrt(lam)
    lam += z
    np.rint(lam, out=lam)
    np.maximum(lam, 0, out=lam)
    if exact is not None:
        flat[low] = exact
    lam /= peak


def apply_style(
    x: np.ndarray, style: ScannerStyle, rng: np.random.Generator, *, copy: bool = True
) -> np.ndarray:
    """Apply ``style`` to float32 images ``(n, C, H, W)`` in [0, 1]; returns a new array
    (``copy=False``: may work in, and return, ``x`` itself when it is float64)."""
    n, _, h, w = x.shape
    if style.blur > 0 or style.resolution < 1:
        op_h = resample_operator(h, style.resolution) @ gaussian_operator(h, style.blur)
        op_w = resample_operator(w, style.resolution) @ gaussian_operator(w, style.blur)
        x = apply_separable(x.astype(np.float64, copy=False), op_h, op_w)
    elif copy or x.dtype != np.float64 or not x.flags.c_contiguous:
        x = np.array(x, dtype=np.float64, order="C")
    if style.bias_field > 0:
        x *= bias_field(rng, n, h, w, style.bias_field)
    if style.vignetting > 0:
        x *= vignette(h, w, style.vignetting)
    if style.contrast != 1 or style.offset != 0:
        x *= np.float64(style.contrast)
        x += np.float64(0.5 + style.offset - 0.5 * style.contrast)
    if style.gamma != 1:
        np.clip(x, 0, 1, out=x)
        x **= np.float64(style.gamma)
    if style.noise_level > 0:
        if style.noise == "gaussian":
            x += normal_noise(rng, x.shape, style.noise_level)
        else:
            _poisson(x, style.noise_level, rng)
    return np.clip(x, 0, 1, out=x)
