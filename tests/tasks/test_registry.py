"""Resolving ID[@VERSION]: newest released version by default, clear errors otherwise."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from benchmark.errors import (
    TaskNotFoundError,
)
from benchmark.tasks.build import build_task, pin_task
from benchmark.tasks.registry import discover, parse_ref, resolve
from benchmark.tasks.spec import load_spec
from tests.conftest import write_tiny_task


@pytest.fixture
def versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "tasks"
    for v in ("1.0.0", "1.2.0", "1.10.0"):
        write_tiny_task(root, version=v)
    monkeypatch.setenv("MEDFAIL_TASKS_PATH", str(root))
    return root


def test_no_released_version_picks_newest_draft_and_says_so(versions: Path) -> None:
    resolved = resolve("tiny-task")
    assert resolved.spec.version == "1.10.0"  # semantic order, not text order
    assert "no released version" in resolved.note


def test_newest_released_beats_a_newer_draft(versions: Path) -> None:
    pin_task(versions / "tiny-task" / "1.2.0.yaml")
    resolved = resolve("tiny-task")
    assert resolved.spec.version == "1.2.0"
    assert "newest released version" in resolved.note
    assert resolve("tiny-task@1.10.0").spec.version == "1.10.0"
    assert resolve("tiny-task@1.10.0").note == ""


def test_unknown_version_lists_the_known_ones(versions: Path) -> None:
    expected = re.escape("no version '2.0.0'; versions: 1.0.0, 1.2.0, 1.10.0")
    with pytest.raises(TaskNotFoundError, match=expected):
        resolve("tiny-task@2.0.0")


def test_unknown_task_suggests_near_ones(versions: Path) -> None:
    with pytest.raises(
        TaskNotFoundError, match=r"unknown task 'tiny-tsk'; did you mean tiny-task\?"
    ):
        resolve("tiny-tsk")
    with pytest.raises(TaskNotFoundError, match=r"unknown task 'tiny'; did you mean tiny-task\?"):
        resolve("tiny")  # a prefix
    with pytest.raises(TaskNotFoundError, match=r"unknown task 'nope'; \d+ tasks are known: medf"):
        resolve("nope")


@pytest.mark.parametrize("bad", ["", "@1.0.0", "a@", "a@1@2"])
def test_malformed_refs(bad: str) -> None:
    with pytest.raises(TaskNotFoundError, match="not a task reference"):
        parse_ref(bad)


def test_debris_and_stray_yaml_do_not_break_discovery(tiny: Path) -> None:
    from benchmark.tasks.cache import cache_root

    debris = cache_root() / "tasks" / "tiny-task" / ".tmp-1.0.0-abcd"
    debris.mkdir(parents=True)
    shutil.copy(tiny, debris / "spec.yaml")
    (tiny.parent / "notes.yaml").write_text("hello: world\n")
    assert list(discover()["tiny-task"]) == ["1.0.0"]
    assert resolve("tiny-task").spec.version == "1.0.0"
    build_task(load_spec(tiny), tiny)
    assert not debris.exists()
