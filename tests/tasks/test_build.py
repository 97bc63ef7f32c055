"""Deterministic, atomic, verified builds of the tiny task."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest

from benchmark.errors import (
    BuildError,
    ManifestMismatchError,
    PatientLeakError,
    SpecError,
)
from benchmark.tasks import build as build_mod
from benchmark.tasks.build import build_task, expected_manifest_path, pin_task
from benchmark.tasks.cache import task_dir
from benchmark.tasks.manifest import verify_dir
from benchmark.tasks.recipe import check_patient_disjoint
from benchmark.tasks.spec import load_spec
from benchmark.tasks.task import Task
from tests.conftest import make_table, write_tiny_task


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_build_twice_is_byte_identical(tiny: Path, tmp_path: Path) -> None:
    spec = load_spec(tiny)
    first = build_task(spec, tiny, root=tmp_path / "c1")
    second = build_task(spec, tiny, root=tmp_path / "c2")
    assert not first.reused and not second.reused
    a, b = files_of(first.path), files_of(second.path)
    assert sorted(a) == [
        "README.md",
        "data/id_test-00000-of-00001.parquet",
        "data/ood_test-00000-of-00001.parquet",
        "data/train-00000-of-00001.parquet",
        "data/val-00000-of-00001.parquet",
        "manifest.json",
        "spec.yaml",
    ]
    assert a == b


def test_rebuild_reuses_a_verified_cache_and_replaces_a_broken_one(tiny: Path) -> None:
    assert not build_task(load_spec(tiny), tiny).reused
    assert not build_task(load_spec(tiny), tiny).reused  # drafts are always rebuilt
    pin_task(tiny)
    spec = load_spec(tiny)
    built = build_task(spec, tiny)
    assert built.reused  # a released build that verifies is reused
    shard = built.path / "data/train-00000-of-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:-10])
    again = build_task(spec, tiny)
    assert not again.reused and "failed verification" in again.note
    verify_dir(again.path)


def test_manifest_pin_names_the_changed_file(tiny: Path) -> None:
    digest = pin_task(tiny)
    spec = load_spec(tiny)
    assert spec.released and spec.manifest_sha256 == digest
    assert expected_manifest_path(tiny).is_file()
    table = make_table()
    table.loc[table["hospital"] == "B", "x1"] += 1.0  # only the OOD split's data change
    table.to_csv(tiny.parent / "data.csv", index=False)
    with pytest.raises(ManifestMismatchError) as info:
        build_task(spec, tiny, force=True)
    assert set(info.value.problems) == {"data/ood_test-00000-of-00001.parquet"}
    assert "does not reproduce the released version" in str(info.value)
    assert "source data differ" in str(info.value)


def test_changing_a_released_spec_is_caught(tiny: Path) -> None:
    pin_task(tiny)
    tiny.write_text(tiny.read_text().replace("seed: 7", "seed: 8"))
    with pytest.raises(ManifestMismatchError) as info:
        build_task(load_spec(tiny), tiny)
    assert "1.0.0.yaml" in info.value.problems
    assert "released versions are immutable" in str(info.value)


def test_pinning_twice_is_refused(tiny: Path) -> None:
    pin_task(tiny)
    with pytest.raises(SpecError, match="already released"):
        pin_task(tiny)


@pytest.mark.parametrize("damage", ["truncated", "altered", "missing", "extra"])
def test_verify_names_the_damaged_file(tiny: Path, damage: str) -> None:
    path = build_task(load_spec(tiny), tiny).path
    target = path / "data/val-00000-of-00001.parquet"
    if damage == "truncated":
        target.write_bytes(target.read_bytes()[:-1])
    elif damage == "altered":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "missing":
        target.unlink()
    else:
        target = path / "data/notes.txt"
        target.write_text("hello")
    with pytest.raises(ManifestMismatchError) as info:
        verify_dir(path)
    rel = target.relative_to(path).as_posix()
    assert list(info.value.problems) == [rel]
    expected = {
        "truncated": "truncated",
        "altered": "altered",
        "missing": "missing",
        "extra": "unexpected file",
    }[damage]
    assert info.value.problems[rel].startswith(expected)
    assert rel in str(info.value)


def test_verify_catches_an_edited_manifest(tiny: Path) -> None:
    path = build_task(load_spec(tiny), tiny).path
    manifest = path / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"rows": 2', '"rows": 3', 1))
    with pytest.raises(ManifestMismatchError, match="digest of its entries"):
        verify_dir(path)


def test_interrupted_build_leaves_nothing(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec(tiny)
    final = task_dir(spec.id, spec.version)
    real = build_mod.write_splits

    def write_then_die(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(build_mod, "write_splits", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        build_task(spec, tiny)
    assert not final.exists()
    assert [p.name for p in final.parent.iterdir() if not p.name.endswith(".lock")] == []


def test_interrupted_rebuild_keeps_the_old_build(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_spec(tiny)
    before = files_of(build_task(spec, tiny).path)
    monkeypatch.setattr(build_mod, "render_card", lambda *a: (_ for _ in ()).throw(OSError("disk")))
    with pytest.raises(OSError):
        build_task(spec, tiny, force=True)
    assert files_of(task_dir(spec.id, spec.version)) == before


def test_debris_of_a_killed_build_is_cleared(tiny: Path) -> None:
    spec = load_spec(tiny)
    final = task_dir(spec.id, spec.version)
    debris = final.parent / f".tmp-{spec.version}-killed"
    (debris / "data").mkdir(parents=True)
    (debris / "data" / "half.parquet").write_bytes(b"PAR1")
    build_task(spec, tiny)
    assert not debris.exists()
    verify_dir(final)


def test_patients_never_cross_splits(tiny: Path) -> None:
    task = Task.load("tiny-task", build=True)
    owner: dict[str, str] = {}
    total = 0
    for split in task.splits:
        frame = task.frame(split)
        total += len(frame)
        for pid in frame["patient_id"]:
            assert owner.setdefault(pid, split) == split
    source = make_table()
    assert total == len(source)
    # every row of a patient travels together, so row counts per patient are preserved
    built = pd.concat([task.frame(s) for s in task.splits])
    expected = source.groupby("pid").size().rename_axis("patient_id")
    assert built.groupby("patient_id").size().equals(expected)


def test_patient_in_two_domains_is_refused(tmp_path: Path) -> None:
    table = make_table()
    table.loc[0, "hospital"] = "B"  # this row now belongs to p001, who is at hospital A
    table.loc[0, "pid"] = "p001"
    path = write_tiny_task(tmp_path / "tasks", table=table)
    with pytest.raises(PatientLeakError, match="more than one domain"):
        build_task(load_spec(path), path)


def test_check_patient_disjoint_names_the_patient() -> None:
    a = pd.DataFrame({"patient_id": ["p1", "p2"]})
    b = pd.DataFrame({"patient_id": ["p3", "p2"]})
    with pytest.raises(PatientLeakError, match="'p2' in train and val"):
        check_patient_disjoint({"train": a, "val": b})


def test_sharding_and_load_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_tiny_task(tmp_path / "tasks", shard_rows=5)
    monkeypatch.setenv("MEDFAIL_TASKS_PATH", str(tmp_path / "tasks"))
    task = Task.load("tiny-task", build=True)
    train_shards = [n for n, e in task.manifest.files.items() if e.split == "train"]
    assert len(train_shards) > 1
    frame = task.frame("train")
    assert frame["sample_id"].is_monotonic_increasing
    assert len(frame) == sum(task.manifest.files[n].rows for n in train_shards)
    X, y, meta = task.split("train")
    assert list(X.columns) == ["x1", "x2", "sex"]
    assert set(y) <= {0, 1}
    assert list(meta.columns) == ["sample_id", "patient_id", "site", "domain", "group_sex"]
    with pytest.raises(KeyError, match="no split 'test'"):
        task.frame("test")
    assert load_spec(path).ref == "tiny-task@1.0.0"


def test_hf_datasets_reads_the_build(tiny: Path) -> None:
    from datasets import load_dataset

    task = Task.load("tiny-task", build=True)
    files = {s: str(task.path / "data" / f"{s}-*.parquet") for s in task.splits}
    ds = load_dataset("parquet", data_files=files)
    for split in task.splits:
        assert ds[split].num_rows == len(task.frame(split))
        assert ds[split].column_names == list(task.frame(split).columns)
    assert ds["train"]["sample_id"] == list(task.frame("train")["sample_id"])


def test_missing_source_column_is_named(tmp_path: Path) -> None:
    path = write_tiny_task(tmp_path / "tasks", table=make_table().drop(columns=["x2"]))
    with pytest.raises(BuildError, match=re.escape("features (x2) -> 'x2'")):
        build_task(load_spec(path), path)


def test_unknown_source_params_are_named(tiny: Path) -> None:
    tiny.write_text(tiny.read_text().replace("{path: data.csv}", "{path: data.csv, colour: 1}"))
    with pytest.raises(SpecError, match=r"source\.params: colour"):
        build_task(load_spec(tiny), tiny)


def test_empty_reference_group_is_refused(tmp_path: Path) -> None:
    table = make_table()
    table["sex"] = "M"
    path = write_tiny_task(tmp_path / "tasks", table=table)
    with pytest.raises(BuildError, match="reference group 'F'"):
        build_task(load_spec(path), path)


def test_cache_location_follows_the_environment(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDFAIL_CACHE", str(tmp_path / "elsewhere"))
    out = build_task(load_spec(tiny), tiny)
    assert out.path == tmp_path / "elsewhere" / "tasks" / "tiny-task" / "1.0.0"
    assert os.path.isfile(out.path / "manifest.json")


def test_pin_builds_fresh_and_never_half_releases(tiny: Path) -> None:
    build_task(load_spec(tiny), tiny)
    table = make_table()
    table["x1"] += 5
    table.to_csv(tiny.parent / "data.csv", index=False)
    digest = pin_task(tiny)
    rebuilt = build_task(load_spec(tiny), tiny, force=True)
    assert rebuilt.manifest.content_sha256 == digest  # the pin is of the edited data


def test_failed_pin_leaves_the_draft_untouched(tiny: Path, monkeypatch) -> None:
    from benchmark.tasks import build as build_mod

    before = tiny.read_text()
    real = build_mod.build_task
    calls = []

    def second_build_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(build_mod, "build_task", second_build_fails)
    with pytest.raises(OSError):
        pin_task(tiny)
    assert tiny.read_text() == before
    assert not expected_manifest_path(tiny).exists()
