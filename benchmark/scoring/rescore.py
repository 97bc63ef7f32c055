"""Recompute a stored report's numbers from its stored predictions: nothing is trusted as typed.

A report saved with ``predictions.parquet`` carries every per-sample probability behind its
numbers. :func:`recheck` re-derives the frozen threshold from the ``val`` rows by the
report's rule, re-runs every probe that needs only predictions (:data:`RECOMPUTABLE`) with
the report's probe configs, bootstrap seed and level, and compares each stored number with
its recomputed twin (same probe, metric, split, attribute and group).

- ``full=False`` compares point values only. A point value does not depend on the
  bootstrap, so no replicate is drawn: this is what the leaderboard runs on every load.
- ``full=True`` re-runs the bootstrap with the report's own ``n_boot`` and compares the
  interval bounds too, and, when ``task`` is given, checks that the predictions' sample ids
  and true labels are the task build's.

Numbers of probes that re-run the model (corruption, adversarial) are range-checked when
the report is read (:class:`~benchmark.results.report.MetricResult`); the adversarial
probe's robust metrics are also recomputed, from the worst-case scores it keeps with the
predictions (:mod:`~benchmark.scoring.probes.adversarial_scores`), and the explanation
probe's from the per-image scores it stored (``examples.parquet``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from benchmark.errors import MedFailError, one_line
from benchmark.results.report import MetricResult, ProbeResult, Report
from benchmark.scoring.predictions import SplitPredictions, check_proba, from_frame
from benchmark.scoring.probes import PROBES, ScoringContext
from benchmark.scoring.probes.adversarial_scores import EPS_METRICS, replay_robust
from benchmark.stats.metrics import choose_threshold
from benchmark.tasks.spec import TaskSpec

if TYPE_CHECKING:
    from benchmark.tasks.task import Task

#: Probes whose every number follows from the predictions file (and, for the explanation
#: probe, the examples file of its per-image map scores) alone.
RECOMPUTABLE = ("performance", "calibration", "fairness", "shift", "explanation")
#: Stored and recomputed numbers agree when ``|a - b| <= ATOL + RTOL * |b|`` (float rounding
#: across CPUs; the same machine reproduces them bit for bit).
RTOL, ATOL = 1e-9, 1e-12

Key = tuple[str, str, str, str | None, str | None]


def _key(m: MetricResult) -> Key:
    return m.probe, m.metric, m.split, m.attribute, m.group


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= ATOL + RTOL * abs(b)


def recheck(
    report: Report, spec: TaskSpec, *, full: bool = False, task: Task | None = None
) -> list[str]:
    """What in ``report`` its stored predictions contradict (empty: every recomputable
    number agrees). A report saved without predictions has nothing to recompute."""
    frame = report.predictions
    if frame is None:
        return []
    if spec.sha256() != report.task.spec_sha256:
        return [f"scored under other spec content than {spec.ref}'s; cannot recompute"]
    classes = list(report.task.classes)
    try:
        preds = from_frame(frame, classes)
        for split, p in preds.items():
            check_proba(p.proba, p.sample_id, len(classes), f"predictions of split {split}")
    except (KeyError, ValueError, MedFailError) as e:
        return [f"its predictions file is unusable: {one_line(e)}"]
    problems = _structure_problems(report, preds, spec)
    if problems:  # numbers from a file of the wrong shape are not worth recomputing
        return problems
    problems = _build_problems(preds, task) if full and task is not None else []
    if "val" not in preds:
        return [*problems, "its predictions have no val rows to re-derive the threshold from"]
    ctx = replay_context(report, spec, preds, n_boot=report.bootstrap.n_boot if full else 0)
    if not _close(report.threshold.value, ctx.threshold):
        problems.append(
            f"threshold {report.threshold.value!r} stored, {ctx.threshold!r} recomputed from val"
        )
    return problems + _compare(report, ctx, preds, full)


def replay_context(
    report: Report, spec: TaskSpec, preds: dict[str, SplitPredictions], *, n_boot: int
) -> ScoringContext:
    """The scoring context ``report`` was scored in, rebuilt from its predictions: the
    threshold re-derived from the ``val`` rows by the report's rule, its bootstrap seed and
    level, and ``n_boot`` replicates (0: point values only)."""
    threshold = choose_threshold(
        report.threshold.rule,
        preds["val"].y,
        preds["val"].score,
        specificity=spec.threshold.specificity,
        value=spec.threshold.value,
    )
    tests = tuple(s for s in ("id_test", "ood_test") if s in preds)
    return ScoringContext(
        spec,
        None,  # type: ignore[arg-type]  # these probes read predictions, never the model
        {s: preds[s] for s in ("val", *tests)},  # not the pseudo-splits of derived scores
        tests,
        threshold,
        n_boot=n_boot,
        level=report.bootstrap.level,
        seed=report.bootstrap.seed,
        interval_method=report.bootstrap.method,
        examples={p.name: p.examples for p in report.probes if p.examples is not None},
    )


def rerun(stored: ProbeResult, ctx: ScoringContext) -> ProbeResult:
    """A recomputable probe run again with its stored config (TypeError: a config the
    probe does not take)."""
    return PROBES[stored.name](**stored.config).run(ctx)


def _compare(
    report: Report, ctx: ScoringContext, preds: dict[str, SplitPredictions], full: bool
) -> list[str]:
    problems = []
    for stored in report.probes:
        if stored.name == "adversarial":
            problems += _robust_problems(stored, ctx, preds, full)
        if stored.name not in RECOMPUTABLE:
            continue
        try:
            fresh = rerun(stored, ctx).metrics
        except TypeError as e:
            problems.append(f"{stored.name} probe config cannot be re-run: {one_line(e)}")
            continue
        except MedFailError as e:
            problems.append(f"{stored.name} probe cannot be recomputed: {one_line(e)}")
            continue
        problems += _differences(stored.metrics, fresh, full)
    return problems


def _robust_problems(
    stored: ProbeResult, ctx: ScoringContext, preds: dict[str, SplitPredictions], full: bool
) -> list[str]:
    """The adversarial probe's robust metrics against those recomputed from the kept
    worst-case scores (its per-attack accuracy rows are range-checked only)."""
    try:
        fresh = replay_robust(stored, ctx, preds)
    except (KeyError, ValueError) as e:
        return [f"adversarial probe: its worst-case scores are missing or unusable ({e})"]
    return _differences([m for m in stored.metrics if m.metric in EPS_METRICS], fresh, full)


def _differences(
    stored: list[MetricResult], recomputed: list[MetricResult], full: bool
) -> list[str]:
    """Each stored number that differs from, or lacks, its recomputed twin, and each
    recomputed number the report lacks."""
    fresh = {_key(m): m for m in recomputed}
    problems = []
    fields = ("value", "ci_low", "ci_high") if full else ("value",)
    for m in stored:
        twin = fresh.pop(_key(m), None)
        if twin is None:
            problems.append(f"{_name(m)}: stored but not produced by the predictions")
        elif not all(_close(getattr(m, f), getattr(twin, f)) for f in fields):
            problems.append(
                f"{_name(m)}: stored {_triple(m, full)}, recomputed {_triple(twin, full)}"
            )
    return problems + [f"{_name(m)}: missing from the stored report" for m in fresh.values()]


def _structure_problems(report: Report, preds: dict, spec: TaskSpec) -> list[str]:
    """What no honest predictions file does, whatever the data: a split the task does not
    have, a sample twice in one split, a split whose row count differs from the report's,
    or scores under attack of samples that are not in their split."""
    present = set(spec.splits.present())
    extra = sorted(set(report.splits) - present)
    if extra:
        return [f"its report scores splits the task does not have: {extra}"]
    problems = []
    for split, p in preds.items():
        base = split.split("@", 1)[0]
        if base not in present:
            problems.append(f"its predictions hold split {split!r}, which the task does not have")
        elif len(set(p.sample_id)) != len(p.sample_id):
            problems.append(f"split {split}: a sample appears more than once")
        elif split == base and len(p.sample_id) != report.splits.get(split, -1):
            said = report.splits.get(split)
            problems.append(f"split {split}: {len(p.sample_id)} rows, the report says {said}")
        elif split != base and base in preds and not set(p.sample_id) <= set(preds[base].sample_id):
            problems.append(f"split {split}: samples that are not in {base}")
    return problems


def _build_problems(preds: dict, task: Task) -> list[str]:
    """Sample ids, labels, patients, sites and group attributes against the task build."""
    problems = []
    for split, p in preds.items():
        if split not in task.splits:
            continue
        frame = task.frame(split).set_index("sample_id")
        frame.index = frame.index.astype(str)
        if set(p.sample_id) != set(frame.index):
            problems.append(f"split {split}: its sample ids are not the task build's")
            continue
        truth = frame.loc[p.sample_id]
        checks = {
            "true labels": (p.y, truth["label"].to_numpy()),
            "patient ids": (p.patient_id, truth["patient_id"].astype(str).to_numpy()),
        }
        if "site" in truth.columns and p.site is not None:
            checks["sites"] = (p.site, truth["site"].astype(str).to_numpy())
        for name, column in task.spec.group_columns.items():
            if name in p.groups and column in truth.columns:
                checks[f"{name} groups"] = (p.groups[name], truth[column].astype(str).to_numpy())
        problems += [
            f"split {split}: its {what} are not the task build's"
            for what, (got, want) in checks.items()
            if not np.array_equal(np.asarray(got).astype(str), np.asarray(want).astype(str))
        ]
    return problems


def _name(m: MetricResult) -> str:
    where = "/".join(x for x in (m.attribute, m.group) if x is not None)
    return f"{m.probe}.{m.metric} on {m.split}" + (f" ({where})" if where else "")


def _triple(m: MetricResult, full: bool) -> str:
    return str((m.value, m.ci_low, m.ci_high)) if full else repr(m.value)
