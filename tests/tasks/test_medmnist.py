"""MedMNIST files: checksums, lookup, download, reading, and the tasks built on them.

The network is closed here, so the tests write tiny ``.npz`` files in the MedMNIST format
and patch the official MD5 table to theirs; downloads are served from a local HTTP server.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from benchmark.errors import BuildError, DataUnavailableError
from benchmark.tasks.build import build_task
from benchmark.tasks.sources import medmnist
from benchmark.tasks.spec import load_spec
from benchmark.tasks.task import Task
from tests import REPO

TASKS = REPO / "tasks"
SHARED_DATA = REPO.parent / "shared" / "data"
SIZES = {"train": 300, "val": 60, "test": 120}


def make_npz(path: Path, flag: str, size: int = 28, seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny file in the official format (keys, dtypes, label shapes); returns its arrays."""
    info = medmnist.DATASETS[flag]
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in SIZES.items():
        shape = (n, size, size) if info.channels == 1 else (n, size, size, 3)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        labels = np.arange(n) % len(info.classes)  # every class occurs in every split
        arrays[f"{split}_labels"] = rng.permutation(labels)[:, None].astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return arrays


@pytest.fixture
def fake_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$MEDMNIST_ROOT`` with tiny pathmnist/pneumoniamnist files whose MD5s are official."""
    root = tmp_path / "medmnist"
    for flag in ("pathmnist", "pneumoniamnist", "dermamnist"):
        path = root / medmnist.file_name(flag, 28)
        make_npz(path, flag, seed=len(flag))
        patched = {**medmnist.DATASETS[flag].md5, 28: medmnist.md5_file(path)}
        info = medmnist.DATASETS[flag]
        monkeypatch.setitem(
            medmnist.DATASETS, flag, type(info)(**{**info.__dict__, "md5": patched})
        )
    monkeypatch.setenv(medmnist.ENV_ROOT, str(root))
    return root


def build(task_id: str) -> Task:
    path = TASKS / task_id / "1.0.0.yaml"
    build_task(load_spec(path), path)
    return Task.load(task_id)


def test_the_catalogue_covers_the_2d_sets_at_four_sizes() -> None:
    assert len(medmnist.DATASETS) == 12
    for flag, info in medmnist.DATASETS.items():
        assert sorted(info.md5) == [28, 64, 128, 224], flag
        assert all(len(m) == 32 and int(m, 16) >= 0 for m in info.md5.values())
    assert medmnist.file_name("pathmnist", 28) == "pathmnist.npz"
    assert medmnist.file_name("pathmnist", 64) == "pathmnist_64.npz"
    assert len({m for i in medmnist.DATASETS.values() for m in i.md5.values()}) == 48


def test_pathmnist_site_shift_builds_with_the_official_domains(fake_root: Path) -> None:
    arrays = np.load(fake_root / "pathmnist.npz")
    task = build("pathmnist-site-shift")
    sizes = {s: len(task.frame(s)) for s in task.splits}
    assert sizes["train"] + sizes["val"] + sizes["id_test"] == SIZES["train"] + SIZES["val"]
    assert sizes["ood_val"] + sizes["ood_test"] == SIZES["test"]
    for split in task.splits:
        frame = task.frame(split)
        images = task.array(split)
        assert images.shape == (len(frame), 3, 28, 28)
        for row, (sid, label) in enumerate(zip(frame["sample_id"], frame["label"], strict=True)):
            official, index = sid.split("-")
            expected = arrays[f"{official}_images"][int(index)]
            assert np.array_equal(images[row], np.moveaxis(expected, -1, 0))
            assert label == int(arrays[f"{official}_labels"][int(index), 0] == 8)
        ood = split.startswith("ood")
        assert set(frame["sample_id"].str.split("-").str[0]) <= (
            {"test"} if ood else {"train", "val"}
        )
    assert "MD5" in task.card and "no patient ids" in task.card


def test_official_splits_are_kept_by_column(fake_root: Path) -> None:
    task = build("pneumoniamnist-corruption")
    for split, official in (("train", "train"), ("val", "val"), ("id_test", "test")):
        frame = task.frame(split)
        assert len(frame) == SIZES[official]
        assert set(frame["sample_id"].str.split("-").str[0]) == {official}
    X, _, _ = task.split("id_test")
    assert X.shape == (SIZES["test"], 1, 28, 28) and X.dtype == np.float32 and X.max() <= 1


def test_a_file_with_the_wrong_md5_is_named_and_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "mm"
    make_npz(root / "pneumoniamnist.npz", "pneumoniamnist")  # real MD5 table: mismatch
    before = (root / "pneumoniamnist.npz").read_bytes()
    monkeypatch.setenv(medmnist.ENV_ROOT, str(root))
    with pytest.raises(BuildError, match=r"pneumoniamnist\.npz: MD5 [0-9a-f]{32} is not the"):
        build("pneumoniamnist-corruption")
    assert (root / "pneumoniamnist.npz").read_bytes() == before


def test_a_truncated_file_fails_its_checksum(fake_root: Path) -> None:
    path = fake_root / "pathmnist.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BuildError, match="truncated, altered or another version"):
        medmnist.fetch("pathmnist", 28)


def test_a_missing_file_offline_says_how_to_obtain_it() -> None:
    with pytest.raises(DataUnavailableError) as err:
        build("pathmnist-site-shift")
    text = str(err.value)
    assert "pathmnist.npz" in text and "zenodo.org/records/10519652" in text
    assert medmnist.DATASETS["pathmnist"].md5[28] in text and "MEDMNIST_ROOT" in text


def test_an_explicit_path_that_is_missing_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match=r"nope\.npz"):
        medmnist.fetch("breastmnist", 28, tmp_path / "nope.npz")


def test_wrong_keys_and_shapes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "breastmnist.npz"
    np.savez(path, train_images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(BuildError, match="no array 'train_labels'"):
        medmnist.read_npz(path, "breastmnist")
    arrays = make_npz(tmp_path / "b2.npz", "breastmnist")
    arrays["val_labels"] = arrays["val_labels"][:, 0]
    np.savez(path, **arrays)
    with pytest.raises(BuildError, match=r"val_labels has shape \(60,\), expected \(60, 1\)"):
        medmnist.read_npz(path, "breastmnist")
    arrays = make_npz(tmp_path / "b3.npz", "breastmnist")
    arrays["test_labels"][0, 0] = 7
    np.savez(path, **arrays)
    with pytest.raises(BuildError, match=r"outside 0\.\.1"):
        medmnist.read_npz(path, "breastmnist")
    path.write_bytes(b"not a zip file")
    with pytest.raises(BuildError, match="not a readable MedMNIST"):
        medmnist.read_npz(path, "breastmnist")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server standing in for Zenodo."""
    folder = tmp_path / "zenodo"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", folder
    httpd.shutdown()
    httpd.server_close()


def test_download_checks_the_md5_and_discards_a_bad_file(
    server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, folder = server
    make_npz(folder / "breastmnist.npz", "breastmnist")
    good = medmnist.md5_file(folder / "breastmnist.npz")
    info = medmnist.DATASETS["breastmnist"]
    monkeypatch.setitem(
        medmnist.DATASETS,
        "breastmnist",
        type(info)(**{**info.__dict__, "md5": {**info.md5, 28: good}}),
    )
    monkeypatch.setattr(medmnist, "url", lambda flag, size: f"{address}/breastmnist.npz")
    monkeypatch.delenv(medmnist.ENV_OFFLINE)
    data = (folder / "breastmnist.npz").read_bytes()
    (folder / "breastmnist.npz").write_bytes(data[:-100])  # the server sends a truncated file
    with pytest.raises(BuildError, match="failed its MD5 check and was discarded"):
        medmnist.fetch("breastmnist", 28, progress=False)
    assert not (medmnist.download_dir() / "breastmnist.npz").exists()
    (folder / "breastmnist.npz").write_bytes(data)
    got = medmnist.fetch("breastmnist", 28, progress=False)
    assert got == medmnist.download_dir() / "breastmnist.npz"
    assert medmnist.md5_file(got) == good
    assert set(medmnist.read_npz(got, "breastmnist")) == {"train", "val", "test"}


def test_the_real_specs_parse() -> None:
    for task_id in ("pathmnist-site-shift", "pneumoniamnist-corruption", "dermamnist-corruption"):
        spec = load_spec(TASKS / task_id / "1.0.0.yaml")
        assert spec.source.name == "medmnist" and "corruption" in spec.probes
        assert "fairness" not in spec.probes  # MedMNIST carries no demographics


REAL_FILES = sorted(SHARED_DATA.glob("*mnist*.npz")) if SHARED_DATA.is_dir() else []


@pytest.mark.skipif(not REAL_FILES, reason="no real MedMNIST file in ../shared/data")
def test_a_real_medmnist_file_passes_its_official_md5_and_reads() -> None:
    path = REAL_FILES[0]
    stem = path.stem.split("_")
    flag, size = stem[0], int(stem[1]) if len(stem) > 1 else 28
    medmnist.check_md5(path, flag, size)
    splits = medmnist.read_npz(path, flag)
    n = tuple(len(splits[s][0]) for s in medmnist.SPLITS)
    assert n == medmnist.DATASETS[flag].n_samples


def test_an_offline_build_never_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(medmnist.ENV_OFFLINE)
    monkeypatch.setattr(medmnist, "download", lambda *a, **k: pytest.fail("tried to download"))
    path = TASKS / "pathmnist-site-shift" / "1.0.0.yaml"
    with pytest.raises(DataUnavailableError, match="downloads are off"):
        build_task(load_spec(path), path, offline=True)
