"""``nih_cxr14``: the NIH ChestX-ray14 radiographs and ``Data_Entry_2017.csv``, from a local
copy.

Layout expected under ``root`` (``$NIH_CXR14_ROOT``; file names are params)::

    Data_Entry_2017.csv            (or Data_Entry_2017_v2020.csv)
    test_list.txt, train_val_list.txt
    images/00000001_000.png        (the NIH Box archives, unpacked)
      or images_001/images/00000001_000.png ... images_012/images/...  (the Kaggle mirror)

Format facts, and where they were checked:

* ``Data_Entry_2017.csv`` header ``Image Index,Finding Labels,Follow-up #,Patient ID,Patient
  Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]``
  (the bracketed names contain commas, so a CSV reader sees extra columns; only the first
  seven are used), rows like ``00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,...``:
  findings ``|``-separated, ``No Finding`` for none; ``Patient ID`` without leading zeros;
  sex ``M``/``F``; view ``PA``/``AP``. Seen in mlmed/torchxrayvision ``NIH_Dataset`` and
  several public loaders quoting the file. Older copies write ages as ``058Y``; both forms
  are read. One test fixture names the sex column ``Patient Sex``; it is accepted too.
* The 14 findings: Atelectasis, Cardiomegaly, Effusion, Infiltration, Mass, Nodule,
  Pneumonia, Pneumothorax, Consolidation, Edema, Emphysema, Fibrosis, Pleural_Thickening,
  Hernia (torchxrayvision; the Hugging Face mirror's label list).
* ``test_list.txt`` / ``train_val_list.txt``: one image file name per line (25,596 and
  86,524 names), the official patient-wise split.
* Images: ``images/`` or ``images_0NN/images/`` (public loaders of the Kaggle mirror).

Columns given (snake_case): ``sample_id`` (= ``Image Index``), ``patient_id`` (``Patient ID``
as an integer text), ``follow_up``, ``age`` (years), ``sex``, ``view``, ``patient_view``
(the patient's view when all their kept images share it, else ``mixed``: a per-patient
column safe for domain splits), ``official_split`` (``test``/``train_val``, missing when in
neither list or no list is read), ``finding_labels`` (raw), one ``0``/``1`` text column per
finding (snake_case: ``effusion``, ``pleural_thickening``...), ``no_finding`` and
``any_finding`` (``1`` when any of the 14 findings is listed).
"""

from __future__ import annotations

import re
from pathlib import Path

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
    snake_case,
)
from benchmark.tasks.sources.files import (
    check_images,
    load_images,
    read_table,
    require,
    root_folder,
    subsample_patients,
)

DATASET = "NIH ChestX-ray14"
HOW = (
    "NIH ChestX-ray14 is a public download from the NIH Clinical Center, "
    "https://nihcc.app.box.com/v/ChestXray-NIHCC (images, Data_Entry_2017.csv, "
    "train_val_list.txt, test_list.txt); set $NIH_CXR14_ROOT to the folder holding them."
)
FINDINGS = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)
NO_FINDING = "No Finding"
COLUMNS = (
    "Image Index",
    "Finding Labels",
    "Follow-up #",
    "Patient ID",
    "Patient Age",
    "View Position",
)
SEX_COLUMNS = ("Patient Gender", "Patient Sex")
_AGE = re.compile(r"^0*(\d+)\s*[Yy]?$")


class NihCxr14Params(SourceParams):
    root: str
    image_size: int = Field(default=128, ge=16, le=512)
    data_entry: str = "Data_Entry_2017.csv"
    test_list: str | None = "test_list.txt"
    train_val_list: str | None = "train_val_list.txt"
    image_dirs: list[str] | None = Field(
        default=None,
        description="Image folders under root; default: images/ and images_*/images/.",
    )
    views: list[str] = Field(default_factory=lambda: ["PA", "AP"], min_length=1)
    patients: int | None = Field(
        default=None, ge=1, description="Keep this many patients, drawn with the task seed."
    )


def _read_list(path: Path) -> set[str]:
    require(path, dataset=DATASET, how=HOW)
    lines = path.read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip()}


def _parse_age(value: object, row: int, file: str) -> int:
    text = "" if value is None or pd.isna(value) else str(value).strip()
    match = _AGE.match(text)
    if match is None:
        raise BuildError(
            f"{DATASET}: {file} column 'Patient Age' has value {text!r} (row {row}); "
            "expected whole years such as 58 or 058Y"
        )
    return int(match.group(1))


def _parse_findings(value: object, row: int, file: str) -> list[str]:
    text = "" if value is None or pd.isna(value) else str(value).strip()
    names = [n.strip() for n in text.split("|")] if text else []
    unknown = [n for n in names if n not in FINDINGS and n != NO_FINDING]
    if not names or unknown:
        raise BuildError(
            f"{DATASET}: {file} column 'Finding Labels' has value {text!r} (row {row}); "
            f"expected '|'-separated names from {[*FINDINGS, NO_FINDING]}"
        )
    return names


def _index_images(root: Path, image_dirs: list[str] | None) -> tuple[dict[str, Path], list[str]]:
    if image_dirs is None:
        folders = [root / "images"] if (root / "images").is_dir() else []
        folders += sorted(p for p in root.glob("images_*/images") if p.is_dir())
        if not folders:
            require(root / "images", dataset=DATASET, how=HOW, what="folder")
    else:
        folders = [root / d for d in image_dirs]
        for folder in folders:
            require(folder, dataset=DATASET, how=HOW, what="folder")
    index: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.png")):
            index.setdefault(path.name, path)
    return index, [f.relative_to(root).as_posix() for f in folders]


class NihCxr14Source(Source):
    name = "nih_cxr14"
    Params = NihCxr14Params

    def load(self, params: NihCxr14Params, ctx: SourceContext) -> SourceData:
        root = root_folder(params.root, ctx.spec_dir, dataset=DATASET, how=HOW)
        entry_path = root / params.data_entry
        raw = read_table(entry_path, dataset=DATASET, how=HOW, columns=COLUMNS)
        file = entry_path.name
        sex_col = next((c for c in SEX_COLUMNS if c in raw.columns), None)
        if sex_col is None:
            raise BuildError(
                f"{DATASET}: {file} lacks columns ['Patient Gender']; it has {list(raw.columns)}"
            )
        n_rows = len(raw)
        for col in ("Image Index", "Patient ID"):
            blank = raw[col].isna()
            if blank.any():
                row = int(blank.to_numpy().nonzero()[0][0])
                raise BuildError(f"{DATASET}: {file} has no {col!r} on data row {row}")
        if raw["Image Index"].duplicated().any():
            dup = raw["Image Index"][raw["Image Index"].duplicated()].iloc[0]
            raise BuildError(f"{DATASET}: {file} lists image {dup!r} twice")

        findings = [
            _parse_findings(v, i, file) for i, v in enumerate(raw["Finding Labels"].astype(object))
        ]
        ages = [_parse_age(v, i, file) for i, v in enumerate(raw["Patient Age"].astype(object))]
        patient = raw["Patient ID"].astype(object).map(lambda v: str(v).strip())
        patient = patient.map(lambda v: str(int(v)) if v.isdigit() else v)
        frame = pd.DataFrame(
            {
                "sample_id": raw["Image Index"].astype(object).map(lambda v: str(v).strip()),
                "patient_id": patient,
                "follow_up": raw["Follow-up #"].astype(object),
                "age": ages,
                "sex": raw[sex_col].astype(object),
                "view": raw["View Position"]
                .astype(object)
                .map(lambda v: str(v).strip() if pd.notna(v) else None),
                "finding_labels": raw["Finding Labels"].astype(object),
            }
        )
        for name in FINDINGS:
            frame[snake_case(name)] = ["1" if name in f else "0" for f in findings]
        frame["no_finding"] = ["1" if NO_FINDING in f else "0" for f in findings]
        frame["any_finding"] = ["1" if set(f) & set(FINDINGS) else "0" for f in findings]

        keep = frame["view"].isin(params.views)
        n_view_dropped = int((~keep).sum())
        frame = frame[keep].copy()
        views = frame.groupby("patient_id")["view"].agg(lambda s: sorted(set(s)))
        single = {p: v[0] if len(v) == 1 else "mixed" for p, v in views.items()}
        frame["patient_view"] = frame["patient_id"].map(single)

        files = [f"`{file}` (sha256 `{sha256_file(entry_path)}`)"]
        official = pd.Series(None, index=frame.index, dtype=object)
        for split_name, list_name in (
            ("train_val", params.train_val_list),
            ("test", params.test_list),
        ):
            if list_name is None:
                continue
            list_path = root / list_name
            names = _read_list(list_path)
            files.append(f"`{list_name}` (sha256 `{sha256_file(list_path)}`)")
            official[frame["sample_id"].isin(names)] = split_name
        frame["official_split"] = official

        chosen, n_patients_dropped = subsample_patients(
            frame["patient_id"], params.patients, ctx.rng
        )
        frame = frame[chosen].reset_index(drop=True)
        if frame.empty:
            raise BuildError(f"{DATASET}: no images are left after the source's filters")

        index, folders = _index_images(root, params.image_dirs)
        paths = [index.get(name, root / folders[0] / name) for name in frame["sample_id"]]
        check_images(paths, dataset=DATASET, how=HOW, listed_in=file)
        inputs = load_images(paths, params.image_size, channels=1)

        n_patients = frame["patient_id"].nunique()
        per_view = frame.drop_duplicates("patient_id")["patient_view"].value_counts()
        mixed = ", ".join(f"{k}: {v}" for k, v in sorted(per_view.items()))
        notes = "\n".join(
            [
                f"- Files read under `$NIH_CXR14_ROOT`: {', '.join(files)}, and one PNG per row "
                f"named `Image Index`, found in {', '.join(f'`{f}/`' for f in folders)}.",
                f"- {n_rows} rows in `{file}`; {n_view_dropped} dropped because `View Position` "
                f"is not one of {params.views}"
                + (
                    f"; {n_patients_dropped} patients left out by the seeded subsample of "
                    f"{params.patients} patients"
                    if n_patients_dropped
                    else ""
                )
                + f". Kept: {len(frame)} images of {n_patients} patients.",
                "- One row per image (`sample_id` = `Image Index`, `patient_id` = `Patient ID`).",
                "- Labels: `Finding Labels` split on `|` into one 0/1 column per finding; "
                "`no_finding` marks `No Finding`; `any_finding` is 1 when any of the 14 "
                "findings is listed. The labels were text-mined from the reports by NLP, not "
                "read from the images.",
                f"- `patient_view` is the view shared by all of a patient's kept images, or "
                f"`mixed` (patients per value: {mixed}).",
                "- `official_split` marks membership of the official patient-wise "
                "`test_list.txt` (`test`) and `train_val_list.txt` (`train_val`).",
                f"- Images are centre-cropped to a square and resized to {params.image_size}x"
                f"{params.image_size} greyscale.",
                "- Access: public download from the NIH Clinical Center "
                "(https://nihcc.app.box.com/v/ChestXray-NIHCC). The NIH places no "
                "restrictions on use but asks for a link to the download site, a citation of "
                "Wang et al. (CVPR 2017) and acknowledgement of the NIH Clinical Center as the "
                "data provider.",
            ]
        )
        provenance = f"NIH ChestX-ray14: {file}; {len(frame)} images of {n_patients} patients"
        return SourceData(
            frame=normalise_columns(frame),
            provenance=provenance,
            arrays={"inputs": inputs},
            notes=notes,
        )
