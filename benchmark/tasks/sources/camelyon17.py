"""``camelyon17``: the Camelyon17-WILDS lymph-node patches, from a local copy.

Layout expected under ``root`` (the folder ``camelyon17_v1.0`` that the ``wilds`` package
downloads; ``root`` may also be its parent)::

    metadata.csv     ,patient,node,x_coord,y_coord,tumor,slide,center,split
    patches/patient_004_node_4/patch_patient_004_node_4_x_3328_y_21792.png

Format facts, checked in ``p-lambda/wilds`` (``wilds/datasets/camelyon17_dataset.py``) and in
public loaders that reproduce the file:

* ``metadata.csv`` starts with an unnamed index column (WILDS reads it with
  ``index_col=0``); ``patient`` is a zero-padded text id (``004``, read with
  ``dtype={'patient': 'str'}``); ``tumor`` is the label (1: the central 32x32 region holds
  tumour tissue); ``slide`` is 0-49; ``center`` is the hospital, 0-4.
* Patch path: ``patches/patient_{patient}_node_{node}/
  patch_patient_{patient}_node_{node}_x_{x_coord}_y_{y_coord}.png``, 96x96 RGB.
* WILDS's official split: hospitals 0, 3 and 4 train, hospital 1 is the OOD validation set
  and hospital 2 the test set. In the file, ``split`` is 0 (train) or 1 (WILDS's
  in-distribution validation patches, drawn from the training slides); WILDS overwrites it
  for hospitals 1 and 2. It is kept as ``wilds_split`` for reference only.

The full data set holds about 455k patches; ``patches_per_slide`` draws a seeded sample of
each slide's patches so the images fit in memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field

from benchmark.common.hashing import sha256_file
from benchmark.errors import BuildError
from benchmark.tasks.sources.base import (
    Source,
    SourceContext,
    SourceData,
    SourceParams,
    normalise_columns,
)
from benchmark.tasks.sources.files import (
    check_images,
    load_images,
    read_table,
    root_folder,
)

DATASET = "Camelyon17-WILDS"
HOW = (
    "Download Camelyon17-WILDS (https://wilds.stanford.edu/datasets/, e.g. "
    "`wilds.get_dataset('camelyon17', download=True)`) and set $CAMELYON17_ROOT to the "
    "camelyon17_v1.0 folder."
)
REQUIRED = ("patient", "node", "x_coord", "y_coord", "tumor", "slide", "center")
SUBFOLDER = "camelyon17_v1.0"


class Camelyon17Params(SourceParams):
    root: str
    image_size: int = Field(default=96, ge=16, le=512)
    metadata: str = "metadata.csv"
    patches_per_slide: int | None = Field(
        default=None,
        ge=1,
        description="Keep at most this many patches per slide, drawn with the task seed "
        "(None: every patch).",
    )


def patch_path(patient: str, node: str, x: str, y: str) -> str:
    """The WILDS path of one patch, relative to the data folder."""
    folder = f"patient_{patient}_node_{node}"
    return f"patches/{folder}/patch_{folder}_x_{x}_y_{y}.png"


def _sample(frame: pd.DataFrame, k: int | None, rng: np.random.Generator) -> pd.DataFrame:
    """At most ``k`` rows per slide, drawn without replacement; file order is kept."""
    if k is None:
        return frame
    keep: list[np.ndarray] = []
    for _, idx in sorted(frame.groupby("slide", sort=True).indices.items()):
        keep.append(idx if len(idx) <= k else np.sort(rng.choice(idx, size=k, replace=False)))
    rows = np.sort(np.concatenate(keep)) if keep else np.array([], dtype=int)
    return frame.iloc[rows].reset_index(drop=True)


class Camelyon17Source(Source):
    name = "camelyon17"
    Params = Camelyon17Params

    def load(self, params: Camelyon17Params, ctx: SourceContext) -> SourceData:
        root = root_folder(params.root, ctx.spec_dir, dataset=DATASET, how=HOW)
        if not (root / params.metadata).is_file() and (root / SUBFOLDER).is_dir():
            root = root / SUBFOLDER
        meta_path = root / params.metadata
        raw = read_table(meta_path, dataset=DATASET, how=HOW, columns=REQUIRED)
        index_cols = [c for c in raw.columns if not str(c).strip() or str(c).startswith("Unnamed")]
        frame = raw.drop(columns=index_cols)
        for col in REQUIRED:
            values = frame[col].str.strip()
            blank = values.isna() | (values == "")
            if blank.any():
                row = int(blank.to_numpy().nonzero()[0][0])
                raise BuildError(f"{DATASET}: {meta_path.name} has no {col!r} on data row {row}")
            frame[col] = values
        for col in ("tumor", "center", "node", "x_coord", "y_coord", "slide"):
            bad = frame[col][~frame[col].str.fullmatch(r"\d+")]
            if len(bad):
                raise BuildError(
                    f"{DATASET}: {meta_path.name} column {col!r} has non-integer value "
                    f"{bad.iloc[0]!r}"
                )
        if not frame["tumor"].isin(["0", "1"]).all():
            raise BuildError(f"{DATASET}: {meta_path.name} column 'tumor' must be 0 or 1")
        if "split" in frame.columns:
            frame = frame.rename(columns={"split": "wilds_split"})
        n_all = len(frame)
        frame = _sample(frame, params.patches_per_slide, ctx.rng)

        rel = [
            patch_path(p, n, x, y)
            for p, n, x, y in zip(
                frame["patient"], frame["node"], frame["x_coord"], frame["y_coord"], strict=True
            )
        ]
        frame.insert(0, "patch_id", [Path(r).stem for r in rel])
        dup = frame["patch_id"][frame["patch_id"].duplicated()]
        if len(dup):
            raise BuildError(f"{DATASET}: {meta_path.name} lists patch {dup.iloc[0]!r} twice")
        paths = [root / r for r in rel]
        check_images(paths, dataset=DATASET, how=HOW, listed_in=meta_path.name, what="patch")
        inputs = load_images(paths, params.image_size, channels=3)

        frame = normalise_columns(frame)
        digest = sha256_file(meta_path)
        per_center = frame.groupby("center").agg(
            patches=("patch_id", "size"),
            patients=("patient", "nunique"),
            slides=("slide", "nunique"),
        )
        centers = "; ".join(
            f"hospital {c}: {r.patches} patches, {r.slides} slides, {r.patients} patients"
            for c, r in per_center.sort_index(key=lambda s: s.astype(int)).iterrows()
        )
        sampled = (
            f"a seeded sample of at most {params.patches_per_slide} patches per slide "
            f"({len(frame)} of {n_all})"
            if params.patches_per_slide is not None
            else f"all {n_all} patches"
        )
        provenance = (
            f"Camelyon17-WILDS: {meta_path.name} (sha256 {digest}) and {len(frame)} PNG patches"
        )
        notes = "\n".join(
            [
                f"- Files read: `{meta_path.name}` (sha256 `{digest}`) and one PNG per row, "
                "`patches/patient_<patient>_node_<node>/patch_patient_<patient>_node_<node>"
                "_x_<x_coord>_y_<y_coord>.png`, under `$CAMELYON17_ROOT`.",
                f"- Rows: {sampled}. The sample id is the patch file name (`patch_id`); the "
                "patient is the zero-padded `patient` column, so all slides (lymph nodes) and "
                "patches of one patient stay in one split.",
                f"- {centers}.",
                "- WILDS's own `split` column is kept as `wilds_split` for reference and not "
                "used: WILDS's in-distribution validation patches come from the training "
                "slides, whereas these splits are patient-level.",
                "- No demographics are distributed, so the task has no fairness attributes.",
                f"- Patches are resized from 96x96 to {params.image_size}x{params.image_size} "
                "RGB where the sizes differ.",
                "- Access: public download via the WILDS package "
                "(https://wilds.stanford.edu/datasets/); CC0 per the WILDS dataset class.",
            ]
        )
        return SourceData(
            frame=frame, provenance=provenance, arrays={"inputs": inputs}, notes=notes
        )
