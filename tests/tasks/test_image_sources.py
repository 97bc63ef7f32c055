"""The HAM10000, Fitzpatrick17k and Camelyon17-WILDS sources, on tiny fake trees in each
data set's real layout, built through the real task specs (only the data root differs)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from benchmark.errors import BuildError, DataUnavailableError, PatientLeakError
from benchmark.tasks.build import build_task
from benchmark.tasks.sources import get_source
from benchmark.tasks.spec import load_spec
from benchmark.tasks.task import Task
from tests import REPO

TASKS = REPO / "tasks"
HAM_ID = "ham10000-melanoma-site"
FITZ_ID = "fitzpatrick17k-skin-type"
CAM_ID = "camelyon17-hospital-shift"
ID_SPLITS = {"train", "val", "id_test"}
OOD_SPLITS = {"ood_val", "ood_test"}


def colour(i: int) -> tuple[int, int, int]:
    """A distinct flat colour per image, far enough apart to survive JPEG."""
    return (20 + (37 * i) % 216, 20 + (71 * i) % 216, 20 + (113 * i) % 216)


def write_image(path: Path, i: int, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, colour(i))
    if path.suffix == ".jpg":
        img.save(path, quality=95)
    else:
        img.save(path)


def write_table(path: Path, rows: list[dict[str, Any]], sep: str = ",") -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=sep)
        writer.writeheader()
        writer.writerows(rows)


def draft(task_id: str, root: Path, **params: Any) -> Path:
    """The real spec, copied under ``root`` with source params overridden."""
    data = yaml.safe_load((TASKS / task_id / "1.0.0.yaml").read_text(encoding="utf-8"))
    data["source"]["params"].update(params)
    path = root / "tasks" / task_id / "1.0.0.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def build(spec_path: Path) -> Task:
    spec = load_spec(spec_path)
    outcome = build_task(spec, spec_path)
    return Task(spec, outcome.path, outcome.manifest)


def everything(task: Task) -> pd.DataFrame:
    """All splits' rows with their split name and mean image colour."""
    parts = []
    for split in task.splits:
        frame = task.frame(split).assign(split=split)
        images = task.array(split)
        assert images.dtype == np.uint8 and images.shape[1] == 3
        frame["rgb"] = list(images.reshape(len(images), 3, -1).mean(axis=2))
        frame["hw"] = [images.shape[2:]] * len(frame)
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def assert_images_match(rows: pd.DataFrame, colour_of: dict[str, int]) -> None:
    for sid, rgb in zip(rows["sample_id"], rows["rgb"], strict=True):
        np.testing.assert_allclose(rgb, colour(colour_of[sid]), atol=8)


def assert_one_split_per_patient(rows: pd.DataFrame) -> None:
    splits_per_patient = rows.groupby("patient_id")["split"].nunique()
    assert (splits_per_patient == 1).all(), splits_per_patient[splits_per_patient > 1]


# ---------------------------------------------------------------------------------------
# HAM10000
# ---------------------------------------------------------------------------------------

# lesion_id, collection, dx, sex, age, images
HAM_LESIONS = [
    *[(f"HAM_00000{i:02d}", "vidir_modern", "mel", "male", "55.0", 1 + i % 2) for i in range(5)],
    *[(f"HAM_00001{i:02d}", "vidir_modern", "nv", "female", "35.0", 1 + i % 3) for i in range(5)],
    *[(f"HAM_00002{i:02d}", "rosendahl", "mel", "female", "75.0", 1) for i in range(3)],
    *[(f"HAM_00003{i:02d}", "rosendahl", "nv", "male", "45.0", 2) for i in range(3)],
    ("HAM_0000400", "vidir_modern", "bkl", "male", "60.0", 1),  # not mel/nv: dropped
    ("HAM_0000401", "vidir_molemax", "nv", "female", "30.0", 2),  # outside every domain
    ("HAM_0000402", "vidir_modern", "nv", "unknown", "40.0", 1),  # sex unmapped: dropped
    ("HAM_0000403", "rosendahl", "mel", "male", "", 1),  # age missing: dropped
]
HAM_COLUMNS = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization", "dataset"]


def ham_rows() -> list[dict[str, Any]]:
    rows, n = [], 0
    for lesion, collection, dx, sex, age, images in HAM_LESIONS:
        for _ in range(images):
            rows.append(
                {
                    "lesion_id": lesion,
                    "image_id": f"ISIC_{24306 + n:07d}",
                    "dx": dx,
                    "dx_type": "histo" if dx == "mel" else "follow_up",
                    "age": age,
                    "sex": sex,
                    "localization": "back",
                    "dataset": collection,
                }
            )
            n += 1
    return rows


def make_ham(root: Path, rows: list[dict[str, Any]] | None = None, sep: str = ",") -> Path:
    rows = rows if rows is not None else ham_rows()
    for i, row in enumerate(rows):
        part = "HAM10000_images_part_1" if i % 2 else "HAM10000_images_part_2"
        write_image(root / part / f"{row['image_id']}.jpg", i, (40, 30))
    write_table(root / "HAM10000_metadata.csv", rows, sep=sep)
    return root


@pytest.fixture
def ham(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_ham(tmp_path / "ham")
    monkeypatch.setenv("HAM10000_ROOT", str(root))
    return draft(HAM_ID, tmp_path)


def test_ham_rows_labels_groups_and_images_follow_the_metadata(ham: Path) -> None:
    task = build(ham)
    rows = everything(task)
    meta = pd.DataFrame(ham_rows()).set_index("image_id")
    kept = meta[
        meta["dx"].isin(["mel", "nv"])
        & meta["dataset"].isin(["vidir_modern", "rosendahl"])
        & meta["sex"].isin(["male", "female"])
        & (meta["age"] != "")
    ]
    assert sorted(rows["sample_id"]) == sorted(kept.index)
    truth = kept.loc[rows["sample_id"]]
    classes = np.array(task.spec.label.classes)[rows["label"]]
    assert list(classes) == ["melanoma" if d == "mel" else "nevus" for d in truth["dx"]]
    assert list(rows["patient_id"]) == list(truth["lesion_id"])
    assert list(rows["site"]) == list(truth["dataset"])
    assert list(rows["group_sex"]) == ["M" if s == "male" else "F" for s in truth["sex"]]
    ages = {"55.0": "50-69", "35.0": "<50", "75.0": "70+", "45.0": "<50"}
    assert list(rows["group_age_group"]) == [ages[a] for a in truth["age"]]
    assert all(hw == (64, 64) for hw in rows["hw"])
    assert_images_match(rows, {r["image_id"]: i for i, r in enumerate(ham_rows())})
    assert "no patient identifier" in task.card and "lesion_id" in task.card


def test_ham_splits_by_lesion_and_keeps_each_collection_in_its_splits(ham: Path) -> None:
    rows = everything(build(ham))
    assert_one_split_per_patient(rows)
    assert set(rows.loc[rows["split"].isin(ID_SPLITS), "site"]) == {"vidir_modern"}
    assert set(rows.loc[rows["split"].isin(OOD_SPLITS), "site"]) == {"rosendahl"}
    assert set(rows["split"]) == ID_SPLITS | OOD_SPLITS


def test_ham_reads_a_tab_separated_metadata_file(tmp_path: Path, ham: Path) -> None:
    comma = everything(build(ham))
    make_ham(tmp_path / "ham", sep="\t")
    tab = everything(build(ham))
    pd.testing.assert_frame_equal(comma.drop(columns="rgb"), tab.drop(columns="rgb"))


def test_ham_refuses_a_lesion_in_two_collections(tmp_path: Path, ham: Path) -> None:
    rows = ham_rows()
    moved = next(r for r in rows if r["dataset"] == "rosendahl" and r["dx"] == "nv")
    moved["lesion_id"] = "HAM_0000000"  # a vidir_modern lesion, now also in rosendahl
    make_ham(tmp_path / "ham", rows)
    with pytest.raises(PatientLeakError, match="HAM_0000000"):
        build(ham)


def test_ham_without_root_variable_names_it(ham: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HAM10000_ROOT")
    with pytest.raises(DataUnavailableError, match=r"\$HAM10000_ROOT.*Dataverse"):
        build(ham)


def test_ham_missing_metadata_names_the_file(tmp_path: Path, ham: Path) -> None:
    (tmp_path / "ham" / "HAM10000_metadata.csv").unlink()
    with pytest.raises(DataUnavailableError, match=r"HAM10000_metadata\.csv is missing"):
        build(ham)


@pytest.mark.parametrize("column", ["dx", "lesion_id", "dataset"])
def test_ham_metadata_without_a_column_names_it(tmp_path: Path, ham: Path, column: str) -> None:
    rows = [{k: v for k, v in r.items() if k != column} for r in ham_rows()]
    write_table(tmp_path / "ham" / "HAM10000_metadata.csv", rows)
    with pytest.raises(BuildError, match=f"'{column}'") as info:
        build(ham)
    assert info.type is BuildError  # malformed, not missing


def test_ham_missing_image_is_named(tmp_path: Path, ham: Path) -> None:
    victim = ham_rows()[3]["image_id"]
    next((tmp_path / "ham").rglob(f"{victim}.jpg")).unlink()
    with pytest.raises(DataUnavailableError, match=f"1 image.*{victim}.jpg"):
        build(ham)


def test_ham_missing_image_folder_is_named(tmp_path: Path, ham: Path) -> None:
    folder = tmp_path / "ham" / "HAM10000_images_part_2"
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()
    with pytest.raises(DataUnavailableError, match=r"folder .*HAM10000_images_part_2 is missing"):
        build(ham)


# ---------------------------------------------------------------------------------------
# Fitzpatrick17k
# ---------------------------------------------------------------------------------------

FITZ_COLUMNS = [
    "md5hash",
    "fitzpatrick_scale",
    "fitzpatrick_centaur",
    "label",
    "nine_partition_label",
    "three_partition_label",
    "qc",
    "url",
    "url_alphanum",
]
PARTITION = {
    "benign": ("dermatofibroma", "benign dermal"),
    "malignant": ("melanoma", "malignant melanoma"),
    "non-neoplastic": ("psoriasis", "inflammatory"),
}


def fitz_rows() -> list[dict[str, Any]]:
    spec = (
        [("1", "benign")] * 3
        + [("2", "benign")] * 3
        + [("1", "malignant")] * 3
        + [("2", "malignant")] * 3
        + [("3", "benign"), ("4", "benign"), ("3", "malignant"), ("4", "malignant")]
        + [("5", "benign"), ("6", "benign"), ("5", "malignant"), ("6", "malignant")]
        + [("2", "non-neoplastic"), ("5", "non-neoplastic")]  # dropped by the label
        + [("-1", "malignant"), ("-1", "benign")]  # unknown skin type: dropped
    )
    rows = []
    for i, (fst, three) in enumerate(spec):
        label, nine = PARTITION[three]
        host = (
            "https://www.dermaamin.com/site/images/x"
            if i % 2
            else "http://atlasdermatologico.com.br/img?imageId="
        )
        rows.append(
            {
                "md5hash": f"{i:032x}",
                "fitzpatrick_scale": fst,
                "fitzpatrick_centaur": fst,
                "label": label,
                "nine_partition_label": nine,
                "three_partition_label": three,
                "qc": "1 Diagnostic" if i == 0 else "",
                "url": f"{host}{i}",
                "url_alphanum": f"httpimage{i}jpg.jpg",
            }
        )
    return rows


def make_fitz(root: Path, rows: list[dict[str, Any]] | None = None) -> Path:
    rows = rows if rows is not None else fitz_rows()
    for i, row in enumerate(rows):
        write_image(root / "images" / f"{row['md5hash']}.jpg", i, (30, 40))
    write_table(root / "fitzpatrick17k.csv", rows)
    return root


@pytest.fixture
def fitz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_fitz(tmp_path / "fitz")
    monkeypatch.setenv("FITZPATRICK17K_ROOT", str(root))
    return draft(FITZ_ID, tmp_path)


def test_fitz_rows_labels_skin_types_and_images_follow_the_csv(fitz: Path) -> None:
    task = build(fitz)
    rows = everything(task)
    meta = pd.DataFrame(fitz_rows()).set_index("md5hash")
    kept = meta[
        meta["three_partition_label"].ne("non-neoplastic") & meta.fitzpatrick_scale.ne("-1")
    ]
    assert sorted(rows["sample_id"]) == sorted(kept.index)
    truth = kept.loc[rows["sample_id"]]
    classes = np.array(task.spec.label.classes)[rows["label"]]
    assert list(classes) == list(truth["three_partition_label"])
    groups = {"1": "I-II", "2": "I-II", "3": "III-IV", "4": "III-IV", "5": "V-VI", "6": "V-VI"}
    assert list(rows["group_skin_type"]) == [groups[t] for t in truth["fitzpatrick_scale"]]
    assert list(rows["patient_id"]) == list(rows["sample_id"])  # each image its own unit
    tests = rows[rows["split"].isin(["id_test", "ood_test"])]
    assert list(tests["condition"]) == list(kept.loc[tests["sample_id"], "label"])
    urls = kept.loc[tests["sample_id"], "url"]
    assert list(tests["atlas"]) == [
        "dermaamin" if "dermaamin" in u else "atlasdermatologico" for u in urls
    ]
    assert_images_match(rows, {r["md5hash"]: i for i, r in enumerate(fitz_rows())})


def test_fitz_trains_on_light_skin_and_tests_on_darker(fitz: Path) -> None:
    rows = everything(build(fitz))
    assert set(rows.loc[rows["split"].isin(ID_SPLITS), "group_skin_type"]) == {"I-II"}
    ood = rows[rows["split"].isin(OOD_SPLITS)]
    assert set(ood["group_skin_type"]) == {"III-IV", "V-VI"}
    assert set(rows["split"]) == ID_SPLITS | OOD_SPLITS


def test_fitz_accepts_the_older_skin_type_column_name(tmp_path: Path, fitz: Path) -> None:
    current = everything(build(fitz))
    rows = [
        {("fitzpatrick" if k == "fitzpatrick_scale" else k): v for k, v in r.items()}
        for r in fitz_rows()
    ]
    write_table(tmp_path / "fitz" / "fitzpatrick17k.csv", rows)
    older = everything(build(fitz))
    pd.testing.assert_frame_equal(current.drop(columns="rgb"), older.drop(columns="rgb"))


def test_fitz_missing_image_is_an_error_or_dropped_on_request(tmp_path: Path, fitz: Path) -> None:
    victim = fitz_rows()[0]["md5hash"]
    (tmp_path / "fitz" / "images" / f"{victim}.jpg").unlink()
    with pytest.raises(DataUnavailableError, match=f"1 image.*{victim}.jpg"):
        build(fitz)
    lenient = draft(FITZ_ID, tmp_path, missing_images="drop")
    task = build(lenient)
    rows = everything(task)
    assert victim not in set(rows["sample_id"]) and len(rows) == 19
    assert "Images not on disk: 1" in task.card


@pytest.mark.parametrize("column", ["three_partition_label", "fitzpatrick_scale", "md5hash"])
def test_fitz_csv_without_a_column_names_it(tmp_path: Path, fitz: Path, column: str) -> None:
    rows = [{k: v for k, v in r.items() if k != column} for r in fitz_rows()]
    write_table(tmp_path / "fitz" / "fitzpatrick17k.csv", rows)
    with pytest.raises(BuildError, match=f"'{column}'") as info:
        build(fitz)
    assert info.type is BuildError


def test_fitz_refuses_an_unknown_skin_type_code(tmp_path: Path, fitz: Path) -> None:
    rows = fitz_rows()
    rows[4]["fitzpatrick_scale"] = "7"
    write_table(tmp_path / "fitz" / "fitzpatrick17k.csv", rows)
    with pytest.raises(BuildError, match=r"fitzpatrick_scale.*'7'"):
        build(fitz)


def test_fitz_without_root_variable_names_it(fitz: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FITZPATRICK17K_ROOT")
    with pytest.raises(DataUnavailableError, match=r"\$FITZPATRICK17K_ROOT.*mattgroh"):
        build(fitz)


def test_fitz_missing_csv_names_the_file(tmp_path: Path, fitz: Path) -> None:
    (tmp_path / "fitz" / "fitzpatrick17k.csv").unlink()
    with pytest.raises(DataUnavailableError, match=r"fitzpatrick17k\.csv is missing"):
        build(fitz)


# ---------------------------------------------------------------------------------------
# Camelyon17-WILDS
# ---------------------------------------------------------------------------------------

# patient -> (center, nodes); 5 patients per training hospital, 3 at hospitals 1 and 2
CAM_PATIENTS = {
    **{f"{4 + i:03d}": (0, (1,) if i % 2 else (0, 2)) for i in range(5)},
    **{f"{40 + i:03d}": (3, (3,)) for i in range(5)},
    **{f"{60 + i:03d}": (4, (4,)) for i in range(5)},
    **{f"{20 + i:03d}": (1, (1,)) for i in range(3)},
    **{f"{80 + i:03d}": (2, (2,)) for i in range(3)},
}
NEGATIVE_PATIENTS = {"005", "041", "043", "061", "063", "021", "081"}


def cam_rows() -> list[dict[str, Any]]:
    rows, slide = [], 0
    for patient, (center, nodes) in CAM_PATIENTS.items():
        for node in nodes:
            for k in range(3 if slide % 2 else 2):
                tumour = int(patient not in NEGATIVE_PATIENTS and k == 0)
                rows.append(
                    {
                        "": len(rows),  # the unnamed index column of the real file
                        "patient": patient,
                        "node": node,
                        "x_coord": 96 * k + 3200,
                        "y_coord": 96 * slide,
                        "tumor": tumour,
                        "slide": slide,
                        "center": center,
                        "split": int(k == 2),
                    }
                )
            slide += 1
    return rows


def cam_name(row: dict[str, Any]) -> str:
    return (
        f"patch_patient_{row['patient']}_node_{row['node']}_x_{row['x_coord']}_y_{row['y_coord']}"
    )


def make_cam(base: Path, rows: list[dict[str, Any]] | None = None) -> Path:
    data = base / "camelyon17_v1.0"
    rows = rows if rows is not None else cam_rows()
    for i, row in enumerate(rows):
        folder = f"patient_{row['patient']}_node_{row['node']}"
        write_image(data / "patches" / folder / f"{cam_name(row)}.png", i, (96, 96))
    write_table(data / "metadata.csv", rows)
    return data


@pytest.fixture
def cam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_cam(tmp_path / "wilds")
    monkeypatch.setenv("CAMELYON17_ROOT", str(tmp_path / "wilds"))  # the parent folder works
    return draft(CAM_ID, tmp_path, image_size=32)


def test_cam_rows_labels_and_patches_follow_the_metadata(cam: Path) -> None:
    task = build(cam)
    rows = everything(task)
    meta = {cam_name(r): r for r in cam_rows()}
    assert sorted(rows["sample_id"]) == sorted(meta)
    truth = [meta[s] for s in rows["sample_id"]]
    classes = np.array(task.spec.label.classes)[rows["label"]]
    assert list(classes) == ["tumour" if r["tumor"] else "normal" for r in truth]
    assert list(rows["patient_id"]) == [r["patient"] for r in truth]  # zero padding kept
    assert list(rows["site"]) == [str(r["center"]) for r in truth]
    tests = rows[rows["split"].isin(["id_test", "ood_test"])]
    assert list(tests["wilds_split"]) == [str(meta[s]["split"]) for s in tests["sample_id"]]
    assert all(hw == (32, 32) for hw in rows["hw"])
    assert_images_match(rows, {cam_name(r): i for i, r in enumerate(cam_rows())})
    assert not [c for c in rows.columns if c.startswith("group_")]  # no demographics


def test_cam_follows_the_wilds_hospital_protocol_by_patient(cam: Path) -> None:
    rows = everything(build(cam))
    assert_one_split_per_patient(rows)
    hospitals = rows.groupby("split")["site"].agg(set).to_dict()
    for split in ID_SPLITS:
        assert hospitals[split] <= {"0", "3", "4"}
    assert set().union(*(hospitals[s] for s in ID_SPLITS)) == {"0", "3", "4"}
    assert hospitals["ood_val"] == {"1"} and hospitals["ood_test"] == {"2"}


def test_cam_samples_patches_per_slide_with_the_seed(tmp_path: Path, cam: Path) -> None:
    path = draft(CAM_ID, tmp_path, image_size=32, patches_per_slide=2)
    first = everything(build(path))
    again = everything(build(path))
    assert list(first["sample_id"]) == list(again["sample_id"])
    assert first.groupby("slide").size().max() == 2
    assert first["slide"].nunique() == pd.DataFrame(cam_rows())["slide"].nunique()
    assert len(first) < len(cam_rows()) and "at most 2 patches per slide" in build(path).card


def test_cam_refuses_a_patient_in_two_hospitals(tmp_path: Path, cam: Path) -> None:
    rows = cam_rows()
    for row in rows:
        if row["patient"] == "080":  # a hospital-2 patient ...
            row["patient"] = "004"  # ... now shares an id with a hospital-0 patient
    make_cam(tmp_path / "wilds", rows)
    with pytest.raises(PatientLeakError, match="'004'"):
        build(cam)


def test_cam_missing_patch_is_named(tmp_path: Path, cam: Path) -> None:
    victim = cam_name(cam_rows()[5])
    next((tmp_path / "wilds").rglob(f"{victim}.png")).unlink()
    with pytest.raises(DataUnavailableError, match=rf"1 of \d+ patch file.*{victim}\.png"):
        build(cam)


@pytest.mark.parametrize("column", ["tumor", "center", "patient"])
def test_cam_metadata_without_a_column_names_it(tmp_path: Path, cam: Path, column: str) -> None:
    rows = [{k: v for k, v in r.items() if k != column} for r in cam_rows()]
    write_table(tmp_path / "wilds" / "camelyon17_v1.0" / "metadata.csv", rows)
    with pytest.raises(BuildError, match=f"'{column}'") as info:
        build(cam)
    assert info.type is BuildError


def test_cam_without_root_variable_or_metadata_names_it(
    tmp_path: Path, cam: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "wilds" / "camelyon17_v1.0" / "metadata.csv").unlink()
    with pytest.raises(DataUnavailableError, match=r"metadata\.csv is missing"):
        build(cam)
    monkeypatch.delenv("CAMELYON17_ROOT")
    with pytest.raises(DataUnavailableError, match=r"\$CAMELYON17_ROOT.*wilds"):
        build(cam)


# ---------------------------------------------------------------------------------------
# The real specs
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("task_id", [HAM_ID, FITZ_ID, CAM_ID])
def test_real_specs_parse_as_drafts_of_registered_sources(task_id: str) -> None:
    spec = load_spec(TASKS / task_id / "1.0.0.yaml")
    assert spec.id == task_id and not spec.released
    source = get_source(spec.source.name, spec.ref)
    params = source.parse_params(spec.source.params, spec.ref)
    assert params.root.startswith("$")  # the user points an env var at their copy
    assert spec.features.array is not None and spec.features.array.kind == "image"
    assert ("fairness" in spec.probes) == bool(spec.attributes)
