"""``fitzpatrick17k``: clinical dermatology images with Fitzpatrick skin-type labels.

Layout expected under ``root``::

    fitzpatrick17k.csv
    images/<md5hash>.jpg           (or the ``url_alphanum`` file name: ``file_name``)

Format facts, checked in ``mattgroh/fitzpatrick17k`` (``fitzpatrick17k.csv``, ``README.md``,
``train.py``):

* Header of the current CSV: ``md5hash, fitzpatrick_scale, fitzpatrick_centaur, label,
  nine_partition_label, three_partition_label, qc, url, url_alphanum``. The repository's
  ``train.py`` reads the skin type as ``fitzpatrick``, the column's name in an earlier
  release; either name is accepted and the table carries it as ``fitzpatrick_scale``.
* ``fitzpatrick_scale`` is 1-6, and ``-1`` where the annotators gave no skin type.
* ``three_partition_label`` is ``benign``, ``malignant`` or ``non-neoplastic``;
  ``nine_partition_label`` is finer (``malignant melanoma``, ``inflammatory``, ...); ``label``
  is one of 114 conditions; ``qc`` is mostly empty, else e.g. ``1 Diagnostic``.
* ``url`` points at the image in one of two atlases (``dermaamin.com`` or
  ``atlasdermatologico.com.br``); the source derives an ``atlas`` column from it.
* The source renames ``label`` to ``condition`` (``label`` is the task label's column).
* The repository distributes the CSV only; images come from each ``url`` or, on request,
  from the authors. ``<md5hash>.jpg`` is how public loaders name the files (not stated by the
  authors); ``url_alphanum`` already ends in ``.jpg`` and may serve as the file name instead.

Fitzpatrick17k has no patient identifier: every image is its own "patient". Atlas pages can
show one patient more than once, and the repository ships an image-deduplication notebook,
so image-level splits may place near-duplicate images of one patient in two splits.
"""

from __future__ import annotations

from typing import Literal

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

DATASET = "Fitzpatrick17k"
HOW = (
    "Get fitzpatrick17k.csv from https://github.com/mattgroh/fitzpatrick17k and the images "
    "from each row's url (or from the authors, via the form linked in that README), then set "
    "$FITZPATRICK17K_ROOT to the folder holding the CSV."
)
REQUIRED = ("md5hash", "label", "three_partition_label")
SKIN_TYPE = "fitzpatrick_scale"
OLD_SKIN_TYPE = "fitzpatrick"
ATLASES = {"dermaamin": "dermaamin", "atlasdermatologico": "atlasdermatologico"}


class Fitzpatrick17kParams(SourceParams):
    root: str
    image_size: int = Field(default=64, ge=16, le=512)
    csv: str = "fitzpatrick17k.csv"
    image_dir: str = "images"
    file_name: Literal["md5hash", "url_alphanum"] = Field(
        default="md5hash",
        description="Image file name: '<md5hash>.jpg', or the url_alphanum column's value.",
    )
    missing_images: Literal["error", "drop"] = Field(
        default="error",
        description="Images that are not on disk (dead urls): an error, or rows dropped "
        "and counted in the card.",
    )


def _atlas(url: object) -> str | None:
    if not isinstance(url, str):
        return None
    return next((name for key, name in ATLASES.items() if key in url.lower()), None)


class Fitzpatrick17kSource(Source):
    name = "fitzpatrick17k"
    Params = Fitzpatrick17kParams

    def load(self, params: Fitzpatrick17kParams, ctx: SourceContext) -> SourceData:
        root = root_folder(params.root, ctx.spec_dir, dataset=DATASET, how=HOW)
        csv_path = root / params.csv
        frame = read_table(csv_path, dataset=DATASET, how=HOW, columns=REQUIRED)
        if SKIN_TYPE not in frame.columns:
            if OLD_SKIN_TYPE not in frame.columns:
                raise BuildError(
                    f"{DATASET}: {csv_path.name} lacks the skin-type column {SKIN_TYPE!r} "
                    f"(or {OLD_SKIN_TYPE!r} in older releases); it has {list(frame.columns)}"
                )
            frame = frame.rename(columns={OLD_SKIN_TYPE: SKIN_TYPE})
        if params.file_name == "url_alphanum" and "url_alphanum" not in frame.columns:
            raise BuildError(
                f"{DATASET}: file_name is url_alphanum but {csv_path.name} lacks the column "
                f"'url_alphanum'; it has {list(frame.columns)}"
            )
        blank = frame["md5hash"].isna() | (frame["md5hash"].str.strip() == "")
        if blank.any():
            row = int(blank.to_numpy().nonzero()[0][0])
            raise BuildError(f"{DATASET}: {csv_path.name} has no 'md5hash' on data row {row}")
        dup = frame["md5hash"][frame["md5hash"].duplicated()]
        if len(dup):
            raise BuildError(
                f"{DATASET}: {csv_path.name} lists md5hash {dup.iloc[0]!r} more than once"
            )
        bad = sorted({v for v in frame[SKIN_TYPE].dropna() if v.strip() not in {"-1", *"123456"}})
        if bad:
            raise BuildError(
                f"{DATASET}: {csv_path.name} column {SKIN_TYPE!r} has values {bad[:5]}; "
                "expected 1-6 or -1 (unknown)"
            )

        image_dir = root / params.image_dir
        require(image_dir, dataset=DATASET, how=HOW, what="folder")
        names = (
            frame["md5hash"] + ".jpg" if params.file_name == "md5hash" else frame["url_alphanum"]
        )
        paths = [image_dir / str(n) for n in names]
        present = [isinstance(n, str) and p.is_file() for n, p in zip(names, paths, strict=True)]
        n_missing = len(present) - sum(present)
        if n_missing and params.missing_images == "error":
            first = next(p for p, ok in zip(paths, present, strict=True) if not ok)
            raise DataUnavailableError(
                f"{DATASET}: {n_missing} image(s) listed in {csv_path.name} are missing from "
                f"{image_dir}, e.g. {first.name}; set missing_images: drop to leave them out. "
                f"{HOW}"
            )
        keep = frame.index[present]
        frame = frame.loc[keep].reset_index(drop=True)
        paths = [p for p, ok in zip(paths, present, strict=True) if ok]
        if frame.empty:
            raise DataUnavailableError(f"{DATASET}: no image of {csv_path.name} is in {image_dir}")
        inputs = load_images(paths, params.image_size, channels=3)

        frame[SKIN_TYPE] = frame[SKIN_TYPE].str.strip()
        frame = frame.rename(columns={"label": "condition"})  # "label" is the task's column
        frame["atlas"] = frame["url"].map(_atlas) if "url" in frame.columns else None
        frame = normalise_columns(frame)
        digest = sha256_file(csv_path)
        counts = frame[SKIN_TYPE].value_counts()
        types = ", ".join(f"{t}: {int(counts.get(t, 0))}" for t in ["1", "2", "3", "4", "5", "6"])
        provenance = (
            f"Fitzpatrick17k: {csv_path.name} (sha256 {digest}) and {len(frame)} images from "
            f"{params.image_dir}/"
        )
        file_rule = (
            "`<md5hash>.jpg`" if params.file_name == "md5hash" else "the `url_alphanum` value"
        )
        notes = "\n".join(
            [
                f"- Files read: `{csv_path.name}` (sha256 `{digest}`) and one image per row, "
                f"{file_rule}, in `{params.image_dir}/` under `$FITZPATRICK17K_ROOT`.",
                f"- {len(frame)} images; `md5hash` is the sample id. Fitzpatrick17k has **no "
                "patient identifier**, so each image is its own patient: images of one patient "
                "(atlas pages can show several) and near-duplicates may fall in different "
                "splits.",
                f"- Skin type (`fitzpatrick_scale`, -1 = unknown): {types}, unknown: "
                f"{int(counts.get('-1', 0))}.",
                f"- Images not on disk: {n_missing}"
                + (" (dropped by the source, `missing_images: drop`)." if n_missing else "."),
                "- The CSV's `label` (one of 114 conditions) is renamed `condition`, so that it "
                "cannot be confused with the task label; `atlas` is derived from `url` "
                "(dermaamin or atlasdermatologico).",
                f"- Images are centre-cropped to a square and resized to {params.image_size}x"
                f"{params.image_size} RGB.",
                "- Access: annotations CC BY-NC-SA 3.0 (https://github.com/mattgroh/fitzpatrick17k);"
                " the images belong to the two atlases (DermaAmin, Atlas Dermatologico).",
            ]
        )
        return SourceData(
            frame=frame, provenance=provenance, arrays={"inputs": inputs}, notes=notes
        )
