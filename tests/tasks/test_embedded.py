"""The embedded real task (FLCHAIN from scikit-survival) builds offline, as released."""

from __future__ import annotations

import numpy as np
import pytest
from sksurv.datasets import load_flchain

from benchmark.tasks.build import build_task
from benchmark.tasks.card import SECTIONS
from benchmark.tasks.registry import BUILTIN_TASKS, resolve
from benchmark.tasks.task import Task
from tests.tasks.test_build import files_of

REF = "flchain-mortality-temporal@1.0.0"


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> Task:
    root = tmp_path_factory.mktemp("flchain-cache")
    resolved = resolve(REF)
    build_task(resolved.spec, resolved.spec_path, root=root)
    return Task.load(REF, root=root)


def test_released_and_pinned(task: Task) -> None:
    assert task.spec.released
    assert task.manifest.content_sha256 == task.spec.manifest_sha256
    assert (BUILTIN_TASKS / "flchain-mortality-temporal" / "1.0.0.manifest.json").is_file()


def test_rebuild_is_byte_identical(task: Task, tmp_path) -> None:
    resolved = resolve(REF)
    again = build_task(resolved.spec, resolved.spec_path, root=tmp_path)
    assert files_of(again.path) == files_of(task.path)


def test_label_rule_matches_an_independent_count(task: Task) -> None:
    """Recount the 5-year label straight from scikit-survival's arrays."""
    x, y = load_flchain()
    years = x["sample.yr"].astype(int).to_numpy()
    in_domain = np.isin(years, [1995, 1996, 1998, 1999, 2000, 2001, 2002, 2003])
    died = y["death"] & (y["futime"] <= 1826)
    known = died | (y["futime"] >= 1826)
    total = sum(len(task.frame(s)) for s in task.splits)
    positives = sum(int(task.frame(s)["label"].sum()) for s in task.splits)
    assert total == int((in_domain & known).sum())
    assert positives == int((in_domain & died).sum())
    ood = sum(len(task.frame(s)) for s in ("ood_val", "ood_test"))
    assert ood == int((known & (years >= 1998)).sum())


def test_no_leakage_columns(task: Task) -> None:
    X, _, meta = task.split("train")
    assert "chapter" not in X.columns and "futime" not in X.columns
    assert "sample_yr" not in X.columns
    assert set(meta["group_age_group"]) == {"50-64", "65-74", "75-84", "85+"}
    assert set(meta["group_sex"]) == {"F", "M"}


def test_card_sections_are_all_filled(task: Task) -> None:
    card = task.card
    for section in SECTIONS:
        head = f"## {section}\n\n"
        assert head in card, section
        body = card.split(head, 1)[1].split("\n## ", 1)[0]
        assert body.strip(), f"empty card section {section}"
    assert "doi:10.1016/j.mayocp.2012.03.009" in card
    assert "| train | early | 0.6 |" in card
