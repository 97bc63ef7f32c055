"""Shared fixtures: an isolated cache, and a tiny task (CSV + YAML) the tests write."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.tasks.cache import ENV_CACHE
from benchmark.tasks.registry import ENV_TASKS_PATH
from benchmark.tasks.task import Task

TINY_SPEC = """\
id: tiny-task
version: {version}
title: Tiny task
summary: A small table made by the tests.
failure: Site shift on a made-up table.
modality: clinical-decision-support
taxonomy: [data/distribution-shift/site]
source:
  name: local_table
  params: {{path: data.csv}}
seed: 7
label:
  name: outcome
  description: Outcome flag.
  classes: [neg, pos]
  positive: pos
  rule: {{kind: column, column: y, mapping: {{"0": neg, "1": pos}}}}
features:
  numeric: [x1, x2]
  categorical: [sex]
attributes:
  sex: {{column: sex, reference: F}}
sample_id: sid
patient_id: pid
site: hospital
splits:
  domains:
    home: {{column: hospital, values: [A]}}
    away: {{column: hospital, values: [B]}}
  train: {{domain: home, fraction: 0.5}}
  val: {{domain: home, fraction: 0.25}}
  id_test: {{domain: home, fraction: 0.25}}
  ood_test: {{domain: away, fraction: 1.0}}
probes: [performance, fairness]
shard_rows: {shard_rows}
license: {{data: CC0-1.0}}
citations: [{{text: Made by the MedFail tests.}}]
changelog:
  - {{version: {version}, date: 2026-11-23, changes: First.}}
"""


def make_table(n_patients: int = 40, seed: int = 0) -> pd.DataFrame:
    """Patients with 1-3 rows each, two hospitals, a sex attribute and a binary label."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        hospital = "A" if p < n_patients * 0.7 else "B"
        sex = "F" if p % 2 else "M"
        for r in range(1 + p % 3):
            rows.append(
                {
                    "sid": f"s{p:03d}-{r}",
                    "pid": f"p{p:03d}",
                    "hospital": hospital,
                    "sex": sex,
                    "x1": float(np.round(rng.normal(), 6)),
                    "x2": float(np.round(rng.normal(), 6)),
                    "y": int(rng.random() < 0.4),
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own cache; HF libraries stay offline and out of ~/.cache."""
    base = tmp_path_factory.mktemp("env")
    monkeypatch.setenv(ENV_CACHE, str(base / "cache"))
    monkeypatch.setenv("HF_HOME", str(base / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(base / "hf-datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.delenv(ENV_TASKS_PATH, raising=False)
    monkeypatch.setenv("MEDFAIL_OFFLINE", "1")  # no test downloads; download tests serve locally
    monkeypatch.delenv("MEDMNIST_ROOT", raising=False)
    monkeypatch.setattr("benchmark.tasks.sources.medmnist.MEDMNIST_HOME", base / "medmnist-home")


def write_tiny_task(
    root: Path, *, version: str = "1.0.0", shard_rows: int = 1000, table: pd.DataFrame | None = None
) -> Path:
    folder = root / "tiny-task"
    folder.mkdir(parents=True, exist_ok=True)
    (table if table is not None else make_table()).to_csv(folder / "data.csv", index=False)
    path = folder / f"{version}.yaml"
    path.write_text(textwrap.dedent(TINY_SPEC.format(version=version, shard_rows=shard_rows)))
    return path


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny task in its own task root (on MEDFAIL_TASKS_PATH); returns the spec path."""
    root = tmp_path / "tasks"
    path = write_tiny_task(root)
    monkeypatch.setenv(ENV_TASKS_PATH, str(root))
    return path


@pytest.fixture(scope="module")
def tiny_task(tmp_path_factory: pytest.TempPathFactory) -> Task:
    """The tiny task, built once per test module (a loaded Task reads only its own folder)."""
    root = tmp_path_factory.mktemp("tiny-tasks")
    write_tiny_task(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_CACHE, str(tmp_path_factory.mktemp("tiny-cache")))
        mp.setenv(ENV_TASKS_PATH, str(root))
        return Task.load("tiny-task", build=True)
