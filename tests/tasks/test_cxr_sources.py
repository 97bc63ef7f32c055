"""The chest-radiograph sources (CheXpert, MIMIC-CXR-JPG + MIMIC-IV, NIH ChestX-ray14) on
tiny fake trees in each data set's real layout, built through the real task specs.

Each fake tree is written by a ``make_*`` function that also returns what the build must
give: one row per image with the class the spec's label rule gives (None: dropped), the
group the spec's attributes give, whether the image survives the source's and the recipe's
filters, and the grey level the image was written with (to check that row i of the stored
array is the image of row i of the table).
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmark.errors import BuildError, DataUnavailableError, PatientLeakError
from benchmark.tasks.build import build_task
from benchmark.tasks.sources import SourceContext, get_source
from benchmark.tasks.sources.chexpert import (
    CSV_COLUMNS,
    OBSERVATIONS,
    combine_race_groups,
    race_group,
)
from benchmark.tasks.spec import load_spec
from benchmark.tasks.task import Task
from tests import REPO

TASKS = REPO / "tasks"
SIZE = 16
RACE_ATTR = {  # the race mapping of the CheXpert and MIMIC specs, for race_group values
    "White": "White",
    "Black": "Black",
    "Asian": "Asian",
    "Other": "Other",
    "Multiple": "Other",
    "Unknown": "Unknown",
}


def grey(path: Path, value: int, fmt: str) -> None:
    """A non-square constant image (the source crops it square and resizes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (14, 11), color=value).save(path, format=fmt, quality=95)


def age_bin(age: float | None, edges: list[float], labels: list[str]) -> str | None:
    if age is None:
        return None
    for lo, hi, label in zip(edges[:-1], edges[1:], labels, strict=True):
        if lo <= age < hi:
            return label
    return None


# -- fake trees -------------------------------------------------------------------------------


def make_chexpert(root: Path) -> pd.DataFrame:
    """24 patients with consistent sex (12 men, 12 women, half of each with an effusion),
    lateral views, uncertain labels, an unknown age, a patient whose images disagree on
    sex, and a demographics file with a missing patient and a conflicting one."""
    rows, expected = [], []
    value = iter(range(20, 250, 3))

    def add(pid, study, sex, age, view, effusion, keep, label):
        """One image row; view AP/PA is a frontal view1, LATERAL a lateral view2."""
        file = "view2_lateral" if view == "LATERAL" else "view1_frontal"
        path = f"CheXpert-v1.0-small/train/{pid}/{study}/{file}.jpg"
        g = next(value)
        grey(root / path, g, "JPEG")
        row = dict.fromkeys(CSV_COLUMNS, "")
        row |= {"Path": path, "Sex": sex, "Age": str(age), "Pleural Effusion": effusion}
        row |= {"Frontal/Lateral": "Lateral" if view == "LATERAL" else "Frontal"}
        row |= {"AP/PA": "" if view == "LATERAL" else view, "Support Devices": "1.0"}
        rows.append(row)
        expected.append(
            {
                "sample_id": f"{pid}/{study}/{file}",
                "patient_id": pid,
                "keep": keep,
                "label": label,
                "age": age,
                "grey": g,
            }
        )

    for k in range(24):
        pid = f"patient{k + 1:05d}"
        sex = "Male" if k < 12 else "Female"
        positive = k % 12 < 6
        effusion = "1.0" if positive else ("0.0" if k % 3 else "")
        label = "effusion" if positive else "no_effusion"
        age = 20 + 3 * k
        view = "PA" if k % 2 else "AP"
        if k == 7:  # Age 0 means unknown: the age attribute drops the image
            add(pid, "study1", sex, 0, view, effusion, False, label)
            add(pid, "study3", sex, age, view, effusion, True, label)
        else:
            add(pid, "study1", sex, age, view, effusion, True, label)
        if k % 4 == 0:  # laterals are not among the views
            add(pid, "study1", sex, age, "LATERAL", effusion, False, label)
        if k % 5 == 0:  # uncertain: dropped by the label rule
            add(pid, "study2", sex, age, "AP", "-1.0", False, None)
    # images that disagree on sex: patient_sex is missing, so outside both domains
    add("patient00025", "study1", "Male", 50, "PA", "1.0", False, "effusion")
    add("patient00025", "study2", "Female", 51, "PA", "0.0", False, "no_effusion")
    pd.DataFrame(rows, columns=list(CSV_COLUMNS)).to_csv(
        root / "CheXpert-v1.0-small/train.csv", index=False
    )

    races = [
        "White",
        "Black or African American",
        "Asian",
        "Other",
        "Unknown",
        "White, non-Hispanic",
        "Native Hawaiian or Other Pacific Islander",
    ]
    demo = [
        {
            "PATIENT": f"patient{k + 1:05d}",
            "GENDER": "Male" if k < 12 else "Female",
            "AGE_AT_CXR": str(20 + 3 * k),
            "PRIMARY_RACE": races[k % len(races)],
            "ETHNICITY": "Non-Hispanic/Non-Latino",
        }
        for k in range(23)  # patient00024 has no demographics row
    ]
    demo.append({**demo[2], "PRIMARY_RACE": "White"})  # patient00003: Asian and White
    demo.append({**demo[0], "PATIENT": "patient00025"})
    pd.DataFrame(demo).to_excel(root / "CHEXPERT DEMO.xlsx", index=False)

    out = pd.DataFrame(expected)
    group = {d["PATIENT"]: race_group(d["PRIMARY_RACE"]) for d in demo}
    group["patient00003"] = "Multiple"
    out["race"] = out["patient_id"].map(lambda p: RACE_ATTR[group.get(p, "Unknown")])
    out["age_group"] = out["age"].map(
        lambda a: age_bin(a or None, [0, 40, 60, 80, 111], ["<40", "40-59", "60-79", "80+"])
    )
    out["domain"] = out["patient_id"].map(
        lambda p: None if p == "patient00025" else ("men" if int(p[-5:]) <= 12 else "women")
    )
    return out


def _write_gz(frame: pd.DataFrame, path: Path) -> None:
    with gzip.open(path, "wt", newline="") as f:
        frame.to_csv(f, index=False)


def make_mimic(cxr: Path, iv: Path) -> pd.DataFrame:
    """24 subjects (12 anchored 2008-2013, 12 in 2014-2019; half with an effusion), laterals,
    uncertain studies, a subject missing from patients.csv, a study missing from the label
    file, and admissions whose race values agree, disagree or are unknown."""
    meta, labels, splits, expected = [], [], [], []
    patients, admissions = [], []
    value = iter(range(20, 250, 3))
    groups = ["2008 - 2010", "2011 - 2013", "2014 - 2016", "2017 - 2019"]
    race_values = [
        ["WHITE", "WHITE - OTHER EUROPEAN"],
        ["BLACK/AFRICAN AMERICAN"],
        ["ASIAN - CHINESE"],
        ["WHITE", "BLACK/AFRICAN AMERICAN"],
        ["UNKNOWN", "UNABLE TO OBTAIN"],
    ]
    race_expected = ["White", "Black", "Asian", "Other", "Unknown"]
    for k in range(26):
        sid = str(10000001 + k)
        positive = k % 12 < 6
        early = k < 12 or k == 25
        group = groups[(k % 2) + (0 if early else 2)]
        anchor_year, anchor_age = 2150 + k, 30 + 2 * k
        if k != 24:  # subject 24 is not in MIMIC-IV patients
            patients.append(
                {
                    "subject_id": sid,
                    "gender": "F" if k % 2 else "M",
                    "anchor_age": anchor_age,
                    "anchor_year": anchor_year,
                    "anchor_year_group": group,
                    "dod": "",
                }
            )
        if k != 11:  # subject 11 has no admissions: race unknown
            for hadm, race in enumerate(race_values[k % 5]):
                admissions.append(
                    {
                        "subject_id": sid,
                        "hadm_id": 20000000 + 10 * k + hadm,
                        "admittime": "2150-01-01 00:00:00",
                        "race": race,
                    }
                )
        race = "Unknown" if k == 11 else race_expected[k % 5]
        for j in range(1 + (k % 3 == 0)):
            study = str(50000000 + 10 * k + j)
            uncertain = j == 1
            effusion = "-1.0" if uncertain else ("1.0" if positive else ("0.0" if k % 2 else ""))
            if k != 25:  # subject 25's study has no row in the label file
                labels.append(
                    {
                        "subject_id": sid,
                        "study_id": study,
                        **dict.fromkeys(OBSERVATIONS, ""),
                        "Pleural Effusion": effusion,
                    }
                )
            for view in ("PA" if k % 2 else "AP", "LATERAL"):
                dicom = f"{k:04d}{j}{view[0]}-0000-0000"
                g = next(value)
                grey(
                    cxr / "files" / f"p{sid[:2]}" / f"p{sid}" / f"s{study}" / f"{dicom}.jpg",
                    g,
                    "JPEG",
                )
                meta.append(
                    {
                        "dicom_id": dicom,
                        "subject_id": sid,
                        "study_id": study,
                        "PerformedProcedureStepDescription": "CHEST (PA AND LAT)",
                        "ViewPosition": view,
                        "Rows": 11,
                        "Columns": 14,
                        "StudyDate": f"{anchor_year + 3}0506",
                        "StudyTime": "213014.531",
                    }
                )
                splits.append(
                    {
                        "dicom_id": dicom,
                        "study_id": study,
                        "subject_id": sid,
                        "split": "test" if k % 4 == 0 else "train",
                    }
                )
                keep = view != "LATERAL" and not uncertain and k not in (24, 25)
                expected.append(
                    {
                        "sample_id": dicom,
                        "patient_id": sid,
                        "keep": keep,
                        "grey": g,
                        "label": "effusion" if positive else "no_effusion",
                        "domain": "early" if early else "late",
                        "sex": "F" if k % 2 else "M",
                        "age": anchor_age + 3,  # 3 years after the anchor
                        "race": RACE_ATTR[race],
                        "official_split": "test" if k % 4 == 0 else "train",
                    }
                )
    _write_gz(pd.DataFrame(meta), cxr / "mimic-cxr-2.0.0-metadata.csv.gz")
    _write_gz(pd.DataFrame(labels), cxr / "mimic-cxr-2.0.0-chexpert.csv.gz")
    _write_gz(pd.DataFrame(splits), cxr / "mimic-cxr-2.0.0-split.csv.gz")
    (iv / "hosp").mkdir(parents=True)
    pd.DataFrame(patients).to_csv(iv / "hosp/patients.csv", index=False)
    pd.DataFrame(admissions).to_csv(iv / "hosp/admissions.csv", index=False)
    out = pd.DataFrame(expected)
    out["age_group"] = out["age"].map(
        lambda a: age_bin(a, [18, 40, 60, 80, 111], ["18-39", "40-59", "60-79", "80+"])
    )
    return out


NIH_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
    "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)


def make_nih(root: Path) -> pd.DataFrame:
    """12 PA-only and 12 AP-only patients (half with a finding), 3 with both views, ages
    written as 58 and as 058Y, an implausible age, images in two Kaggle-style folders."""
    lines, expected, tests = [NIH_HEADER], [], []
    value = iter(range(20, 250, 2))
    for k in range(27):
        pid = k + 1
        positive = k % 12 < 6
        n = 2 if k % 2 or k >= 24 else 1
        for j in range(n):
            name = f"{pid:08d}_{j:03d}.png"
            view = "PA" if (j == 0 if k >= 24 else k < 12) else "AP"  # 24-26: both views
            findings = ["Effusion|Atelectasis", "Cardiomegaly"][j] if positive else "No Finding"
            age = 148 if (k == 9 and j == 1) else 20 + 3 * k
            age_text = f"{age:03d}Y" if k == 5 else str(age)
            sex = "F" if k % 2 else "M"
            lines.append(
                f"{name},{findings},{j},{pid},{age_text},{sex},{view},2500,2048,0.168,0.168"
            )
            g = next(value)
            grey(root / ("images_001" if k < 14 else "images_002") / "images" / name, g, "PNG")
            if k % 4 == 0:
                tests.append(name)
            expected.append(
                {
                    "sample_id": name,
                    "patient_id": str(pid),
                    "grey": g,
                    "sex": sex,
                    "label": "finding" if positive else "no_finding",
                    "age_group": age_bin(
                        age, [0, 18, 40, 60, 80, 111], ["<18", "18-39", "40-59", "60-79", "80+"]
                    ),
                    "domain": None if k >= 24 else ("pa_patients" if k < 12 else "ap_patients"),
                    "official_split": "test" if k % 4 == 0 else "train_val",
                }
            )
    (root / "Data_Entry_2017.csv").write_text("\n".join(lines) + "\n")
    (root / "test_list.txt").write_text("\n".join(tests) + "\n")
    train_val = [e["sample_id"] for e in expected if e["sample_id"] not in tests]
    (root / "train_val_list.txt").write_text("\n".join(train_val) + "\n")
    out = pd.DataFrame(expected)
    out["keep"] = out["domain"].notna() & out["age_group"].notna()
    return out


# -- specs and builds -----------------------------------------------------------------------

TASK = {
    "chexpert": "chexpert-effusion-sex",
    "mimic": "mimic-cxr-effusion-temporal",
    "nih": "nih-cxr14-pa-to-ap",
}
ENV = {
    "chexpert": ("CHEXPERT_ROOT",),
    "mimic": ("MIMIC_CXR_JPG_ROOT", "MIMIC_IV_ROOT"),
    "nih": ("NIH_CXR14_ROOT",),
}


_TREES: dict[str, tuple[Path, pd.DataFrame]] = {}  # name -> (fake tree, expected rows)


@pytest.fixture(scope="module", autouse=True)
def _tree_cache(tmp_path_factory: pytest.TempPathFactory):
    """Each fake tree is written once per module and copied into each test's tmp_path."""
    _TREES["base"] = (tmp_path_factory.mktemp("cxr-trees"), pd.DataFrame())
    yield
    _TREES.clear()


def fake_tree(name: str, data: Path) -> pd.DataFrame:
    """Copy the fake tree ``name`` to ``data`` (writing it first if needed)."""
    if name not in _TREES:
        base = _TREES["base"][0] / name
        base.mkdir()
        if name == "chexpert":
            expected = make_chexpert(base)
        elif name == "mimic":
            (base / "cxr").mkdir()
            expected = make_mimic(base / "cxr", base / "iv")
        else:
            expected = make_nih(base)
        _TREES[name] = (base, expected)
    base, expected = _TREES[name]
    shutil.copytree(base, data)
    return expected.copy()


def setup(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    edits: tuple[tuple[str, str], ...] = (),
) -> tuple[Path, pd.DataFrame, Path]:
    """The fake tree, the real spec copied into ``tmp_path/tasks`` (images made 16x16,
    ``edits`` applied as text replacements), and its root variables pointed at the tree."""
    data = tmp_path / name
    expected = fake_tree(name, data)
    if name == "mimic":
        monkeypatch.setenv("MIMIC_CXR_JPG_ROOT", str(data / "cxr"))
        monkeypatch.setenv("MIMIC_IV_ROOT", str(data / "iv"))
    else:
        monkeypatch.setenv(ENV[name][0], str(data))
    text = (TASKS / TASK[name] / "1.0.0.yaml").read_text()
    text = text.replace("image_size: 128", f"image_size: {SIZE}")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "tasks" / TASK[name] / "1.0.0.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path, expected, data


def build(path: Path, tmp_path: Path) -> Task:
    spec = load_spec(path)
    outcome = build_task(spec, path, root=tmp_path / "cache")
    return Task(spec, outcome.path, outcome.manifest)


def check_build(task: Task, expected: pd.DataFrame, attributes: list[str], jpeg: bool) -> None:
    """Rows, labels, groups, domains and images of every split against the fake tree."""
    kept = expected[expected["keep"]].set_index("sample_id")
    seen: list[str] = []
    owner: dict[str, str] = {}
    classes = task.spec.label.classes
    for split in task.splits:
        frame, images = task.frame(split), task.array(split)
        assert images.dtype == np.uint8 and images.shape == (len(frame), 1, SIZE, SIZE)
        assert len(frame) > 0
        want = kept.loc[frame["sample_id"]]
        assert list(frame["patient_id"]) == list(want["patient_id"])
        assert [classes[i] for i in frame["label"]] == list(want["label"])
        assert list(frame["domain"]) == list(want["domain"])
        for attr in attributes:
            assert list(frame[f"group_{attr}"]) == list(want[attr]), attr
        tol = 2 if jpeg else 0
        means = images.reshape(len(frame), -1).astype(int)
        assert (np.abs(means - want["grey"].to_numpy()[:, None]) <= tol).all(), split
        for pid in set(frame["patient_id"]):  # patient-level integrity
            assert owner.setdefault(pid, split) == split, f"{pid} in {owner[pid]} and {split}"
        seen += list(frame["sample_id"])
    assert sorted(seen) == sorted(kept.index)


# -- the real specs -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TASK))
def test_real_spec_parses_as_a_draft_with_valid_source_params(name: str) -> None:
    path = TASKS / TASK[name] / "1.0.0.yaml"
    spec = load_spec(path)
    assert spec.id == TASK[name] and not spec.released
    params = get_source(spec.source.name).parse_params(spec.source.params, str(path))
    assert params.root == f"${ENV[name][0]}"
    assert set(spec.probes) == {"performance", "calibration", "fairness", "shift"}
    assert spec.features.array is not None and spec.features.array.kind == "image"


def test_race_groups_follow_the_documented_rule() -> None:
    assert race_group("Black or African American") == "Black"
    assert race_group("White, non-Hispanic") == "White"
    assert race_group("BLACK/AFRICAN AMERICAN, WHITE") == "Black"  # Black wins over White
    assert race_group("ASIAN - CHINESE") == "Asian"
    assert race_group("HISPANIC/LATINO - CUBAN") == "Hispanic/Latino"
    assert race_group("PATIENT DECLINED TO ANSWER") == "Unknown"
    assert race_group(None) == "Unknown" and race_group(float("nan")) == "Unknown"
    assert race_group("Native Hawaiian or Other Pacific Islander") == "Other"
    assert combine_race_groups(["WHITE", "WHITE - OTHER EUROPEAN", "UNKNOWN"]) == "White"
    assert combine_race_groups(["WHITE", "ASIAN"]) == "Multiple"
    assert combine_race_groups([]) == "Unknown"


# -- builds on the fake trees --------------------------------------------------------------


def test_chexpert_build_joins_labels_demographics_and_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, expected, _ = setup("chexpert", tmp_path, monkeypatch)
    task = build(path, tmp_path)
    check_build(task, expected, ["age_group", "race"], jpeg=True)
    frame = task.frame("id_test")
    assert set(frame["sex"]) == {"Male"} and set(task.frame("ood_test")["sex"]) == {"Female"}
    assert set(frame["support_devices"]) == {"1"}
    card = task.card
    assert "CHEXPERT DEMO.xlsx" in card and "research use agreement" in card
    assert "1 patients have more than one `PRIMARY_RACE`" in card


def test_mimic_build_joins_mimic_iv_demographics_and_race(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, expected, _ = setup("mimic", tmp_path, monkeypatch)
    task = build(path, tmp_path)
    check_build(task, expected, ["sex", "age_group", "race"], jpeg=True)
    kept = expected[expected["keep"]].set_index("sample_id")
    for split in ("id_test", "ood_test"):
        frame = task.frame(split)
        assert list(frame["official_split"]) == list(kept.loc[frame["sample_id"], "official_split"])
    card = task.card
    assert "mimic-cxr-2.0.0-metadata.csv.gz" in card and "credentialed" in card
    assert "images of subjects missing from `patients.csv`" in card
    assert "1 images of studies without a row" in card  # subject 25 (its lateral: views)


def test_nih_build_parses_findings_ages_and_views(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, expected, _ = setup("nih", tmp_path, monkeypatch)
    task = build(path, tmp_path)
    check_build(task, expected, ["sex", "age_group"], jpeg=False)
    frame = task.frame("ood_test")
    kept = expected[expected["keep"]].set_index("sample_id")
    assert list(frame["official_split"]) == list(kept.loc[frame["sample_id"], "official_split"])
    assert set(frame["view"]) == {"AP"} and set(task.frame("id_test")["view"]) == {"PA"}
    assert "images_001/images" in task.card and "images_002/images" in task.card


def source_frame(path: Path, tmp_path: Path) -> pd.DataFrame:
    """The raw table the spec's source gives (before the recipe)."""
    spec = load_spec(path)
    source = get_source(spec.source.name)
    params = source.parse_params(spec.source.params, str(path))
    ctx = SourceContext(spec_dir=path.parent, rng=np.random.default_rng(0))
    return source.load(params, ctx).frame.set_index("sample_id")


def test_chexpert_source_table_matches_the_csv_and_demographics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _, data = setup("chexpert", tmp_path, monkeypatch)
    frame = source_frame(path, tmp_path)
    csv = pd.read_csv(data / "CheXpert-v1.0-small/train.csv", dtype=str)
    frontal = csv[csv["Frontal/Lateral"] == "Frontal"]
    ids = frontal["Path"].str.replace(r"^CheXpert-v1.0-small/train/|\.jpg$", "", regex=True)
    assert sorted(frame.index) == sorted(ids)
    codes = {"1.0": "1", "0.0": "0", "-1.0": "-1"}
    want = frontal["Pleural Effusion"].map(lambda v: codes.get(v, "not_mentioned"))
    assert list(frame.loc[ids, "pleural_effusion"]) == list(want)
    assert list(frame.loc[ids, "view"]) == list(frontal["AP/PA"])
    assert pd.isna(frame.loc["patient00008/study1/view1_frontal", "age"])  # Age 0
    assert frame.loc["patient00008/study3/view1_frontal", "age"] == "41"
    one = frame.loc["patient00002/study1/view1_frontal"]
    assert (one["race"], one["race_group"], one["ethnicity"]) == (
        "Black or African American",
        "Black",
        "Non-Hispanic/Non-Latino",
    )
    both = frame.loc["patient00003/study1/view1_frontal"]  # Asian and White on file
    assert pd.isna(both["race"]) and both["race_group"] == "Multiple"
    none = frame.loc["patient00024/study1/view1_frontal"]  # no demographics row
    assert pd.isna(none["race"]) and none["race_group"] == "Unknown"
    assert frame.loc["patient00006/study1/view1_frontal", "race_group"] == "White"
    assert frame.loc["patient00007/study1/view1_frontal", "race_group"] == "Other"
    sexes = frame[frame["patient_id"] == "patient00025"]
    assert list(sexes["sex"]) == ["Male", "Female"] and sexes["patient_sex"].isna().all()


def test_mimic_source_table_matches_the_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, expected, _ = setup("mimic", tmp_path, monkeypatch)
    frame = source_frame(path, tmp_path)
    want = expected[
        (expected["sample_id"].str[5] != "L")
        & ~expected["patient_id"].isin(["10000025", "10000026"])
    ].set_index("sample_id")
    assert sorted(frame.index) == sorted(want.index)  # frontal, labelled, in patients.csv
    assert list(frame.loc[want.index, "age"]) == list(want["age"].astype(float))
    assert list(frame.loc[want.index, "sex"]) == list(want["sex"])
    first = frame[frame["patient_id"] == "10000001"].iloc[0]
    assert first["race"] == "WHITE; WHITE - OTHER EUROPEAN" and first["race_group"] == "White"
    assert first["anchor_year_group"] == "2008 - 2010" and first["pleural_effusion"] == "1"
    mixed = frame[frame["patient_id"] == "10000004"].iloc[0]
    assert mixed["race_group"] == "Multiple"
    assert pd.isna(frame[frame["patient_id"] == "10000012"].iloc[0]["race"])  # no admissions
    uncertain = frame[frame["study_id"] == "50000001"]
    assert list(uncertain["pleural_effusion"]) == ["-1"]
    assert set(frame[frame["patient_id"] == "10000003"]["pleural_effusion"]) == {"1"}
    assert set(frame[frame["patient_id"] == "10000009"]["pleural_effusion"]) == {"not_mentioned"}


def test_nih_source_table_matches_data_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, expected, _ = setup("nih", tmp_path, monkeypatch)
    frame = source_frame(path, tmp_path)
    assert sorted(frame.index) == sorted(expected["sample_id"])
    row = frame.loc["00000002_001.png"]
    assert row["finding_labels"] == "Cardiomegaly" and row["cardiomegaly"] == "1"
    assert (row["effusion"], row["no_finding"], row["any_finding"]) == ("0", "0", "1")
    row = frame.loc["00000002_000.png"]
    assert (row["effusion"], row["atelectasis"], row["any_finding"]) == ("1", "1", "1")
    row = frame.loc["00000007_000.png"]
    assert (row["no_finding"], row["any_finding"], row["effusion"]) == ("1", "0", "0")
    assert frame.loc["00000006_000.png", "age"] == 35  # written 035Y
    assert frame.loc["00000010_001.png", "age"] == 148
    assert set(frame[frame["patient_id"] == "25"]["patient_view"]) == {"mixed"}
    assert set(frame[frame["patient_id"] == "13"]["patient_view"]) == {"AP"}
    want = expected.set_index("sample_id")["official_split"]
    assert list(frame["official_split"]) == list(want.loc[frame.index])


def test_mimic_reads_older_admissions_with_an_ethnicity_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, expected, data = setup("mimic", tmp_path, monkeypatch)
    adm = pd.read_csv(data / "iv/hosp/admissions.csv").rename(columns={"race": "ethnicity"})
    adm.to_csv(data / "iv/hosp/admissions.csv", index=False)
    check_build(build(path, tmp_path), expected, ["race"], jpeg=True)


@pytest.mark.parametrize(
    ("name", "edits"),
    [
        ("chexpert", (("column: patient_sex", "column: sex"),)),  # patient00025: M and F
        ("nih", (("column: patient_view", "column: view"),)),  # patients with PA and AP
    ],
)
def test_a_patient_in_two_domains_is_refused(
    name: str, edits: tuple[tuple[str, str], ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _, _ = setup(name, tmp_path, monkeypatch, edits)
    with pytest.raises(PatientLeakError, match="more than one domain"):
        build(path, tmp_path)


def test_patient_subsample_is_seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, expected, data = setup("nih", tmp_path, monkeypatch)
    source = get_source("nih_cxr14")
    params = source.Params(root=str(data), image_size=SIZE, patients=5)

    def load(seed: int) -> pd.DataFrame:
        ctx = SourceContext(spec_dir=tmp_path, rng=np.random.default_rng(seed))
        return source.load(params, ctx).frame

    first, again = load(1), load(1)
    assert first["patient_id"].nunique() == 5
    assert list(first["sample_id"]) == list(again["sample_id"])
    assert set(first["patient_id"]) <= set(expected["patient_id"])


# -- missing and malformed data ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TASK))
def test_an_unset_root_variable_is_named(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _, _ = setup(name, tmp_path, monkeypatch)
    variable = ENV[name][-1]
    monkeypatch.delenv(variable)
    with pytest.raises(DataUnavailableError, match=rf"\${variable} is not set"):
        build(path, tmp_path)


@pytest.mark.parametrize(
    ("name", "file"),
    [
        ("chexpert", "CheXpert-v1.0-small/train.csv"),
        ("chexpert", "CHEXPERT DEMO.xlsx"),
        ("mimic", "cxr/mimic-cxr-2.0.0-chexpert.csv.gz"),
        ("mimic", "iv/hosp/patients.csv"),
        ("nih", "Data_Entry_2017.csv"),
        ("nih", "test_list.txt"),
    ],
)
def test_a_missing_metadata_file_is_named(
    name: str, file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _, data = setup(name, tmp_path, monkeypatch)
    (data / file).unlink()
    stem = Path(file).name.removesuffix(".gz")
    with pytest.raises(DataUnavailableError, match=rf"expected file .*{stem}.* is missing"):
        build(path, tmp_path)


def _rewrite(path: Path, change) -> None:
    if path.suffix == ".xlsx":
        change(pd.read_excel(path, dtype=str)).to_excel(path, index=False)
    elif path.suffix == ".gz":
        _write_gz(change(pd.read_csv(path, dtype=str)), path)
    else:
        change(pd.read_csv(path, dtype=str)).to_csv(path, index=False)


@pytest.mark.parametrize(
    ("name", "file", "column"),
    [
        ("chexpert", "CheXpert-v1.0-small/train.csv", "Pleural Effusion"),
        ("chexpert", "CHEXPERT DEMO.xlsx", "PRIMARY_RACE"),
        ("mimic", "cxr/mimic-cxr-2.0.0-metadata.csv.gz", "ViewPosition"),
        ("mimic", "iv/hosp/patients.csv", "anchor_year_group"),
        ("mimic", "iv/hosp/admissions.csv", "race"),
        ("nih", "Data_Entry_2017.csv", "View Position"),
    ],
)
def test_a_missing_column_is_a_build_error_naming_it(
    name: str, file: str, column: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _, data = setup(name, tmp_path, monkeypatch)
    _rewrite(data / file, lambda f: f.drop(columns=[column]))
    with pytest.raises(BuildError, match=rf"lacks columns \['{column}'\]") as info:
        build(path, tmp_path)
    assert not isinstance(info.value, DataUnavailableError)


@pytest.mark.parametrize(
    ("name", "file", "column", "value", "message"),
    [
        (
            "chexpert",
            "CheXpert-v1.0-small/train.csv",
            "Pleural Effusion",
            "2.0",
            r"column 'Pleural Effusion' has value '2.0'",
        ),
        (
            "chexpert",
            "CheXpert-v1.0-small/train.csv",
            "Path",
            "train/x.jpg",
            r"column 'Path' value 'train/x.jpg'",
        ),
        (
            "nih",
            "Data_Entry_2017.csv",
            "Finding Labels",
            "Effusion|Pneumonitis",
            r"'Finding Labels' has value 'Effusion\|Pneumonitis'",
        ),
        ("nih", "Data_Entry_2017.csv", "Patient Age", "fifty", r"'Patient Age' has value 'fifty'"),
    ],
)
def test_a_malformed_value_is_a_build_error_naming_it(
    name: str,
    file: str,
    column: str,
    value: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, _, data = setup(name, tmp_path, monkeypatch)

    def spoil(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[0, column] = value
        return frame

    if name == "nih":  # keep the real header (its bracketed names contain commas)
        lines = (data / file).read_text().splitlines()
        fields = lines[1].split(",")
        fields[NIH_HEADER.split(",").index(column)] = value
        lines[1] = ",".join(fields)
        (data / file).write_text("\n".join(lines) + "\n")
    else:
        _rewrite(data / file, spoil)
    with pytest.raises(BuildError, match=message):
        build(path, tmp_path)


@pytest.mark.parametrize(
    ("name", "image"),
    [
        ("chexpert", "CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg"),
        ("mimic", "cxr/files/p10/p10000002/s50000010/00010P-0000-0000.jpg"),
        ("nih", "images_001/images/00000002_000.png"),
    ],
)
def test_a_missing_image_is_named(
    name: str, image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _, data = setup(name, tmp_path, monkeypatch)
    (data / image).unlink()
    with pytest.raises(
        DataUnavailableError, match=rf"1 of \d+ image file\(s\).*{Path(image).name}"
    ):
        build(path, tmp_path)


def test_chexpert_reads_a_mirror_with_train_csv_at_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edits = (("csv: CheXpert-v1.0-small/train.csv", "csv: train.csv"),)
    path, expected, data = setup("chexpert", tmp_path, monkeypatch, edits)
    for item in (data / "CheXpert-v1.0-small").iterdir():
        shutil.move(item, data / item.name)
    (data / "CheXpert-v1.0-small").rmdir()
    check_build(build(path, tmp_path), expected, ["race"], jpeg=True)


def test_nih_reads_the_flat_images_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, expected, data = setup("nih", tmp_path, monkeypatch)
    flat = data / "images"
    flat.mkdir()
    for folder in ("images_001", "images_002"):
        for image in (data / folder / "images").iterdir():
            shutil.move(image, flat / image.name)
        shutil.rmtree(data / folder)
    check_build(build(path, tmp_path), expected, ["sex"], jpeg=False)
