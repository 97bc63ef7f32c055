"""The explanation gallery: PNG overlays of images, attribution maps and masks.

One PNG per explained image, ``gallery/<split>-<sample id>.png`` beside the report: panels
left to right, each scaled up ``SCALE`` times with a caption above it: the image; each
method's map over the image (positive attribution, normalised to its maximum, as a red
to yellow heat overlay); the lesion mask (green outline) and the shortcut's pixels
(magenta); the raters' masks (one outline colour per rater). Files are written atomically
and files of an earlier report that this one does not write are removed.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.common.optional import heavy
from benchmark.results.figures import write_pngs

GALLERY_DIR = "gallery"
SCALE = 3
CAPTION = 14  # caption band height in pixels
RATER_COLOURS = [(0, 200, 255), (255, 160, 0), (160, 255, 80), (255, 80, 200)]


def _gray(image: np.ndarray) -> np.ndarray:
    g = np.clip(np.asarray(image, dtype=np.float64), 0, 1) * 255
    return np.repeat(g[..., None], 3, axis=2)


def _heat(image: np.ndarray, attr: np.ndarray) -> np.ndarray:
    """Positive attribution over the image: alpha = relevance, colour red to yellow."""
    a = np.clip(np.nan_to_num(np.asarray(attr, dtype=np.float64)), 0, None)
    a = a / a.max() if a.max() > 0 else a
    colour = np.stack([np.full_like(a, 255), 255 * a, np.zeros_like(a)], axis=2)
    alpha = 0.75 * a[..., None]
    return (1 - alpha) * _gray(image) + alpha * colour


def _outline(mask: np.ndarray) -> np.ndarray:
    """The mask's boundary pixels (in the mask, next to a pixel outside it)."""
    m = np.asarray(mask, dtype=bool)
    pad = np.pad(m, 1)
    inner = pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    return m & ~inner


def _masks(image: np.ndarray, lesion: np.ndarray, shortcut: np.ndarray | None) -> np.ndarray:
    out = _gray(image)
    if shortcut is not None:
        out[np.asarray(shortcut, dtype=bool)] = (255, 0, 255)
    out[_outline(lesion)] = (0, 255, 0)
    return out


def _raters(image: np.ndarray, raters: np.ndarray) -> np.ndarray:
    out = _gray(image)
    for r, mask in enumerate(raters):
        out[_outline(mask)] = RATER_COLOURS[r % len(RATER_COLOURS)]
    return out


def _panels(item: dict[str, Any]) -> list[tuple[str, np.ndarray]]:
    image = item["image"]
    panels = [("image", _gray(image))]
    panels += [(method, _heat(image, m)) for method, m in item["maps"].items()]
    panels.append(("lesion, shortcut", _masks(image, item["lesion"], item["shortcut"])))
    if item["raters"] is not None:
        panels.append(("raters", _raters(image, item["raters"])))
    return panels


def render(item: dict[str, Any]) -> bytes:
    """One item's PNG (``image``, ``maps`` by method, ``lesion``, ``raters``,
    ``shortcut``)."""
    Image, ImageDraw = heavy("PIL", "Image", "ImageDraw")
    panels = _panels(item)
    h, w = np.asarray(item["image"]).shape
    pw, ph = w * SCALE, h * SCALE
    canvas = Image.new("RGB", (len(panels) * (pw + 4), ph + CAPTION), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (title, pixels) in enumerate(panels):
        tile = Image.fromarray(np.round(pixels).astype(np.uint8)).resize((pw, ph), Image.NEAREST)
        x = i * (pw + 4)
        canvas.paste(tile, (x, CAPTION))
        draw.text((x + 2, 1), title.replace("integrated_gradients", "IG"), fill=(0, 0, 0))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def file_name(item: dict[str, Any]) -> str:
    """``<split>-<sample id>.png`` with any character outside ``[A-Za-z0-9._-]`` as ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{item['split']}-{item['sample_id']}") + ".png"


def write_gallery(items: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Write each item's PNG into ``folder``; remove PNGs there this call did not write
    (an earlier report's). No items and no folder: nothing happens."""
    return write_pngs({file_name(item): render(item) for item in items}, folder)
