"""The real clinical tables shipped in PyPI packages (ACTG 320, WHAS500, NCCTG lung), every
released version, build offline as released, and every count in them can be recomputed
straight from the package loaders with pandas: labels, dropped rows, group codings and
domains."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_lung
from sksurv.datasets import load_aids, load_whas500

from benchmark.errors import SpecError
from benchmark.tasks.build import build_task, expected_manifest_path
from benchmark.tasks.manifest import Manifest
from benchmark.tasks.registry import resolve
from benchmark.tasks.sources import SourceContext, get_source
from benchmark.tasks.task import Task


def _sksurv(loader: Callable[[], tuple[pd.DataFrame, np.ndarray]]) -> pd.DataFrame:
    """Features and the structured survival target of a scikit-survival loader, side by side."""
    x, y = loader()
    frame = x.reset_index(drop=True).copy()
    for name in y.dtype.names or ():
        frame[name] = y[name]
    return frame


@dataclass(frozen=True)
class Case:
    """What the package's own loader says about one task, in the package's column names."""

    ref: str
    load: Callable[[], pd.DataFrame]
    event: Callable[[pd.DataFrame], pd.Series]  # True = the event happened
    time: str
    horizon: int
    domain_column: str | None  # None: one domain of all rows
    domains: dict[str, set[float]]
    codings: dict[str, tuple[str, dict[float, str]]]  # attribute -> (raw column, code->group)
    outcome: set[str]  # normalised names that must never be features
    left_out: set[str] = field(default_factory=set)  # normalised names kept out on purpose


CASES = [
    Case(
        ref="actg320-aids-cd4-shift@1.0.0",
        load=lambda: _sksurv(load_aids),
        event=lambda f: f["censor"].astype(bool),
        time="time",
        horizon=180,
        domain_column="strat2",
        domains={"cd4_le50": {0}, "cd4_gt50": {1}},
        codings={
            "sex": ("sex", {1: "male", 2: "female"}),
            "race_ethnicity": (
                "raceth",
                {1: "white", 2: "black", 3: "hispanic", 4: "other", 5: "other"},
            ),
        },
        outcome={"censor", "time"},
        left_out={"strat2", "txgrp", "raceth"},
    ),
    Case(
        ref="whas500-mortality-subgroups@1.0.0",
        load=lambda: _sksurv(load_whas500),
        event=lambda f: f["fstat"].astype(bool),
        time="lenfol",
        horizon=365,
        domain_column=None,
        domains={"all": set()},
        codings={"gender": ("gender", {0: "male", 1: "female"})},
        outcome={"fstat", "lenfol"},
        left_out={"los"},
    ),
    Case(
        ref="ncctg-lung-mortality-site@1.0.0",
        load=load_lung,
        # lifelines ships status 1 = dead, 0 = censored (R's survival::lung: 2 / 1)
        event=lambda f: f["status"] == 1,
        time="time",
        horizon=180,
        domain_column="inst",
        domains={
            "large_sites": {1, 3, 11, 12, 13},
            "small_sites": {2, 4, 5, 6, 7, 10, 15, 16, 21, 22, 26, 32, 33},
        },
        codings={"sex": ("sex", {1: "male", 2: "female"})},
        outcome={"status", "time"},
        left_out={"inst"},
    ),
]
# 1.1.0 (issue 18) changed the cards, not the rows, splits, label or the groups coded here
CASES += [replace(c, ref=c.ref.replace("@1.0.0", "@1.1.0")) for c in CASES]
IDS = [c.ref.replace("@", "-") for c in CASES]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("real-tabular-cache")


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


@pytest.fixture(scope="module")
def built(case: Case, cache: Path) -> tuple[Task, bool]:
    resolved = resolve(case.ref)
    outcome = build_task(resolved.spec, resolved.spec_path, root=cache)  # checks the pin
    return Task.load(case.ref, root=cache), outcome.reused


@pytest.fixture(scope="module")
def task(built: tuple[Task, bool]) -> Task:
    return built[0]


@pytest.fixture(scope="module")
def rows(task: Task) -> pd.DataFrame:
    """Every kept row of every split, with its split and its position in the source table."""
    frames = [task.frame(s).assign(split=s) for s in task.splits]
    out = pd.concat(frames, ignore_index=True)
    return out.assign(position=out["sample_id"].astype(int))


@pytest.fixture(scope="module")
def raw(case: Case) -> pd.DataFrame:
    return case.load()


def expected_labels(case: Case, raw: pd.DataFrame) -> pd.Series:
    """1 / 0 per source row, NA where censored before the horizon: straight pandas."""
    event, time = case.event(raw), raw[case.time].astype(float)
    positive = event & (time <= case.horizon)
    negative = ~positive & (time >= case.horizon)
    return pd.Series(pd.NA, index=raw.index, dtype="Int64").mask(positive, 1).mask(negative, 0)


def in_some_domain(case: Case, raw: pd.DataFrame) -> pd.Series:
    if case.domain_column is None:
        return pd.Series(True, index=raw.index)
    declared = set().union(*case.domains.values())
    return raw[case.domain_column].astype(float).isin(declared)


def test_released_build_reproduces_its_pin(case: Case, built: tuple[Task, bool]) -> None:
    task, reused = built
    assert not reused, "the module cache starts empty, so this must be a fresh build"
    assert task.spec.released
    assert task.manifest.content_sha256 == task.spec.manifest_sha256
    lock = Manifest.read(expected_manifest_path(resolve(case.ref).spec_path))
    assert lock.content_sha256 == task.spec.manifest_sha256
    assert lock.files == task.manifest.files


def test_lifelines_source_keeps_the_table_and_snake_cases_its_columns() -> None:
    source = get_source("lifelines")
    params = source.parse_params({"dataset": "lung"}, "test")
    ctx = SourceContext(spec_dir=Path("."), rng=np.random.default_rng(0))
    data = source.load(params, ctx)
    shipped = load_lung()
    assert list(data.frame.columns) == [c.replace(".", "_") for c in shipped.columns]
    pd.testing.assert_frame_equal(data.frame, shipped.set_axis(data.frame.columns, axis=1))
    assert data.provenance.startswith("lifelines ")
    with pytest.raises(SpecError, match="dataset"):
        source.parse_params({"dataset": "rossi"}, "test")


def test_label_counts_match_an_independent_count(
    case: Case, task: Task, raw: pd.DataFrame, rows: pd.DataFrame
) -> None:
    labels = expected_labels(case, raw)
    kept = labels.notna() & in_some_domain(case, raw)
    positives, negatives = int((labels[kept] == 1).sum()), int((labels[kept] == 0).sum())
    assert (int((rows["label"] == 1).sum()), int((rows["label"] == 0).sum())) == (
        positives,
        negatives,
    )
    assert sorted(rows["position"]) == sorted(raw.index[kept])
    assert rows["position"].is_unique  # no row in two splits
    assert (rows["label"].to_numpy() == labels[rows["position"]].to_numpy()).all()
    dropped = int(labels.isna().sum())
    reason = f"censored before the {case.horizon}-days horizon, or event/time missing"
    row = f"| {reason} | {dropped} |" if dropped else "| (none) | 0 |"
    assert row in task.card


def test_group_codings_follow_the_codebook(
    case: Case, raw: pd.DataFrame, rows: pd.DataFrame
) -> None:
    for attribute, (column, codes) in case.codings.items():
        source = raw.loc[rows["position"], column].astype(float).to_numpy()
        want = [codes[v] for v in source]
        assert rows[f"group_{attribute}"].tolist() == want, attribute
    # women are exactly the rows coded female in the package's own table
    attribute, (column, codes) = next(iter(case.codings.items()))
    female = next(code for code, group in codes.items() if group == "female")
    raw_women = int((raw.loc[rows["position"], column].astype(float) == female).sum())
    assert raw_women > 0
    assert int((rows[f"group_{attribute}"] == "female").sum()) == raw_women


def test_domains_hold_exactly_their_declared_values(
    case: Case, task: Task, raw: pd.DataFrame, rows: pd.DataFrame
) -> None:
    assert set(rows["domain"]) == set(case.domains)
    for name, split in task.spec.splits.present().items():
        assert set(rows.loc[rows["split"] == name, "domain"]) == {split.domain}, name
    if case.domain_column is None:
        return
    for name, values in case.domains.items():
        mine = rows[rows["domain"] == name]
        assert set(raw.loc[mine["position"], case.domain_column].astype(float)) == values, name
    if task.spec.site is not None:
        site = raw.loc[rows["position"], case.domain_column].astype(int).astype(str)
        assert rows["site"].tolist() == site.tolist()


def test_features_exclude_outcome_and_domain_columns(case: Case, task: Task) -> None:
    X, y, _ = task.split("train")
    names = set(X.columns)
    assert names == set(task.spec.features.names)
    assert not names & case.outcome
    assert not names & case.left_out
    assert set(y) == {0, 1}
