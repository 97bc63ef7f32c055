"""Run a task's validity check: train its claimed baseline, score it, record the outcome.

``check(ref)`` builds the task (a draft is rebuilt from its spec), trains the claim's
baseline family on each claimed seed with :func:`baselines.methods.families`, scores it
with :func:`benchmark.scoring.evaluate`, and writes :class:`benchmark.tasks.validity.ValidityRecord`
beside the spec; the build is then refreshed so its card quotes the result. With
``pin=True`` a passing draft is released (:func:`benchmark.tasks.build.pin_task`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from baselines.methods import families
from benchmark.errors import SpecError
from benchmark.scoring.evaluate import evaluate, min_replicates
from benchmark.tasks.build import build_task, pin_task
from benchmark.tasks.registry import resolve
from benchmark.tasks.task import Task
from benchmark.tasks.validity import ValidityRecord, claim_metric, outcome, write_validity
from benchmark.version import __version__


def check(
    ref: str,
    *,
    n_boot: int = 1000,
    root: Path | None = None,
    pin: bool = False,
    step: Callable[[str], None] | None = None,
) -> ValidityRecord:
    """Check ``ref``'s validity claim on its current build; returns the written record."""
    resolved = resolve(ref, root)
    spec, spec_path = resolved.spec, resolved.spec_path
    claim = spec.validity
    if claim is None:
        raise SpecError(f"{spec.ref}: the spec makes no validity claim")
    task = Task.load(spec.ref, build=True, root=root)
    (family,) = families(claim.baseline, task, claim.family)
    _check_claim(task)  # before minutes of training
    seeds = []
    for seed in claim.seeds:
        with tempfile.TemporaryDirectory(prefix="medfail-validity-") as tmp:
            model_file = family.fit_and_save(task, seed, Path(tmp))
            report = evaluate(
                str(model_file),
                task,
                n_boot=n_boot,
                level=claim.level,
                seeds={"train": seed},
                name=f"{claim.baseline}-{family.name}",
            )
        seeds.append(outcome(report, claim, seed))
        if step is not None:
            step(
                f"{spec.ref} seed {seed}: {seeds[-1].value} [{seeds[-1].ci_low}, "
                f"{seeds[-1].ci_high}]"
            )
    record = ValidityRecord(
        task=spec.id,
        version=spec.version,
        content_sha256=task.manifest.content_sha256,
        claim=claim,
        config=family.config,
        n_boot=n_boot,
        interval_method="bca",  # evaluate()'s default, which scored the seeds above
        seeds=seeds,
        medfail_version=__version__,
        created_at=datetime.now(timezone.utc).date().isoformat(),
    )
    write_validity(spec_path, record)
    build_task(spec, spec_path, root=root, force=True)  # the card now quotes the record
    if pin and record.passed and not spec.released:
        pin_task(spec_path, root=root)
    return record


class _Constant:
    """Scores every sample 0.5: enough to list the rows a report has."""

    def __init__(self, n_classes: int) -> None:
        self.n_classes = n_classes

    def predict_proba(self, batch: object) -> np.ndarray:
        return np.full((len(batch), self.n_classes), 1 / self.n_classes)  # type: ignore[arg-type]


def _check_claim(task: Task) -> None:
    """The claim names a metric row the report will have (a typo fails here, not after
    training)."""
    claim = task.spec.validity
    assert claim is not None
    n_boot = min_replicates(0.95)  # the fewest allowed: only the row names matter here
    report = evaluate(
        _Constant(len(task.spec.label.classes)), task, probes=[claim.probe], n_boot=n_boot
    )
    try:
        claim_metric(report, claim)
    except KeyError as e:
        names = sorted({m.metric for p in report.probes for m in p.metrics})
        raise SpecError(
            f"{task.spec.ref}: validity names no report row ({claim.describe()}); "
            f"{claim.probe} metrics: {', '.join(names)}"
        ) from e
