"""``chexpert``: CheXpert chest radiographs, their report-derived labels and the CheXpert
demographics file, from a local copy.

Layout expected under ``root`` (``$CHEXPERT_ROOT``; file names are params)::

    CheXpert-v1.0-small/train.csv
    CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg
    CHEXPERT DEMO.xlsx          (or a .csv export of it; optional, for race and ethnicity)

Images are looked up relative to the folder holding the CSV: a ``Path`` that starts with
the data set folder (``CheXpert-v1.0-small/...`` or ``CheXpert-v1.0/...``) has that first
component replaced by the CSV's folder, so the official layout above, the full-resolution
``CheXpert-v1.0/`` (with ``csv`` changed) and mirrors that put ``train.csv`` and ``train/``
directly under ``root`` (``csv: train.csv``) all resolve.

Format facts, and where they were checked:

* ``train.csv`` columns ``Path, Sex, Age, Frontal/Lateral, AP/PA`` then the 14 observations
  ``No Finding, Enlarged Cardiomediastinum, Cardiomegaly, Lung Opacity, Lung Lesion, Edema,
  Consolidation, Pneumonia, Atelectasis, Pneumothorax, Pleural Effusion, Pleural Other,
  Fracture, Support Devices``, coded ``1.0`` (positive), ``0.0`` (negative), ``-1.0``
  (uncertain) and blank (not mentioned in the report); a first row reads
  ``CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP,
  1.0,,,,,,,,,0.0,,,,1.0``. Sex is ``Female``/``Male``; ``Frontal/Lateral`` is
  ``Frontal``/``Lateral``; ``AP/PA`` holds the projection of frontal views. Seen in
  mlmed/torchxrayvision ``torchxrayvision/datasets.py`` (``CheX_Dataset``) and in several
  public loaders that quote the header and that first row.
* The patient id is the ``patientNNNNN`` path component (torchxrayvision extracts it with
  ``patient\\d+``); an ``Age`` of 0 means unknown (torchxrayvision sets it to missing; so
  does this source).
* ``CHEXPERT DEMO.xlsx`` (Stanford AIMI, separate download) has columns ``PATIENT`` (e.g.
  ``patient24428``), ``GENDER``, ``AGE_AT_CXR``, ``PRIMARY_RACE`` and ``ETHNICITY``; race
  values include ``White``, ``Other`` and ``Unknown`` and other free-text categories,
  ethnicity values ``Non-Hispanic/Non-Latino``, ``Hispanic/Latino``, ``Unknown``. Seen in
  biomedia-mira/chexploration ``notebooks/chexpert.sample.ipynb`` (whose race grouping, by
  substring ``Black``/``White``/``Asian``, ``race_group`` follows) and other public loaders.

Not verified: whether ``Sex`` has values besides ``Female``/``Male`` (kept as given);
whether a patient can appear twice in the demographics file (if so with different race
values, race is left unknown and counted); the exact list of ``PRIMARY_RACE`` values:
anything that names none of Black/White/Asian/Hispanic/Latino and is not an unknown code
(``Unknown``) is grouped as ``Other``, so a refusal code, if one exists, would land there.

Columns given (snake_case): ``sample_id`` (``patient00001/study1/view1_frontal``),
``patient_id``, ``study_id``, ``path``, ``sex``, ``age``, ``view`` (``AP``/``PA`` for frontal
views, ``LATERAL``), ``frontal_lateral``, ``ap_pa``, the 14 observations as text ``1``, ``0``,
``-1`` or ``not_mentioned``, ``patient_sex`` (the patient's sex when all their kept images
agree, else missing: a per-patient column safe for domain splits) and, with the
demographics file, ``race``, ``ethnicity``, ``race_group`` (Asian, Black, White,
Hispanic/Latino, Other, Unknown, Multiple) and ``demo_gender``, ``demo_age_at_cxr``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
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
    snake_case,
)
from benchmark.tasks.sources.files import (
    check_images,
    load_images,
    read_table,
    root_folder,
    subsample_patients,
)

DATASET = "CheXpert"
HOW = (
    "CheXpert is available after registration and acceptance of the Stanford research use "
    "agreement at https://stanfordaimi.azurewebsites.net/datasets/"
    "8cbd9ed4-2eb9-4565-affc-111cf4f7ebe2 (demographics: https://stanfordaimi.azurewebsites"
    ".net/datasets/192ada7c-4d43-466e-b8bb-b81992bb80cf); set $CHEXPERT_ROOT to the folder "
    "holding CheXpert-v1.0-small/ and CHEXPERT DEMO.xlsx."
)

#: The 14 report-derived observations of CheXpert and of MIMIC-CXR-JPG's chexpert file.
OBSERVATIONS = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
NOT_MENTIONED = "not_mentioned"
_CODES = {"1": "1", "1.0": "1", "0": "0", "0.0": "0", "-1": "-1", "-1.0": "-1"}
UNKNOWN_RACE = frozenset({"UNKNOWN", "UNABLE TO OBTAIN", "PATIENT DECLINED TO ANSWER"})
RACE_GROUPS = ("Asian", "Black", "White", "Hispanic/Latino", "Other", "Unknown", "Multiple")
CSV_COLUMNS = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *OBSERVATIONS)
DEMO_COLUMNS = ("PATIENT", "GENDER", "AGE_AT_CXR", "PRIMARY_RACE", "ETHNICITY")
_SAMPLE = re.compile(r"((patient\d+)/(study\d+)/([^/]+?))\.(?:jpg|jpeg|png)$", re.IGNORECASE)


# -- helpers shared with the MIMIC-CXR and NIH sources ------------------------------------


def normalise_observations(
    frame: pd.DataFrame, columns: Sequence[str], *, dataset: str, file: str
) -> pd.DataFrame:
    """CheXpert-style codes as text: ``1``, ``0``, ``-1`` and blank -> ``not_mentioned``.

    Any other value is an error naming the file, the column and the value.
    """
    out = {}
    for col in columns:
        raw = frame[col].astype(object)
        text = raw.map(lambda v: None if pd.isna(v) else str(v).strip())
        blank = text.isna() | (text == "")
        codes = text.map(lambda v: _CODES.get(v) if v else None)
        bad = text[~blank & codes.isna()]
        if len(bad):
            raise BuildError(
                f"{dataset}: {file} column {col!r} has value {bad.iloc[0]!r} (row "
                f"{int(bad.index[0])}); expected 1.0, 0.0, -1.0 or blank"
            )
        out[col] = codes.where(~blank, NOT_MENTIONED).astype(object)
    return pd.DataFrame(out, index=frame.index)


def race_group(value: object) -> str:
    """A coarse race group from a free-text race value, by substring (first match wins:
    Black, White, Asian, Hispanic/Latino), ``Unknown`` for missing or unknown codes, else
    ``Other``. Follows the grouping of Glocker et al. (chexploration) for CheXpert and
    MIMIC, with Hispanic/Latino kept apart rather than dropped."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "Unknown"
    text = str(value).strip().upper()
    if not text or text in UNKNOWN_RACE:
        return "Unknown"
    for key, group in (("BLACK", "Black"), ("WHITE", "White"), ("ASIAN", "Asian")):
        if key in text:
            return group
    if "HISPANIC" in text or "LATINO" in text:
        return "Hispanic/Latino"
    return "Other"


def combine_race_groups(values: Iterable[object]) -> str:
    """One group per patient from all their recorded race values: the single known group,
    ``Unknown`` if none is known, ``Multiple`` if records disagree."""
    groups = {race_group(v) for v in values} - {"Unknown"}
    if not groups:
        return "Unknown"
    return groups.pop() if len(groups) == 1 else "Multiple"


def one_value_per_patient(values: pd.Series, patients: pd.Series) -> pd.Series:
    """Per row: the patient's value if all their non-missing values agree, else missing."""
    frame = pd.DataFrame({"p": patients.to_numpy(), "v": values.astype(object).to_numpy()})
    distinct = frame.dropna(subset=["v"]).groupby("p")["v"].agg(lambda s: sorted(set(s)))
    single = {p: v[0] for p, v in distinct.items() if len(v) == 1}
    return pd.Series([single.get(p) for p in patients.to_numpy()], index=values.index, dtype=object)


# -- the source -----------------------------------------------------------------------------


class CheXpertParams(SourceParams):
    root: str
    image_size: int = Field(default=128, ge=16, le=512)
    csv: str = "CheXpert-v1.0-small/train.csv"
    demographics: str | None = Field(
        default="CHEXPERT DEMO.xlsx",
        description="Demographics file under root (.xlsx or .csv); null: no race columns.",
    )
    views: list[str] = Field(default_factory=lambda: ["PA", "AP"], min_length=1)
    patients: int | None = Field(
        default=None, ge=1, description="Keep this many patients, drawn with the task seed."
    )


class CheXpertSource(Source):
    name = "chexpert"
    Params = CheXpertParams

    def load(self, params: CheXpertParams, ctx: SourceContext) -> SourceData:
        root = root_folder(params.root, ctx.spec_dir, dataset=DATASET, how=HOW)
        csv_path = root / params.csv
        raw = read_table(csv_path, dataset=DATASET, how=HOW, columns=CSV_COLUMNS)
        n_rows = len(raw)

        match = (
            raw["Path"]
            .astype(object)
            .map(lambda p: _SAMPLE.search(str(p)) if isinstance(p, str) else None)
        )
        bad = match.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise BuildError(
                f"{DATASET}: {csv_path.name} column 'Path' value {raw['Path'].iloc[row]!r} "
                f"(row {row}) is not .../patientNNNNN/studyN/<view>.jpg"
            )
        frontal = raw["Frontal/Lateral"].astype(object)
        view = raw["AP/PA"].astype(object).where(frontal == "Frontal", None)
        view = view.where(frontal != "Lateral", "LATERAL")
        keep = view.isin(params.views)
        n_view_dropped = int((~keep).sum())

        frame = pd.DataFrame(
            {
                "sample_id": match.map(lambda m: m.group(1)),
                "patient_id": match.map(lambda m: m.group(2)),
                "study_id": match.map(lambda m: f"{m.group(2)}/{m.group(3)}"),
                "path": raw["Path"].astype(object),
                "sex": raw["Sex"].astype(object),
                "age": raw["Age"].astype(object).map(_age),
                "view": view,
                "frontal_lateral": frontal,
                "ap_pa": raw["AP/PA"].astype(object),
            }
        )
        obs = normalise_observations(raw, OBSERVATIONS, dataset=DATASET, file=csv_path.name)
        frame = pd.concat([frame, obs.rename(columns=snake_case)], axis=1)[keep]
        dup = frame["sample_id"][frame["sample_id"].duplicated()]
        if len(dup):
            raise BuildError(f"{DATASET}: {csv_path.name} lists {dup.iloc[0]!r} twice")
        frame["patient_sex"] = one_value_per_patient(frame["sex"], frame["patient_id"])

        chosen, n_patients_dropped = subsample_patients(
            frame["patient_id"], params.patients, ctx.rng
        )
        frame = frame[chosen].reset_index(drop=True)

        files = [f"`{params.csv}` (sha256 `{sha256_file(csv_path)}`)"]
        demo_note = "- No demographics file: no race or ethnicity columns."
        if params.demographics is not None:
            demo_path = root / params.demographics
            demo = read_table(demo_path, dataset=DATASET, how=HOW, columns=DEMO_COLUMNS)
            files.append(f"`{params.demographics}` (sha256 `{sha256_file(demo_path)}`)")
            frame, demo_note = _join_demographics(frame, demo, demo_path.name)

        paths = [_image_path(csv_path.parent, p) for p in frame["path"]]
        check_images(paths, dataset=DATASET, how=HOW, listed_in=csv_path.name)
        inputs = load_images(paths, params.image_size, channels=1)

        n_patients = frame["patient_id"].nunique()
        provenance = (
            f"CheXpert: {params.csv}"
            + (f" and {params.demographics}" if params.demographics else "")
            + f"; {len(frame)} images of {n_patients} patients"
        )
        notes = "\n".join(
            [
                f"- Files read under `$CHEXPERT_ROOT`: {', '.join(files)}, and one JPEG per "
                "row named by its `Path` (`CheXpert-v1.0-small/train/patientNNNNN/studyN/"
                "viewN_<frontal|lateral>.jpg`), looked up relative to the CSV's folder.",
                f"- {n_rows} rows in `{params.csv}`; {n_view_dropped} dropped because their "
                f"view is not one of {params.views} (view = `AP/PA` for frontal images, "
                "`LATERAL` for lateral ones)"
                + (
                    f"; {n_patients_dropped} patients left out by the seeded subsample of "
                    f"{params.patients} patients"
                    if n_patients_dropped
                    else ""
                )
                + f". Kept: {len(frame)} images of {n_patients} patients.",
                "- One row per image; `sample_id` is `patientNNNNN/studyN/viewN_...`, "
                "`patient_id` the `patientNNNNN` path component.",
                "- Observations are the report-derived CheXpert labeler codes: `1` positive, "
                "`0` negative, `-1` uncertain, `not_mentioned` for a blank cell; the spec's "
                "label mapping decides which count as which class.",
                "- `age` is the `Age` column (0 means unknown and is left missing); `sex` is "
                "`Sex` as given; `patient_sex` is the patient's sex when all their kept images "
                "agree.",
                demo_note,
                f"- Images are centre-cropped to a square and resized to {params.image_size}x"
                f"{params.image_size} greyscale.",
                "- Access: CheXpert (Stanford AIMI) requires registration and acceptance of the "
                "Stanford University research use agreement; the demographics file is a "
                "separate Stanford AIMI download. MedFail redistributes only the recipe.",
            ]
        )
        return SourceData(
            frame=normalise_columns(frame),
            provenance=provenance,
            arrays={"inputs": inputs},
            notes=notes,
        )


def _image_path(folder: Path, path: str) -> Path:
    """``Path`` under the CSV's folder, its data set folder component (``CheXpert-v1.0*``)
    replaced by that folder."""
    parts = path.split("/")
    if len(parts) > 1 and parts[0].startswith("CheXpert-v1.0"):
        parts = parts[1:]
    return folder.joinpath(*parts)


def _age(value: object) -> object:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    try:
        age = float(text)
    except ValueError:
        return None
    return None if age <= 0 else text


def _join_demographics(
    frame: pd.DataFrame, demo: pd.DataFrame, name: str
) -> tuple[pd.DataFrame, str]:
    demo = demo.astype(object).copy()
    demo["PATIENT"] = demo["PATIENT"].map(lambda v: str(v).strip() if pd.notna(v) else None)
    demo = demo.dropna(subset=["PATIENT"]).drop_duplicates()
    by_patient = demo.groupby("PATIENT", sort=True)
    race = by_patient["PRIMARY_RACE"].agg(lambda s: sorted(set(s.dropna())))
    conflicting = sorted(p for p, v in race.items() if len(v) > 1)

    def single(column: str) -> dict[str, object]:
        values = by_patient[column].agg(lambda s: sorted(set(s.dropna())))
        return {p: v[0] for p, v in values.items() if len(v) == 1}

    out = frame.copy()
    pids = out["patient_id"]
    out["race"] = pids.map(single("PRIMARY_RACE")).astype(object)
    out["ethnicity"] = pids.map(single("ETHNICITY")).astype(object)
    out["race_group"] = pids.map(lambda p: combine_race_groups(race.get(p, []))).astype(object)
    out["demo_gender"] = pids.map(single("GENDER")).astype(object)
    out["demo_age_at_cxr"] = pids.map(single("AGE_AT_CXR")).astype(object)
    unmatched = int((~pids.isin(race.index)).sum())
    note = (
        f"- Demographics: `{name}` joined on `PATIENT` = the `patientNNNNN` path component; "
        f"{unmatched} kept images have no demographics row (race unknown); "
        f"{len(conflicting)} patients have more than one `PRIMARY_RACE` value (raw race left "
        "missing). `race` is `PRIMARY_RACE`, `ethnicity` is `ETHNICITY`, as given; "
        "`race_group` groups `PRIMARY_RACE` by substring (first match wins: Black, White, "
        "Asian, then Hispanic/Latino; `Unknown` for missing or unknown; `Multiple` when a "
        "patient's records name different groups; anything else `Other`), after Glocker et "
        "al.'s CheXpert race grouping. `demo_gender` and `demo_age_at_cxr` are the file's "
        "`GENDER` and `AGE_AT_CXR`, kept for checks against `sex` and `age`."
    )
    return out, note
