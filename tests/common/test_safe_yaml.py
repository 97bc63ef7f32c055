"""Hostile YAML: every file MedFail parses is bounded before a schema sees it.

Billion laughs, deep nesting, non-UTF-8 bytes, impossible dates and oversized files give a
one-line error naming the file, through the library, the CLI, a pull from a hostile mirror
and the leaderboard; one bad spec or entry never takes the others down.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmark.boards.entries import load_boards
from benchmark.catalogue.cases import load_case
from benchmark.cli import app
from benchmark.common.safe_yaml import MAX_BYTES, MAX_DEPTH, load_yaml
from benchmark.errors import CaseError, HubError, MedFailError, SpecError
from benchmark.hub import transport as hub
from benchmark.tasks.build import build_task, pin_task
from benchmark.tasks.cache import task_dir
from benchmark.tasks.manifest import Manifest, file_entry
from benchmark.tasks.registry import ENV_TASKS_PATH, resolve
from benchmark.tasks.spec import load_spec, spec_from_text
from tests.boards.test_submissions import add_entry, board_of

runner = CliRunner()

#: 1.5 KB that expands to 9^9 (387 million) strings in a loader that follows aliases.
BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)
DEEP = "a: " + "[" * 5000 + "]" * 5000 + "\n"
HOSTILE = {
    "aliases": (BILLION_LAUGHS, "aliases (*name) are not allowed"),
    "deep nesting": (DEEP, f"nested deeper than {MAX_DEPTH} levels"),
    "impossible date": ("a: 2026-02-30\n", "a value cannot be read"),
    "unhashable key": ("? [a, b]\n: 1\n", "a mapping key must be a plain value"),
    "duplicate key": ("a: 1\na: 2\n", "duplicate key 'a'"),
    "not UTF-8": (b"id: \xff\xfe\n", "not UTF-8 text"),
    "oversized": ("a: " + "x" * (MAX_BYTES + 1) + "\n", "larger than"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_yaml_is_one_line_error(name: str) -> None:
    text, message = HOSTILE[name]
    with pytest.raises(SpecError) as err:
        load_yaml(text, "hostile.yaml", SpecError)
    assert message in str(err.value)
    assert str(err.value).startswith("hostile.yaml: ")
    assert "\n" not in str(err.value)


def test_billion_laughs_is_refused_within_a_memory_limit() -> None:
    """In a process limited to 1 GiB of address space, before any expansion."""
    code = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from benchmark.errors import SpecError
        from benchmark.tasks.spec import spec_from_text
        try:
            spec_from_text({BILLION_LAUGHS!r}, "laughs.yaml")
        except SpecError as e:
            print("REFUSED", e)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "REFUSED laughs.yaml: refused: aliases" in result.stdout


def test_the_laughs_are_real() -> None:
    """Control: PyYAML's own safe loader builds the alias graph (9^8 leaves when expanded)."""
    import yaml

    data = yaml.safe_load(BILLION_LAUGHS)
    assert len(data["i"]) == 9 and data["i"][0] is data["h"]
    assert len(BILLION_LAUGHS) < 1600


def test_the_spec_parser_refuses_them_with_the_file_named() -> None:
    with pytest.raises(SpecError, match=r"^spec\.yaml: refused: nested deeper"):
        spec_from_text(DEEP, "spec.yaml")


def test_a_case_file_with_deep_nesting_is_a_case_error(tmp_path: Path) -> None:
    path = tmp_path / "radiology" / "RAD-99.yaml"
    path.parent.mkdir()
    path.write_text(DEEP)
    with pytest.raises(CaseError, match="nested deeper"):
        load_case(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (BILLION_LAUGHS.encode(), "aliases (*name) are not allowed"),
        (DEEP.encode(), "nested deeper"),
        (b"id: tiny-task\nversion: \xff\n", "not UTF-8 text"),
        (None, "a value cannot be read"),  # the tiny spec with an impossible changelog date
    ],
    ids=["laughs", "deep", "not-utf8", "bad-date"],
)
def test_tasks_build_and_list_survive_a_hostile_spec(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes | None, message: str
) -> None:
    bad = tmp_path / "more" / "evil-task" / "1.0.0.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(
        content
        if content is not None
        else tiny.read_text()
        .replace("tiny-task", "evil-task")
        .replace("2026-11-23", "2026-02-30")
        .encode()
    )
    monkeypatch.setenv(ENV_TASKS_PATH, f"{tiny.parent.parent}:{bad.parent.parent}")
    result = runner.invoke(app, ["tasks", "build", "evil-task@1.0.0"])
    assert result.exit_code != 0
    assert message in str(result.exception)
    assert isinstance(result.exception, MedFailError)  # one line in main(), not a traceback

    listing = runner.invoke(app, ["tasks", "list"])
    assert listing.exit_code == 0, listing.output
    assert "tiny-task" in listing.output and "evil-task" in listing.output
    assert "invalid" in listing.output
    assert resolve("tiny-task").spec.id == "tiny-task"  # the others still resolve


def test_an_invalid_newer_version_is_skipped_not_fatal(tiny: Path) -> None:
    (tiny.parent / "1.1.0.yaml").write_text(DEEP)
    resolved = resolve("tiny-task")
    assert resolved.spec.version == "1.0.0"
    assert "skipped invalid version(s) 1.1.0" in resolved.note
    with pytest.raises(SpecError, match="nested deeper"):
        resolve("tiny-task@1.1.0")


@pytest.fixture
def mirror(tiny: Path, tmp_path: Path) -> Path:
    """The released tiny task published to a local mirror; the local cache entry removed."""
    pin_task(tiny)
    local = build_task(load_spec(tiny), tiny).path
    remote = tmp_path / "remote"
    hub.publish(local, str(remote))
    shutil.rmtree(local)
    return remote / "tiny-task" / "1.0.0"


@pytest.mark.parametrize("name", ["aliases", "deep nesting", "impossible date", "not UTF-8"])
def test_a_hostile_mirror_spec_is_refused_before_anything_is_written(
    mirror: Path, name: str
) -> None:
    text, message = HOSTILE[name]
    (mirror / "spec.yaml").write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(SpecError) as err:
        hub.pull("tiny-task", "1.0.0", str(mirror.parent.parent), parse=spec_from_text)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not task_dir("tiny-task", "1.0.0").exists()
    assert not list(task_dir("tiny-task", "1.0.0").parent.glob(".tmp-*"))


def test_a_pulled_spec_naming_another_task_is_refused(
    mirror: Path, tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The remote spec says other-task; the manifest (re-hashed by the attacker so that it
    verifies) and the request say tiny-task."""
    other = (mirror / "spec.yaml").read_text().replace("id: tiny-task", "id: other-task")
    (mirror / "spec.yaml").write_text(other)
    manifest = Manifest.read(mirror / "manifest.json")
    extras = manifest.extras | {"spec.yaml": file_entry(mirror / "spec.yaml")}
    spec_sha = spec_from_text(other).sha256()
    digest = Manifest.digest(manifest.task, manifest.version, spec_sha, manifest.files)
    forged = manifest.model_copy(
        update={"extras": extras, "spec_sha256": spec_sha, "content_sha256": digest}
    )
    (mirror / "manifest.json").write_text(forged.to_json())
    monkeypatch.delenv(ENV_TASKS_PATH)  # no local spec: the pull trusts the remote one
    with pytest.raises(HubError, match=r"is the spec of other-task@1\.0\.0; refused"):
        hub.pull("tiny-task", "1.0.0", str(mirror.parent.parent), parse=spec_from_text)
    assert not task_dir("tiny-task", "1.0.0").exists()
    assert runner.invoke(app, ["tasks", "list"]).exit_code == 0


def test_an_oversized_remote_manifest_is_refused_unread(
    mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub, "MAX_MANIFEST_BYTES", 100)
    with pytest.raises(HubError, match="over the 100-byte limit; refused"):
        hub.pull("tiny-task", "1.0.0", str(mirror.parent.parent), parse=spec_from_text)


def test_a_deeply_nested_metadata_file_excludes_only_its_entry(tmp_path: Path) -> None:
    add_entry(tmp_path, "good")
    bad = add_entry(tmp_path, "evil")
    (bad / "metadata.yaml").write_text(DEEP * 2)  # 10 KB
    board = board_of(tmp_path)
    assert [e.metadata.name for e in board.entries] == ["good"]
    [problem] = board.problems
    assert problem.startswith("entry 'evil' excluded: metadata.yaml: refused: nested deeper")
    assert len(load_boards(tmp_path)) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: !!binary //79\n", "could not determine a constructor"),  # bytes broke hashing
        ("a: !!set {x, y}\n", "could not determine a constructor"),
        ("n: 0x" + "f" * 5000 + "\n", "an integer beyond 64 bits"),  # broke hashing
    ],
)
def test_values_no_medfail_file_holds_are_refused(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_yaml(text, "spec.yaml", SpecError)


def test_a_link_to_an_endless_device_is_refused_unread(tmp_path: Path) -> None:
    """``stat`` says /dev/zero holds 0 bytes; reading it would never end."""
    from benchmark.common.safe_yaml import read_yaml

    link = tmp_path / "1.0.0.yaml"
    link.symlink_to("/dev/zero")
    with pytest.raises(SpecError, match="not a regular file; refused"):
        read_yaml(link, SpecError)
