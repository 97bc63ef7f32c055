"""``ham10000``: the HAM10000 dermatoscopy images and their metadata, from a local copy.

Layout expected under ``root`` (the Harvard Dataverse release, doi:10.7910/DVN/DBW86T, or
its Kaggle mirror ``kmader/skin-cancer-mnist-ham10000``)::

    HAM10000_metadata.csv          lesion_id,image_id,dx,dx_type,age,sex,localization,dataset
    HAM10000_images_part_1/ISIC_0024306.jpg
    HAM10000_images_part_2/ISIC_0029306.jpg

Format facts, and where they were checked:

* Columns ``lesion_id, image_id, dx, dx_type, age, sex, localization`` and, in the Dataverse
  release, ``dataset`` (the source collection: ``vidir_modern``, ``vidir_molemax``,
  ``vienna_dias``, ``rosendahl``); the Kaggle mirror has the first seven only. Seen in public
  notebooks printing ``HAM10000_metadata.csv`` and in per-collection counts (vidir_molemax
  3954, vidir_modern 3363, rosendahl 2259, vienna_dias 439).
* ``dx`` codes ``akiec, bcc, bkl, df, mel, nv, vasc`` and ``dx_type`` values
  ``histo, follow_up, consensus, confocal``: the Dataverse description.
* ``lesion_id`` groups the images of one lesion (``HAM_0000118``); ``image_id`` names the
  JPEG (``ISIC_0027419.jpg``); ``age`` is written as ``80.0`` and is sometimes missing.
* The images ship as two archives (Dataverse ``HAM10000_images_part1.zip`` /
  ``part2.zip``, 5000 + 5015 JPEGs); the folder names above are the Kaggle mirror's. Any
  folders may be named with ``image_dirs``; every ``<image_id>.jpg`` is looked up in them.

Not verified: whether a Dataverse download of the metadata arrives as a tab-separated
``.tab`` file (Dataverse converts uploaded tables); a tab-separated file is read as such.
Whether ``sex`` holds values besides ``male``/``female`` (e.g. ``unknown``) was not checked:
specs should map the values they use and let the recipe drop the rest.

HAM10000 has no patient identifier: ``lesion_id`` is the closest grouping, so a spec that
splits by ``lesion_id`` keeps the images of one lesion together but cannot keep one
patient's different lesions together.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from benchmark.common.hashing import sha256_file
from benchmark.errors import BuildError, DataUnavailableError
from benchmark.tasks.sources.base import (
    Source,
    SourceContext,
    SourceData,
    SourceParams,
    normalise_columns,
)
from benchmark.tasks.sources.files import load_images, read_table, require, root_folder

DATASET = "HAM10000"
HOW = (
    "Download HAM10000 (metadata and both image archives) from Harvard Dataverse, "
    "https://doi.org/10.7910/DVN/DBW86T, unpack it into one folder and set $HAM10000_ROOT "
    "to that folder."
)
REQUIRED = ("lesion_id", "image_id", "dx")
COLLECTION = "dataset"


class Ham10000Params(SourceParams):
    root: str
    image_size: int = Field(default=64, ge=16, le=512)
    metadata: str = "HAM10000_metadata.csv"
    image_dirs: list[str] = Field(
        default_factory=lambda: ["HAM10000_images_part_1", "HAM10000_images_part_2"],
        min_length=1,
    )
    require_collection: bool = Field(
        default=True,
        description="Refuse a metadata file without the 'dataset' (source collection) column.",
    )


def _index_images(folders: list[Path]) -> dict[str, Path]:
    """``image_id -> path`` over the ``.jpg`` files of ``folders`` (first folder wins)."""
    found: dict[str, Path] = {}
    for folder in folders:
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                stem, ext = os.path.splitext(entry.name)
                if ext.lower() == ".jpg" and entry.is_file():
                    found.setdefault(stem, Path(entry.path))
    return found


class Ham10000Source(Source):
    name = "ham10000"
    Params = Ham10000Params

    def load(self, params: Ham10000Params, ctx: SourceContext) -> SourceData:
        root = root_folder(params.root, ctx.spec_dir, dataset=DATASET, how=HOW)
        meta_path = root / params.metadata
        frame = read_table(meta_path, dataset=DATASET, how=HOW, columns=REQUIRED)
        if params.require_collection and COLLECTION not in frame.columns:
            raise BuildError(
                f"{DATASET}: {meta_path.name} lacks the column {COLLECTION!r} (the source "
                "collection: vidir_modern, vidir_molemax, vienna_dias, rosendahl); the Kaggle "
                "mirror omits it, the Harvard Dataverse release has it. "
                f"It has {list(frame.columns)}"
            )
        for col in REQUIRED:
            blank = frame[col].isna() | (frame[col].astype(str).str.strip() == "")
            if blank.any():
                row = int(blank.to_numpy().nonzero()[0][0])
                raise BuildError(f"{DATASET}: {meta_path.name} has no {col!r} on data row {row}")
        dup = frame["image_id"][frame["image_id"].duplicated()]
        if len(dup):
            raise BuildError(
                f"{DATASET}: {meta_path.name} lists image_id {dup.iloc[0]!r} more than once"
            )

        folders = [root / d for d in params.image_dirs]
        for folder in folders:
            require(folder, dataset=DATASET, how=HOW, what="folder")
        index = _index_images(folders)
        missing = [i for i in frame["image_id"] if i not in index]
        if missing:
            raise DataUnavailableError(
                f"{DATASET}: {len(missing)} image(s) listed in {meta_path.name} are not in "
                f"{', '.join(params.image_dirs)}, e.g. {missing[0]}.jpg. {HOW}"
            )
        paths = [index[i] for i in frame["image_id"]]
        inputs = load_images(paths, params.image_size, channels=3)

        frame = normalise_columns(frame)
        n_lesions = frame["lesion_id"].nunique()
        collections = (
            ", ".join(f"{k} ({v})" for k, v in sorted(frame[COLLECTION].value_counts().items()))
            if COLLECTION in frame.columns
            else "not given (no `dataset` column)"
        )
        digest = sha256_file(meta_path)
        provenance = (
            f"HAM10000: {meta_path.name} (sha256 {digest}) and {len(frame)} JPEG images from "
            f"{', '.join(params.image_dirs)}"
        )
        notes = "\n".join(
            [
                f"- Files read: `{meta_path.name}` (sha256 `{digest}`) and one JPEG per row, "
                f"`<image_id>.jpg`, looked up in {', '.join(f'`{d}/`' for d in params.image_dirs)}"
                " under `$HAM10000_ROOT`.",
                f"- {len(frame)} images of {n_lesions} lesions. One row per image; "
                "`image_id` is the sample id.",
                "- HAM10000 has **no patient identifier**. `lesion_id` groups the images of one "
                "lesion, so splitting by `lesion_id` is the closest available to a patient-level "
                "split: one lesion's images never straddle splits, but one patient's different "
                "lesions may.",
                f"- Source collections (`dataset` column): {collections}.",
                f"- Images are centre-cropped to a square and resized to {params.image_size}x"
                f"{params.image_size} RGB (the originals are 600x450, so the crop drops the "
                "outer 75 pixels on the left and right).",
                "- Nothing is dropped by the source; the recipe drops rows whose label or "
                "attributes are missing or unmapped (counted under Protocol).",
                "- Access: public download from Harvard Dataverse "
                "(https://doi.org/10.7910/DVN/DBW86T) under its stated terms (non-commercial).",
            ]
        )
        return SourceData(
            frame=frame, provenance=provenance, arrays={"inputs": inputs}, notes=notes
        )
