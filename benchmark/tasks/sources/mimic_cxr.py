"""``mimic_cxr``: MIMIC-CXR-JPG radiographs and labels, joined with MIMIC-IV patients (sex,
age, anchor year group) and admissions (race), from local copies.

Layout expected (file names are params; each table may also be its ``.csv.gz``)::

    $MIMIC_CXR_JPG_ROOT/mimic-cxr-2.0.0-metadata.csv[.gz]
    $MIMIC_CXR_JPG_ROOT/mimic-cxr-2.0.0-chexpert.csv[.gz]
    $MIMIC_CXR_JPG_ROOT/mimic-cxr-2.0.0-split.csv[.gz]        (optional)
    $MIMIC_CXR_JPG_ROOT/files/p10/p10000032/s50414267/<dicom_id>.jpg
    $MIMIC_IV_ROOT/hosp/patients.csv[.gz]
    $MIMIC_IV_ROOT/hosp/admissions.csv[.gz]                    (optional, for race)

Format facts, and where they were checked:

* ``metadata``: ``dicom_id, subject_id, study_id, PerformedProcedureStepDescription,
  ViewPosition, Rows, Columns, StudyDate, StudyTime, ...``; ``ViewPosition`` values include
  ``PA``, ``AP``, ``LATERAL``; ``StudyDate`` is a date-shifted ``YYYYMMDD`` (``21800506``).
  ``chexpert``: ``subject_id, study_id`` and the 14 CheXpert observations (one row per
  study, codes ``1.0``/``0.0``/``-1.0``/blank). Seen in biomedia-mira/chexploration
  ``notebooks/mimic.sample.ipynb`` and mlmed/torchxrayvision ``MIMIC_Dataset``.
* ``split``: ``dicom_id, study_id, subject_id, split`` with ``train``/``validate``/``test``
  (public loaders reading ``mimic-cxr-2.0.0-split.csv``).
* Image path ``files/p<first 2 digits of subject_id>/p<subject_id>/s<study_id>/
  <dicom_id>.jpg`` (torchxrayvision ``MIMIC_Dataset.__getitem__`` and public data guides).
* MIMIC-IV ``patients``: ``subject_id, gender (F/M), anchor_age, anchor_year,
  anchor_year_group (e.g. "2008 - 2010"), dod`` (MIT-LCP/mimic-code
  ``mimic-iv/buildmimic/postgres/create.sql`` and chexploration). ``admissions`` has one row
  per hospital admission with ``race`` (MIMIC-IV v2+, create.sql) or ``ethnicity`` (older
  versions, as read by chexploration); values such as ``WHITE``, ``BLACK/AFRICAN AMERICAN``,
  ``ASIAN``, ``WHITE - OTHER EUROPEAN``, ``HISPANIC/LATINO - CUBAN``, ``OTHER``,
  ``UNKNOWN``, ``UNABLE TO OBTAIN``, ``PATIENT DECLINED TO ANSWER`` (public MIMIC-IV
  race mappings).
* Age at the study = ``anchor_age + (year of StudyDate - anchor_year)``, as chexploration
  computes it (both years are on the patient's shifted time line).

Not verified: that every MIMIC-CXR subject is in ``patients`` (those missing are dropped and
counted); the folder of ``patients``/``admissions`` in MIMIC-IV versions before 2.0 (set
``patients``/``admissions`` to match your copy).

Columns given (snake_case): ``sample_id`` (= ``dicom_id``), ``patient_id`` (=
``subject_id``), ``study_id``, ``view``, ``study_date``, ``official_split`` (when the split
file is read), ``sex`` (``gender``: F/M), ``anchor_age``, ``anchor_year``,
``anchor_year_group``, ``age``, ``race`` (the patient's distinct admission race values,
joined by ``; ``), ``race_group`` (Asian, Black, White, Hispanic/Latino, Other, Unknown,
Multiple) and the 14 observations as text ``1``, ``0``, ``-1`` or ``not_mentioned``.
"""

from __future__ import annotations

from collections.abc import Callable
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
from benchmark.tasks.sources.chexpert import (
    OBSERVATIONS,
    combine_race_groups,
    normalise_observations,
)
from benchmark.tasks.sources.files import (
    check_images,
    find_table,
    load_images,
    read_table,
    root_folder,
    subsample_patients,
)

DATASET = "MIMIC-CXR-JPG"
HOW = (
    "MIMIC-CXR-JPG (https://physionet.org/content/mimic-cxr-jpg/) and MIMIC-IV "
    "(https://physionet.org/content/mimiciv/) are PhysioNet credentialed-access data sets: "
    "complete the required training, sign the data use agreement, download both, and set "
    "$MIMIC_CXR_JPG_ROOT to the folder holding files/ and the mimic-cxr-2.0.0-*.csv tables "
    "and $MIMIC_IV_ROOT to the MIMIC-IV folder holding hosp/."
)
META_COLUMNS = ("dicom_id", "subject_id", "study_id", "ViewPosition", "StudyDate")
PATIENT_COLUMNS = ("subject_id", "gender", "anchor_age", "anchor_year", "anchor_year_group")


class MimicCxrParams(SourceParams):
    root: str
    mimic_iv_root: str
    image_size: int = Field(default=128, ge=16, le=512)
    metadata: str = "mimic-cxr-2.0.0-metadata.csv"
    labels: str = "mimic-cxr-2.0.0-chexpert.csv"
    split: str | None = "mimic-cxr-2.0.0-split.csv"
    patients_table: str = "hosp/patients.csv"
    admissions: str | None = "hosp/admissions.csv"
    views: list[str] = Field(default_factory=lambda: ["PA", "AP"], min_length=1)
    official_splits: list[str] | None = Field(
        default=None, description="Keep only images in these official splits (needs split)."
    )
    patients: int | None = Field(
        default=None, ge=1, description="Keep this many patients, drawn with the task seed."
    )


def _ids(series: pd.Series, *, file: str, column: str) -> pd.Series:
    """Integer ids as canonical text (``10000032``); anything else is a BuildError."""
    text = series.astype(object).map(lambda v: None if pd.isna(v) else str(v).strip())
    canon = text.map(lambda v: str(int(float(v))) if v and _is_number(v) else None)
    bad = text[canon.isna()]
    if len(bad):
        raise BuildError(
            f"{DATASET}: {file} column {column!r} has non-numeric id {bad.iloc[0]!r} "
            f"(row {int(bad.index[0])})"
        )
    return canon


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class MimicCxrSource(Source):
    name = "mimic_cxr"
    Params = MimicCxrParams

    def load(self, params: MimicCxrParams, ctx: SourceContext) -> SourceData:
        root = root_folder(params.root, ctx.spec_dir, dataset=DATASET, how=HOW)
        iv_root = root_folder(params.mimic_iv_root, ctx.spec_dir, dataset=DATASET, how=HOW)
        read: list[Path] = []

        def table(base: Path, name: str, columns: tuple[str, ...]) -> pd.DataFrame:
            path = find_table(base, name, dataset=DATASET, how=HOW)
            frame = read_table(path, dataset=DATASET, how=HOW, columns=columns)
            read.append(path)
            return frame

        meta = table(root, params.metadata, META_COLUMNS)
        labels = table(root, params.labels, ("subject_id", "study_id", *OBSERVATIONS))
        meta_name, labels_name = Path(params.metadata).name, Path(params.labels).name
        for col in ("subject_id", "study_id"):
            meta[col] = _ids(meta[col], file=meta_name, column=col)
            labels[col] = _ids(labels[col], file=labels_name, column=col)
        key = ["subject_id", "study_id"]
        dup = labels[labels.duplicated(key)]
        if len(dup):
            raise BuildError(
                f"{DATASET}: {labels_name} has two rows for study {dup['study_id'].iloc[0]}"
            )
        n_images = len(meta)
        if meta["dicom_id"].isna().any() or meta["dicom_id"].duplicated().any():
            raise BuildError(f"{DATASET}: {meta_name} column 'dicom_id' is missing or repeated")

        view = meta["ViewPosition"].astype(object)
        meta = meta[view.isin(params.views)]
        n_view_dropped = n_images - len(meta)
        obs = normalise_observations(labels, OBSERVATIONS, dataset=DATASET, file=labels_name)
        labels = pd.concat([labels[key], obs.rename(columns=snake_case)], axis=1)
        frame = meta.merge(labels, on=key, how="inner", validate="many_to_one")
        n_unlabelled = len(meta) - len(frame)

        frame = pd.DataFrame(
            {
                "sample_id": frame["dicom_id"].astype(object),
                "patient_id": frame["subject_id"],
                "study_id": frame["study_id"],
                "view": frame["ViewPosition"].astype(object),
                "study_date": frame["StudyDate"].astype(object),
                **{snake_case(c): frame[snake_case(c)] for c in OBSERVATIONS},
            }
        )

        split_note = "- No split file read: no `official_split` column."
        if params.split is not None:
            split = table(root, params.split, ("dicom_id", "split"))
            official = dict(zip(split["dicom_id"], split["split"], strict=True))
            frame["official_split"] = frame["sample_id"].map(official).astype(object)
            split_note = (
                f"- `official_split` is the `split` column of `{Path(params.split).name}` "
                f"(train/validate/test) by `dicom_id`; {int(frame['official_split'].isna().sum())}"
                " kept images are not in it."
            )
        elif params.official_splits is not None:
            raise BuildError(f"{DATASET}: official_splits needs the split file (params.split)")
        n_split_dropped = 0
        if params.official_splits is not None:
            inside = frame["official_split"].isin(params.official_splits)
            n_split_dropped = int((~inside).sum())
            frame = frame[inside]

        patients = table(iv_root, params.patients_table, PATIENT_COLUMNS)
        patients_name = Path(params.patients_table).name
        patients["subject_id"] = _ids(
            patients["subject_id"], file=patients_name, column="subject_id"
        )
        patients = patients.drop_duplicates()
        if patients["subject_id"].duplicated().any():
            dup_id = patients["subject_id"][patients["subject_id"].duplicated()].iloc[0]
            raise BuildError(f"{DATASET}: {patients_name} has two rows for subject {dup_id}")
        before = len(frame)
        frame = frame.merge(
            patients[list(PATIENT_COLUMNS)].rename(
                columns={"subject_id": "patient_id", "gender": "sex"}
            ),
            on="patient_id",
            how="inner",
            validate="many_to_one",
        )
        n_no_patient = before - len(frame)
        study_year = pd.to_numeric(frame["study_date"], errors="coerce") // 10000
        age = pd.to_numeric(frame["anchor_age"], errors="coerce") + (
            study_year - pd.to_numeric(frame["anchor_year"], errors="coerce")
        )
        frame["age"] = age.astype("float64")

        race_note = "- No admissions table read: no race columns."
        if params.admissions is not None:
            frame, race_note = self._race(frame, table, iv_root, params.admissions)

        chosen, n_patients_dropped = subsample_patients(
            frame["patient_id"], params.patients, ctx.rng
        )
        frame = frame[chosen].reset_index(drop=True)
        if frame.empty:
            raise BuildError(f"{DATASET}: no images are left after the source's filters")

        paths = [
            root / "files" / f"p{s[:2]}" / f"p{s}" / f"s{t}" / f"{d}.jpg"
            for s, t, d in zip(
                frame["patient_id"], frame["study_id"], frame["sample_id"], strict=True
            )
        ]
        check_images(paths, dataset=DATASET, how=HOW, listed_in=meta_name)
        inputs = load_images(paths, params.image_size, channels=1)

        n_patients = frame["patient_id"].nunique()
        files = ", ".join(f"`{p.name}` (sha256 `{sha256_file(p)}`)" for p in read)
        years = ", ".join(
            f"{k}: {v}" for k, v in sorted(frame["anchor_year_group"].value_counts().items())
        )
        drops = [
            f"{n_view_dropped} images whose `ViewPosition` is not one of {params.views}",
            f"{n_unlabelled} images of studies without a row in `{labels_name}`",
            f"{n_no_patient} images of subjects missing from `{patients_name}`",
        ]
        if params.official_splits is not None:
            drops.append(
                f"{n_split_dropped} images outside official splits {params.official_splits}"
            )
        if n_patients_dropped:
            drops.append(
                f"the images of {n_patients_dropped} patients left out by the seeded subsample "
                f"of {params.patients} patients"
            )
        notes = "\n".join(
            [
                f"- Files read: {files}; and one JPEG per row at `$MIMIC_CXR_JPG_ROOT/files/"
                "p<first two digits of subject_id>/p<subject_id>/s<study_id>/<dicom_id>.jpg`.",
                f"- {n_images} images in `{read[0].name}`. Dropped: " + "; ".join(drops) + ". "
                f"Kept: {len(frame)} images of {n_patients} patients.",
                "- One row per image (`sample_id` = `dicom_id`, `patient_id` = `subject_id`); "
                "the study's labels (one row per study) are repeated on each of its images.",
                "- Observations are the CheXpert-labeler codes of the study's report: `1`, `0`, "
                "`-1` (uncertain), `not_mentioned` (blank); the spec's label mapping decides.",
                "- Demographics from MIMIC-IV `patients`, joined on `subject_id`: `sex` = "
                "`gender` (F/M); `age` = `anchor_age + (year of StudyDate - anchor_year)`; "
                "`anchor_year_group` is the real 3-year window of the patient's anchor year "
                f"(a per-patient column; counts over kept images: {years}).",
                race_note,
                split_note,
                f"- Images are centre-cropped to a square and resized to {params.image_size}x"
                f"{params.image_size} greyscale.",
                "- Access: MIMIC-CXR-JPG and MIMIC-IV are PhysioNet credentialed-access data "
                "sets (training, credentialing and a signed data use agreement). MedFail "
                "redistributes only the recipe; a build must stay where the agreement allows.",
            ]
        )
        provenance = (
            f"MIMIC-CXR-JPG ({read[0].name}, {read[1].name}) with MIMIC-IV ({patients_name}"
            + (f", {Path(params.admissions).name}" if params.admissions else "")
            + f"); {len(frame)} images of {n_patients} patients"
        )
        return SourceData(
            frame=normalise_columns(frame),
            provenance=provenance,
            arrays={"inputs": inputs},
            notes=notes,
        )

    @staticmethod
    def _race(
        frame: pd.DataFrame, table: Callable[..., pd.DataFrame], iv_root: Path, name: str
    ) -> tuple[pd.DataFrame, str]:
        path = find_table(iv_root, name, dataset=DATASET, how=HOW)
        header = pd.read_csv(path, nrows=0).columns
        file = Path(name).name
        column = next((c for c in ("race", "ethnicity") if c in header), None)
        if column is None:
            raise BuildError(
                f"{DATASET}: {file} lacks columns ['race'] (named 'ethnicity' before MIMIC-IV "
                f"2.0); it has {list(header)}"
            )
        admissions = table(iv_root, name, ("subject_id", column))
        admissions["subject_id"] = _ids(admissions["subject_id"], file=file, column="subject_id")
        values = (
            admissions.dropna(subset=[column])
            .groupby("subject_id")[column]
            .agg(lambda s: sorted(set(map(str, s))))
        )
        text = {p: "; ".join(v) for p, v in values.items()}
        group = {p: combine_race_groups(v) for p, v in values.items()}
        out = frame.copy()
        out["race"] = out["patient_id"].map(text).astype(object)
        out["race_group"] = out["patient_id"].map(lambda p: group.get(p, "Unknown")).astype(object)
        per_patient = out.drop_duplicates("patient_id")["race_group"].value_counts()
        groups = ", ".join(f"{k}: {v}" for k, v in sorted(per_patient.items()))
        note = (
            f"- Race from MIMIC-IV `{file}` (column `{column}`), one value per admission: "
            "`race` lists a patient's distinct values; `race_group` groups them by substring "
            "(first match wins: BLACK, WHITE, ASIAN, then HISPANIC/LATINO; UNKNOWN, UNABLE TO "
            "OBTAIN and PATIENT DECLINED TO ANSWER count as unknown; anything else `Other`), "
            "`Multiple` when a patient's admissions name different groups and `Unknown` when "
            f"none is known (patients per group: {groups}). After Glocker et al.'s MIMIC race "
            "grouping, which drops patients with inconsistent records instead."
        )
        return out, note
