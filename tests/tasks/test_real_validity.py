"""The real clinical tables (issue 18): each task's newest release either shows its failure
with a passing validity record for exactly its pinned data, recomputed here from scratch,
or its card says plainly that no failure was found and it makes no claim."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from baselines.methods import families
from benchmark.scoring.evaluate import evaluate
from benchmark.tasks.registry import BUILTIN_TASKS
from benchmark.tasks.spec import TaskSpec, load_spec, version_key
from benchmark.tasks.task import Task
from benchmark.tasks.validity import NO_FAILURE_FOUND, outcome, read_validity

PACKAGED = ("sksurv", "lifelines")  # tables shipped inside PyPI packages
REAL = [
    p
    for p in sorted(BUILTIN_TASKS.glob("*/*.yaml"))
    if yaml.safe_load(p.read_text(encoding="utf-8"))["source"]["name"] in PACKAGED
]
CLAIMS = [p for p in REAL if load_spec(p).validity is not None]
NO_FAILURE = NO_FAILURE_FOUND


def _newest_releases() -> list[TaskSpec]:
    by_id: dict[str, list[TaskSpec]] = {}
    for p in REAL:
        spec = load_spec(p)
        if spec.released:
            by_id.setdefault(spec.id, []).append(spec)
    return [max(v, key=lambda s: version_key(s.version)) for _, v in sorted(by_id.items())]


def test_the_real_tables_are_here() -> None:
    assert {s.id for s in _newest_releases()} == {
        "actg320-aids-cd4-shift",
        "flchain-mortality-temporal",
        "ncctg-lung-mortality-site",
        "whas500-mortality-subgroups",
    }
    assert CLAIMS, "at least one real table shows a failure"


@pytest.mark.parametrize("spec", _newest_releases(), ids=lambda s: s.id)
def test_newest_release_shows_its_failure_or_says_none_was_found(spec: TaskSpec) -> None:
    path = BUILTIN_TASKS / spec.id / f"{spec.version}.yaml"
    if spec.validity is None:
        assert spec.summary.startswith(NO_FAILURE), spec.ref
        assert spec.failure.startswith("None found"), spec.ref
        assert "no failure found" in spec.title, spec.ref
        return
    assert NO_FAILURE not in spec.summary
    record = read_validity(path)
    assert record is not None, "run benchmarks/release/validity.py"
    assert record.passed and record.claim == spec.validity
    assert record.content_sha256 == spec.manifest_sha256


@pytest.mark.parametrize("path", CLAIMS, ids=lambda p: f"{p.parent.name}@{p.stem}")
def test_validity_record_is_recomputed_exactly(path: Path, tmp_path: Path) -> None:
    """Rebuild (checked against the pin), retrain the claimed baseline on each claimed
    seed and rescore as ``benchmarks/release/validity.py`` does: the same numbers."""
    spec = load_spec(path)
    record = read_validity(path)
    assert spec.released and spec.validity is not None and record is not None
    task = Task.load(spec.ref, build=True, root=tmp_path / "cache")
    assert task.manifest.content_sha256 == spec.manifest_sha256 == record.content_sha256
    claim = spec.validity
    (family,) = families(claim.baseline, task, claim.family)
    assert family.config == record.config
    for seed, stored in zip(claim.seeds, record.seeds, strict=True):
        folder = tmp_path / f"seed-{seed}"
        folder.mkdir()
        model_file = family.fit_and_save(task, seed, folder)
        report = evaluate(
            str(model_file),
            task,
            probes=[claim.probe, "performance"],
            n_boot=record.n_boot,
            level=claim.level,
            seeds={"train": seed},
            interval_method=record.interval_method,
        )
        fresh = outcome(report, claim, seed)
        assert fresh.passed
        for got, want in [
            (fresh.value, stored.value),
            (fresh.ci_low, stored.ci_low),
            (fresh.ci_high, stored.ci_high),
        ]:
            assert got == pytest.approx(want, abs=1e-12)
