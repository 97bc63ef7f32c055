"""Every documented way of loading a build returns its splits apart, with the right rows:
an ID test split mixed with an OOD one would hide the very failure a task measures."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import load_dataset

from benchmark.tasks.cache import ENV_CACHE
from benchmark.tasks.registry import ENV_TASKS_PATH
from benchmark.tasks.task import Task
from tests.conftest import TINY_SPEC, make_table

#: The tiny task with all five splits: an OOD validation split beside the OOD test split.
FIVE = TINY_SPEC.replace(
    "  ood_test: {{domain: away, fraction: 1.0}}",
    "  ood_val: {{domain: away, fraction: 0.4}}\n  ood_test: {{domain: away, fraction: 0.6}}",
)


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> Task:
    root = tmp_path_factory.mktemp("tasks")
    folder = root / "tiny-task"
    folder.mkdir()
    make_table(n_patients=60).to_csv(folder / "data.csv", index=False)
    (folder / "1.0.0.yaml").write_text(FIVE.format(version="1.0.0", shard_rows=1000))
    with pytest.MonkeyPatch.context() as mp:  # module-scoped: its own cache, never the user's
        mp.setenv(ENV_CACHE, str(tmp_path_factory.mktemp("cache")))
        mp.setenv(ENV_TASKS_PATH, str(root))
        return Task.load("tiny-task", build=True)


def rows(task: Task) -> dict[str, int]:
    return {s: len(task.frame(s)) for s in task.splits}


def test_the_task_has_five_splits(task: Task) -> None:
    assert task.splits == ["train", "val", "id_test", "ood_val", "ood_test"]
    assert all(n > 0 for n in rows(task).values())


def test_load_dataset_on_the_folder_keeps_every_split(task: Task) -> None:
    """The documented call (README, card): the card's front matter names each split."""
    ds = load_dataset(str(task.path))
    assert {k: len(v) for k, v in ds.items()} == rows(task)
    assert set(ds["ood_test"]["sample_id"]) == set(task.frame("ood_test")["sample_id"])


def test_load_dataset_with_named_data_files_keeps_every_split(task: Task) -> None:
    files = {s: f"{task.path}/data/{s}-*.parquet" for s in task.splits}
    ds = load_dataset("parquet", data_files=files)
    assert {k: len(v) for k, v in ds.items()} == rows(task)


def test_the_card_says_how_to_load_and_warns_about_the_trap(task: Task) -> None:
    card = task.card
    assert "ds = load_dataset(str(task.path))" in card
    assert 'load_dataset("parquet", data_dir=...)' in card and "merges" in card
    merged = load_dataset("parquet", data_dir=str(Path(task.path) / "data"))
    assert len(merged["test"]) == len(task.frame("id_test")) + len(task.frame("ood_test"))
