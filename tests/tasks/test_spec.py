"""Spec validation: every error names the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from benchmark.errors import SpecError
from benchmark.tasks.registry import BUILTIN_TASKS
from benchmark.tasks.spec import load_spec, spec_from_text
from tests.conftest import TINY_SPEC

GOOD = TINY_SPEC.format(version="1.0.0", shard_rows=1000)


def edited(**changes: object) -> str:
    data = yaml.safe_load(GOOD)
    for dotted, value in changes.items():
        keys = dotted.split("__")
        target = data
        for k in keys[:-1]:
            target = target[k]
        if value is ...:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return yaml.safe_dump(data)


def test_good_spec_loads() -> None:
    spec = spec_from_text(GOOD)
    assert spec.ref == "tiny-task@1.0.0"
    assert not spec.released
    assert spec.group_columns == {"sex": "group_sex"}


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"label": ...}, "label", "Field required"),
        ({"version": "1.0"}, "version", "semantic version"),
        ({"probes": ["performance", "astrology"]}, "probes", "unknown probes ['astrology']"),
        ({"taxonomy": ["data/weather"]}, "taxonomy", "unknown taxonomy path 'data/weather'"),
        ({"label__positive": "neg"}, "label", "must be classes[1]"),
        ({"splits__val__fraction": 0.5}, "splits", "sum to 1.25"),
        ({"splits__ood_test__domain": "home"}, "splits", "must not use train's domain"),
        ({"splits__train__domain": "mars"}, "splits", "not one of the domains"),
        ({"colour": "blue"}, "colour", "Extra inputs are not permitted"),
        ({"modality": "astrology"}, "modality", "Input should be"),
        ({"features__numeric": ["label"]}, "features", "clash with reserved columns"),
        (
            {"attributes__sex__reference": "X", "attributes__sex__mapping": {"F": "f"}},
            "attributes.sex",
            "reference 'X' is not one of the groups",
        ),
        ({"manifest_sha256": "abc"}, "manifest_sha256", "64 lowercase hex"),
        (
            {"changelog": [{"version": "0.9.0", "date": "2026-01-01", "changes": "x"}]},
            "(top level)",
            "no entry for this version",
        ),
        ({"seed": -1}, "seed", "greater than or equal to 0"),
    ],
)
def test_errors_name_the_field(changes: dict, field: str, words: str) -> None:
    with pytest.raises(SpecError) as info:
        spec_from_text(edited(**changes), "tasks/tiny-task/1.0.0.yaml")
    message = str(info.value)
    assert f"tasks/tiny-task/1.0.0.yaml: {field}" in message
    assert words in message


def test_duplicate_yaml_key_is_refused() -> None:
    with pytest.raises(SpecError, match="duplicate key 'seed'"):
        spec_from_text(GOOD + "seed: 8\n", "x.yaml")


def test_non_mapping_is_refused() -> None:
    with pytest.raises(SpecError, match="must be a YAML mapping"):
        spec_from_text("- a\n- b\n", "x.yaml")


def test_file_name_must_match_version(tmp_path: Path) -> None:
    folder = tmp_path / "tiny-task"
    folder.mkdir()
    (folder / "2.0.0.yaml").write_text(GOOD)
    with pytest.raises(SpecError, match="does not match the file name"):
        load_spec(folder / "2.0.0.yaml")


def test_folder_must_match_id(tmp_path: Path) -> None:
    folder = tmp_path / "other-task"
    folder.mkdir()
    (folder / "1.0.0.yaml").write_text(GOOD)
    with pytest.raises(SpecError, match="does not match the folder"):
        load_spec(folder / "1.0.0.yaml")


def test_spec_hash_ignores_comments_and_pin_but_not_meaning() -> None:
    base = spec_from_text(GOOD)
    commented = spec_from_text("# a comment\n" + GOOD + f"manifest_sha256: {'a' * 64}\n")
    assert commented.sha256() == base.sha256()
    assert spec_from_text(edited(seed=8)).sha256() != base.sha256()


def test_every_shipped_spec_validates() -> None:
    paths = sorted(BUILTIN_TASKS.glob("*/*.yaml"))
    assert paths, "no task specs shipped"
    for path in paths:
        load_spec(path)
