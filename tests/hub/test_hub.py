"""Publish and pull through a local directory acting as the remote; HF wiring with a fake API."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmark.errors import HubError, ManifestMismatchError
from benchmark.hub import transport as hub
from benchmark.tasks.build import build_task, pin_task
from benchmark.tasks.cache import task_dir
from benchmark.tasks.manifest import verify_dir
from benchmark.tasks.spec import load_spec, spec_from_text
from tests.tasks.test_build import files_of


@pytest.fixture
def published(tiny: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The tiny task, released, built and published to ``tmp_path/remote``."""
    pin_task(tiny)
    local = build_task(load_spec(tiny), tiny).path
    remote = tmp_path / "remote"
    hub.publish(local, str(remote))
    return local, remote


def test_publish_then_pull_round_trip(published: tuple[Path, Path], tiny: Path) -> None:
    local, remote = published
    original = files_of(local)
    assert (remote / "tiny-task" / "1.0.0" / "manifest.json").is_file()
    assert not list((remote / "tiny-task").glob(".tmp-*"))
    shutil.rmtree(local)
    manifest = hub.pull(
        "tiny-task", "1.0.0", str(remote), local_spec=load_spec(tiny), parse=spec_from_text
    )
    assert files_of(task_dir("tiny-task", "1.0.0")) == original
    assert manifest.content_sha256 == load_spec(tiny).manifest_sha256


def test_pull_without_local_spec_uses_the_remote_spec(published: tuple[Path, Path]) -> None:
    local, remote = published
    shutil.rmtree(local)
    hub.pull("tiny-task", "1.0.0", f"file://{remote}", parse=spec_from_text)
    verify_dir(task_dir("tiny-task", "1.0.0"))


@pytest.mark.parametrize("damage", ["altered", "truncated", "missing"])
def test_corrupted_remote_is_refused_and_cache_untouched(
    published: tuple[Path, Path], tiny: Path, damage: str
) -> None:
    local, remote = published
    before = files_of(local)
    shard = remote / "tiny-task" / "1.0.0" / "data" / "train-00000-of-00001.parquet"
    if damage == "altered":
        data = bytearray(shard.read_bytes())
        data[100] ^= 0x01
        shard.write_bytes(bytes(data))
    elif damage == "truncated":
        shard.write_bytes(shard.read_bytes()[:50])
    else:
        shard.unlink()
    with pytest.raises(ManifestMismatchError) as info:
        hub.pull(
            "tiny-task", "1.0.0", str(remote), local_spec=load_spec(tiny), parse=spec_from_text
        )
    assert "data/train-00000-of-00001.parquet" in info.value.problems
    assert files_of(local) == before
    assert not list(local.parent.glob(".tmp-*"))


def test_pull_into_an_empty_cache_leaves_it_empty_on_failure(
    published: tuple[Path, Path], tiny: Path
) -> None:
    local, remote = published
    shutil.rmtree(local)
    (remote / "tiny-task" / "1.0.0" / "README.md").write_text("tampered card")
    with pytest.raises(ManifestMismatchError, match=r"README\.md"):
        hub.pull(
            "tiny-task", "1.0.0", str(remote), local_spec=load_spec(tiny), parse=spec_from_text
        )
    assert not local.exists()


def test_remote_built_from_other_spec_is_refused(published: tuple[Path, Path], tiny: Path) -> None:
    local, remote = published
    spec = load_spec(tiny)
    other = spec.model_copy(update={"seed": 99})
    with pytest.raises(ManifestMismatchError, match="other spec content"):
        hub.pull("tiny-task", "1.0.0", str(remote), local_spec=other, parse=spec_from_text)
    verify_dir(local)


def test_republishing_is_idempotent_but_never_overwrites(
    published: tuple[Path, Path], tiny: Path, tmp_path: Path
) -> None:
    local, remote = published
    assert "already published" in hub.publish(local, str(remote))
    other = tmp_path / "other-root"
    draft = tmp_path / "draft" / "tiny-task" / "1.0.0.yaml"
    draft.parent.mkdir(parents=True)
    shutil.copy(tiny.parent / "data.csv", draft.parent / "data.csv")
    draft.write_text(tiny.read_text().replace("seed: 7", "seed: 8").split("manifest_sha256")[0])
    changed = build_task(load_spec(draft), draft, root=other).path
    with pytest.raises(HubError, match="immutable"):
        hub.publish(changed, str(remote))


def test_pull_of_unpublished_version_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HubError, match=r"no manifest.json .* is it published"):
        hub.pull("tiny-task", "9.9.9", str(tmp_path / "empty"), parse=spec_from_text)


def test_publish_refuses_a_damaged_local_build(tiny: Path, tmp_path: Path) -> None:
    local = build_task(load_spec(tiny), tiny).path
    (local / "spec.yaml").write_text("oops")
    with pytest.raises(ManifestMismatchError, match=r"spec\.yaml"):
        hub.publish(local, str(tmp_path / "remote"))
    assert not (tmp_path / "remote").exists()


def test_hf_url_maps_version_to_revision() -> None:
    remote = hub.remote_for("hf://datasets/medfail/tiny-task", "tiny-task", "1.0.0")
    assert remote.hf_repo == "medfail/tiny-task"
    assert remote.path("manifest.json") == "datasets/medfail/tiny-task@1.0.0/manifest.json"
    with pytest.raises(HubError, match="hf://datasets/ORG/NAME"):
        hub.remote_for("hf://models/x/y", "tiny-task", "1.0.0")


def test_hf_publish_makes_one_commit_and_a_version_tag(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Hub is unreachable here, so the API is replaced by a recorder."""
    calls: list[tuple[str, dict]] = []

    class Commit:
        oid = "c0ffee"

    class FakeApi:
        def create_repo(self, repo: str, **kw: object) -> None:
            calls.append(("create_repo", {"repo": repo, **kw}))

        def upload_folder(self, **kw: object) -> Commit:
            calls.append(("upload_folder", kw))
            return Commit()

        def create_tag(self, repo: str, **kw: object) -> None:
            calls.append(("create_tag", {"repo": repo, **kw}))

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(hub, "_remote_manifest", lambda remote, version: None)
    local = build_task(load_spec(tiny), tiny).path
    hub.publish(local, "hf://datasets/medfail/tiny-task")
    names = [c[0] for c in calls]
    assert names == ["create_repo", "upload_folder", "create_tag"]
    assert calls[1][1]["folder_path"] == str(local)
    assert calls[1][1]["repo_type"] == "dataset"
    assert calls[2][1] == {
        "repo": "medfail/tiny-task",
        "tag": "1.0.0",
        "repo_type": "dataset",
        "revision": "c0ffee",
    }


def test_pull_refuses_manifest_names_outside_the_task(tiny: Path, tmp_path: Path) -> None:
    pin_task(tiny)
    local = build_task(load_spec(tiny), tiny).path
    remote = tmp_path / "remote"
    hub.publish(local, str(remote))
    manifest_path = remote / "tiny-task" / "1.0.0" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["extras"]["../../../../PWNED.txt"] = manifest["extras"]["README.md"]
    manifest_path.write_text(json.dumps(manifest))
    (tmp_path / "PWNED.txt").unlink(missing_ok=True)
    with pytest.raises(HubError, match="not a valid manifest"):
        hub.pull("tiny-task", "1.0.0", str(remote), parse=spec_from_text)
    assert not list(tmp_path.rglob("PWNED.txt"))
    with pytest.raises(HubError, match="not a valid task reference"):
        hub.pull("..", "1.0.0", str(remote), parse=spec_from_text)


def test_manifest_for_pulled_verify_mismatch_is_manifest_error(tiny: Path) -> None:
    path = build_task(load_spec(tiny), tiny).path
    (path / "manifest.json").unlink()
    with pytest.raises(ManifestMismatchError, match="no manifest"):
        from benchmark.tasks.manifest import verify_dir

        verify_dir(path)
