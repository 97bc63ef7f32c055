"""Regression tests for problems found by review: each one reproduced first, then fixed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmark.errors import BuildError, HubError, ManifestMismatchError, SpecError
from benchmark.hub import transport as hub
from benchmark.tasks.build import build_task, expected_manifest_path, pin_task
from benchmark.tasks.registry import discover, resolve
from benchmark.tasks.spec import load_spec, spec_from_text
from tests.conftest import TINY_SPEC, make_table, write_tiny_task


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


def test_missing_event_value_is_dropped_not_a_crash(tmp_path: Path) -> None:
    spec_text = TINY_SPEC.format(version="1.0.0", shard_rows=1000).replace(
        '{kind: column, column: y, mapping: {"0": neg, "1": pos}}',
        "{kind: survival_horizon, event: y, time: x1, horizon: 0.0001, unit: days}",
    )
    table = make_table()
    table["x1"] = table["x1"].abs() + 1
    table["y"] = table["y"].astype(object)
    table.loc[3, "y"] = None
    folder = tmp_path / "tasks" / "tiny-task"
    folder.mkdir(parents=True)
    table.to_csv(folder / "data.csv", index=False)
    path = folder / "1.0.0.yaml"
    path.write_text(spec_text.replace("numeric: [x1, x2]", "numeric: [x2]"))
    outcome = build_task(load_spec(path), path)
    total = sum(e.rows for e in outcome.manifest.files.values())
    assert total == len(table) - 1


def test_numeric_looking_ids_stay_distinct(tmp_path: Path) -> None:
    table = make_table()
    table["pid"] = table["pid"].str.replace("p0", "0", regex=False)  # "001", "01"... as text
    table.loc[table["pid"] == "001", "pid"] = "1"
    table.loc[table["pid"] == "002", "pid"] = "01"
    path = write_tiny_task(tmp_path / "tasks", table=table)
    outcome = build_task(load_spec(path), path)
    import pandas as pd

    frames = [pd.read_parquet(outcome.path / n) for n in outcome.manifest.files]
    built = pd.concat(frames)
    assert built["patient_id"].nunique() == table["pid"].nunique()
    assert {"1", "01"} <= set(built["patient_id"])


def test_duplicate_bin_labels_and_leaky_features_are_spec_errors() -> None:
    good = TINY_SPEC.format(version="1.0.0", shard_rows=1000)
    with pytest.raises(SpecError, match="bin labels must be distinct"):
        spec_from_text(
            good.replace(
                "sex: {column: sex, reference: F}",
                "sex: {column: x1, bins: [-10, 0, 10], labels: [a, a], reference: a}",
            )
        )
    with pytest.raises(SpecError, match=r"features \['y'\] are outcome columns"):
        spec_from_text(good.replace("numeric: [x1, x2]", "numeric: [x1, x2, y]"))


def test_domain_values_match_like_the_column(tmp_path: Path) -> None:
    table = make_table()
    table["hospital"] = table["hospital"].map({"A": "1", "B": "2"})
    path = write_tiny_task(tmp_path / "tasks", table=table)
    path.write_text(
        path.read_text()
        .replace("values: [A]", "values: [1.0]")
        .replace("values: [B]", "values: [2]")
    )
    outcome = build_task(load_spec(path), path)
    assert sum(e.rows for e in outcome.manifest.files.values()) == len(table)


def test_empty_split_message_names_the_drops(tmp_path: Path) -> None:
    table = make_table()
    table["y"] = "maybe"
    path = write_tiny_task(tmp_path / "tasks", table=table)
    with pytest.raises(BuildError, match="rows dropped so far"):
        build_task(load_spec(path), path)


def test_rich_markup_in_user_text_is_printed_verbatim(tmp_path: Path, monkeypatch) -> None:
    import subprocess
    import sys

    root = tmp_path / "tasks"
    path = write_tiny_task(root)
    path.write_text(path.read_text().replace("reference: F", 'reference: "[/x]"'))
    monkeypatch.setenv("MEDFAIL_TASKS_PATH", str(root))
    script = Path(sys.executable).parent / "medfail"
    done = subprocess.run(
        [str(script), "tasks", "build", "tiny-task@1.0.0"], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "[/x]" in done.stderr and "Traceback" not in done.stderr


def test_manifest_for_pulled_verify_mismatch_is_manifest_error(tiny: Path) -> None:
    path = build_task(load_spec(tiny), tiny).path
    (path / "manifest.json").unlink()
    with pytest.raises(ManifestMismatchError, match="no manifest"):
        from benchmark.tasks.manifest import verify_dir

        verify_dir(path)
