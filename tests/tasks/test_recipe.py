"""The recipe: labels, ids, bins, domains and splits as specs state them, and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.errors import BuildError, SpecError
from benchmark.tasks.build import build_task
from benchmark.tasks.spec import load_spec, spec_from_text
from tests.conftest import TINY_SPEC, make_table, write_tiny_task


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
