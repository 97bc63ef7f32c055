"""Which task versions the demo trains: the newest released version of each tabular task,
so that releasing a new version never doubles the demo's training time (issue 18)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest

from baselines import demo
from benchmark.errors import MedFailError
from benchmark.tasks.build import BuildOutcome
from benchmark.tasks.registry import ResolvedTask
from benchmark.tasks.spec import TaskSpec, version_key


def _builtin() -> list[TaskSpec]:
    return [r.spec for r in demo.builtin_tasks()]


def _spec(ref: str, *, released: bool = True, array: bool = False) -> TaskSpec:
    """A copy of a shipped tabular (or image) spec under another id and version."""
    task_id, _, version = ref.partition("@")
    base = next(s for s in _builtin() if (s.features.array is not None) == array and s.released)
    return base.model_copy(
        update={
            "id": task_id,
            "version": version,
            "manifest_sha256": ("a" * 64) if released else None,
        }
    )


def test_default_trains_the_newest_released_version_of_each_tabular_task() -> None:
    built = [
        _spec("tab-a@1.0.0"),
        _spec("tab-a@1.1.0"),
        _spec("tab-a@1.2.0", released=False),  # a draft is never trained by default
        _spec("tab-b@1.0.0"),
        _spec("tab-c@1.0.0", released=False),  # no released version: not trained
        _spec("img-a@1.0.0", array=True),
    ]
    assert demo.training_refs(built, []) == ["tab-a@1.1.0", "tab-b@1.0.0"]


def test_train_names_an_id_or_an_exact_version() -> None:
    built = [
        _spec("tab-a@1.0.0"),
        _spec("tab-a@1.1.0"),
        _spec("img-a@1.0.0", array=True),
        _spec("img-a@2.0.0", array=True),
    ]
    assert demo.training_refs(built, ["img-a"]) == ["img-a@2.0.0"]
    assert demo.training_refs(built, ["tab-a@1.0.0", "tab-a", "tab-a@1.1.0"]) == [
        "tab-a@1.0.0",
        "tab-a@1.1.0",
    ]
    assert demo.training_refs([_spec("d@0.1.0", released=False)], ["d"]) == ["d@0.1.0"]
    with pytest.raises(MedFailError, match=r"not built in: tab-a@9.9.9, nope"):
        demo.training_refs(built, ["tab-a@9.9.9", "nope"])


def test_the_shipped_tasks_train_once_each_at_their_newest_release() -> None:
    built = _builtin()
    refs = demo.training_refs(built, [])
    ids = [r.split("@")[0] for r in refs]
    assert len(ids) == len(set(ids))
    for ref in refs:
        task_id, _, version = ref.partition("@")
        released = [s.version for s in built if s.id == task_id and s.released]
        assert version == max(released, key=version_key)
    tabular = {s.id for s in built if s.features.array is None and s.released}
    assert set(ids) == tabular
    assert len(refs) < len([s for s in built if s.features.array is None])  # 1.0.0s left out


def test_run_demo_builds_every_version_and_trains_the_chosen(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    resolved = [
        ResolvedTask(_spec("tab-a@1.0.0"), tmp_path / "a1.yaml"),
        ResolvedTask(_spec("tab-a@1.1.0"), tmp_path / "a2.yaml"),
    ]
    monkeypatch.setattr(demo, "builtin_tasks", lambda: iter(resolved))
    monkeypatch.setattr(demo, "verify_dir", lambda path, pin: None)
    loaded: list[str] = []
    monkeypatch.setattr(demo.Task, "load", staticmethod(lambda ref: loaded.append(ref)))
    monkeypatch.setattr(demo, "methods_for", lambda task: [])
    monkeypatch.setattr(demo, "load_boards", lambda out, check: [])

    @contextmanager
    def progress(label: str, total: int):
        yield lambda what: None

    def build(r: ResolvedTask) -> BuildOutcome:
        return BuildOutcome(path=tmp_path, manifest=None, reused=True)  # type: ignore[arg-type]

    result = demo.run_demo(tmp_path / "out", [0], 40, [], build=build, progress=progress)
    assert list(result.built) == ["tab-a@1.0.0", "tab-a@1.1.0"]
    assert result.trained == loaded == ["tab-a@1.1.0"]
