"""Helpers for sources that read files a user keeps on disk (credentialed data sets,
downloaded archives): path resolution, clear errors for what is missing, and image loading.

Paths in a spec may use ``~`` and ``$VARS`` (``$CHEXPERT_ROOT``); a variable that is not set
is an error naming it, never a silently literal ``$CHEXPERT_ROOT`` folder. Relative paths
are taken from the spec's folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.common.optional import heavy
from benchmark.errors import BuildError, DataUnavailableError

_UNSET_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def resolve_path(text: str, spec_dir: Path, *, dataset: str, how: str) -> Path:
    """``text`` with ``~`` and ``$VARS`` expanded, relative to ``spec_dir``.

    ``how`` tells the user how to obtain the data; it is repeated in every error.
    """
    expanded = os.path.expandvars(os.path.expanduser(text))
    unset = _UNSET_VAR.findall(expanded)
    if unset:
        raise DataUnavailableError(
            f"{dataset}: environment variable {', '.join('$' + v for v in unset)} is not set; "
            f"point it at your local copy. {how}"
        )
    path = Path(expanded)
    return path if path.is_absolute() else spec_dir / path


def require(path: Path, *, dataset: str, how: str, what: str = "file") -> Path:
    """``path`` if it exists (a file, or a folder when ``what == 'folder'``), else a
    :class:`DataUnavailableError` naming it."""
    ok = path.is_dir() if what == "folder" else path.is_file()
    if not ok:
        raise DataUnavailableError(f"{dataset}: expected {what} {path} is missing. {how}")
    return path


def read_table(path: Path, *, dataset: str, how: str, columns: Sequence[str]) -> pd.DataFrame:
    """A metadata table read as text (ids like ``00012`` stay intact) that must hold
    ``columns``: a spreadsheet (``.xlsx``/``.xls``), or delimited text whose first line
    decides between tabs and commas (``.csv``, ``.csv.gz``, ``.tab``)."""
    require(path, dataset=dataset, how=how)
    excel = path.suffix.lower() in (".xlsx", ".xls")
    try:
        if excel:
            frame = pd.read_excel(path, dtype=str)
        else:
            head = pd.read_csv(path, dtype=str, nrows=0)
            tabs = len(head.columns) == 1 and "\t" in str(head.columns[0])
            frame = pd.read_csv(path, dtype=str, keep_default_na=True, sep="\t" if tabs else ",")
    except Exception as e:  # pandas/openpyxl raise many types for malformed files
        kind = "a spreadsheet" if excel else "a delimited table"
        raise BuildError(f"{dataset}: cannot read {path} as {kind}: {e}") from e
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BuildError(
            f"{dataset}: {path.name} lacks columns {missing}; it has {list(frame.columns)}"
        )
    return frame


def root_folder(text: str, spec_dir: Path, *, dataset: str, how: str) -> Path:
    """A data set's root folder from a spec (``$VARS`` expanded), which must exist."""
    path = resolve_path(text, spec_dir, dataset=dataset, how=how)
    return require(path, dataset=dataset, how=how, what="folder")


def subsample_patients(
    patients: pd.Series, n: int | None, rng: np.random.Generator
) -> tuple[pd.Series, int]:
    """Row mask keeping ``n`` patients drawn with ``rng`` (all if ``n`` is None or larger),
    and the number of patients dropped."""
    unique = np.array(sorted(pd.unique(patients.astype(str))))
    if n is None or n >= len(unique):
        return pd.Series(True, index=patients.index), 0
    chosen = set(unique[np.sort(rng.choice(len(unique), size=n, replace=False))])
    return patients.astype(str).isin(chosen), len(unique) - n


def check_images(
    paths: Sequence[Path], *, dataset: str, how: str, listed_in: str, what: str = "image"
) -> None:
    """A :class:`DataUnavailableError` naming the first missing image and the count."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DataUnavailableError(
            f"{dataset}: {len(missing)} of {len(paths)} {what} file(s) listed in {listed_in} "
            f"are missing, e.g. {missing[0]}. {how}"
        )


def find_table(root: Path, name: str, *, dataset: str, how: str) -> Path:
    """``root / name``, or its ``.gz`` twin when only that exists (PhysioNet ships ``.csv.gz``;
    both are read the same way); a :class:`DataUnavailableError` naming both if neither is."""
    path = root / name
    if path.is_file() or name.endswith(".gz"):
        return path
    gz = root / f"{name}.gz"
    if gz.is_file():
        return gz
    raise DataUnavailableError(f"{dataset}: expected file {path} (or {gz.name}) is missing. {how}")


def _load_one(path: Path, size: int, mode: str) -> np.ndarray:
    Image, ImageOps, UnidentifiedImageError = heavy(
        "PIL", "Image", "ImageOps", "UnidentifiedImageError"
    )

    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img) if img.format == "JPEG" else img
            if img.mode in ("I;16", "I;16B", "I"):  # 16-bit radiographs: scale to 8 bit
                arr = np.asarray(img, dtype=np.float64)
                top = float(arr.max()) or 1.0
                img = Image.fromarray(np.round(arr * (255.0 / top)).astype(np.uint8))
            img = img.convert(mode)
            # centre crop to a square, then resize (Pillow's bilinear filter is antialiased)
            img = ImageOps.fit(img, (size, size), method=Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except FileNotFoundError as e:
        raise DataUnavailableError(f"image file {path} is missing") from e
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise BuildError(f"image file {path} is corrupt or not an image: {e}") from e
    return arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)


def load_images(paths: Sequence[Path], size: int, channels: int) -> np.ndarray:
    """Images as uint8 ``(n, channels, size, size)``: each centre-cropped to a square and
    resized with Pillow's antialiased bilinear filter. ``channels``: 1 (grey) or 3 (RGB).

    Decoding runs on a thread pool (Pillow releases the GIL while decoding); the output
    order is the order of ``paths``, so the bytes do not depend on the thread count.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(paths), channels, size, size), dtype=np.uint8)
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, arr in enumerate(pool.map(lambda p: _load_one(Path(p), size, mode), paths)):
            out[i] = arr
    return out
