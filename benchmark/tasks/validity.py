"""Validity records: evidence that a task's ERM baseline shows the failure it claims.

A spec's ``validity`` claim names one report metric and the side of zero its CI must lie
on (see :class:`benchmark.tasks.spec.ValidityClaim`). ``benchmarks/release/validity.py`` trains the
claimed baseline on the built draft, scores it, and writes the outcome beside the spec as
``tasks/<id>/<version>.validity.json``, tied to the build's content digest. The card
quotes it, and :func:`benchmark.tasks.build.pin_task` refuses to release a task whose claim
has no passing record for the very data being pinned.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from benchmark.common.files import atomic_write_text
from benchmark.common.schema import StrictModel
from benchmark.errors import SpecError
from benchmark.results.report import IntervalMethod, MetricResult, Report
from benchmark.tasks.spec import TaskSpec, ValidityClaim

FORMAT = "medfail-validity/1"
#: How a task's summary opens when its version was checked and showed no failure: a
#: negative result, published as one, never presented as a failure task.
NO_FAILURE_FOUND = "NO FAILURE FOUND"


def shows_no_failure(spec: TaskSpec) -> bool:
    """``spec`` is a negative result (its summary opens with :data:`NO_FAILURE_FOUND`)."""
    return spec.summary.lstrip().startswith(NO_FAILURE_FOUND)


class SeedOutcome(StrictModel):
    seed: int
    value: float | None
    ci_low: float | None
    ci_high: float | None
    passed: bool
    context: list[MetricResult] = []  # e.g. AUROC on id_test and ood_test, per group


class ValidityRecord(StrictModel):
    format: Literal["medfail-validity/1"] = FORMAT
    task: str
    version: str
    content_sha256: str
    claim: ValidityClaim
    config: dict[str, Any] = {}  # the baseline's training recipe (architecture, optimiser)
    n_boot: int
    #: the scorer's interval method when the record was made (records made before issue 26
    #: carry none: percentile); a recomputation uses the same
    interval_method: IntervalMethod = "percentile"
    seeds: list[SeedOutcome]
    medfail_version: str
    created_at: str

    @property
    def passed(self) -> bool:
        """Every seed's CI lies on the claimed side of zero."""
        return all(s.passed for s in self.seeds)


def failure_claim(spec: TaskSpec) -> ValidityClaim | None:
    """The failure ``spec`` is about (its validity claim), None for a negative result."""
    return None if shows_no_failure(spec) else spec.validity


def reference_of(spec: TaskSpec, claim: ValidityClaim) -> str | None:
    """The reference group a gap claim is measured against (None: not a group claim)."""
    return None if claim.attribute is None else spec.attributes[claim.attribute].reference


def validity_path(spec_path: Path) -> Path:
    """``tasks/<id>/<version>.validity.json``."""
    return spec_path.with_name(f"{spec_path.stem}.validity.json")


def claim_metric(report: Report, claim: ValidityClaim) -> MetricResult:
    """The report row the claim is about."""
    return report.metric(
        claim.metric, claim.split, probe=claim.probe, attribute=claim.attribute, group=claim.group
    )


def outcome(report: Report, claim: ValidityClaim, seed: int) -> SeedOutcome:
    """Whether ``report`` shows the claimed failure (CI strictly on the claimed side)."""
    m = claim_metric(report, claim)
    if m.ci_low is None or m.ci_high is None:
        passed = False
    elif claim.direction == "negative":
        passed = m.ci_high < 0
    else:
        passed = m.ci_low > 0
    context = [
        r
        for p in report.probes
        if p.name == "performance"
        for r in p.metrics
        if r.metric == "auroc" and r.split in ("id_test", "ood_test")
    ]
    if claim.attribute is not None:
        context += [
            r
            for r in report.probe("fairness").metrics
            if r.metric in ("auroc", "tpr")
            and r.attribute == claim.attribute
            and r.split == claim.split
            and r.group is not None
        ]
    return SeedOutcome(
        seed=seed,
        value=m.value,
        ci_low=m.ci_low,
        ci_high=m.ci_high,
        passed=passed,
        context=context,
    )


def read_validity(spec_path: Path) -> ValidityRecord | None:
    """The record beside the spec, or None; a malformed record is an error."""
    path = validity_path(spec_path)
    if not path.is_file():
        return None
    try:
        return ValidityRecord.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as e:
        raise SpecError(f"{path}: not a valid validity record: {e}") from e


def write_validity(spec_path: Path, record: ValidityRecord) -> Path:
    path = validity_path(spec_path)
    atomic_write_text(path, json.dumps(record.model_dump(mode="json"), indent=2) + "\n")
    return path


def check_release(spec: TaskSpec, spec_path: Path, digest: str) -> None:
    """Refuse to release a task whose claimed failure is not shown on these exact data."""
    if spec.validity is None:
        return
    record = read_validity(spec_path)
    run = f"run: python benchmarks/release/validity.py {spec.id}@{spec.version}"
    if record is None:
        raise SpecError(f"{spec.ref}: claims a failure but has no validity record; {run}")
    if record.content_sha256 != digest or record.claim != spec.validity:
        raise SpecError(
            f"{spec.ref}: the validity record is for other data or another claim "
            f"(record {record.content_sha256}, build {digest}); {run}"
        )
    if not record.passed:
        raise SpecError(
            f"{spec.ref}: the ERM baseline does not show the claimed failure "
            f"({spec.validity.describe()}); a task that fails to show its failure is not released"
        )


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.3f}"


def render_validity(spec: TaskSpec, record: ValidityRecord | None, digest: str) -> str:
    """The card's Validity section."""
    claim = spec.validity
    if claim is None:
        return (
            "This task makes no machine-checked validity claim; the failure above is "
            "documented from its sources."
        )
    head = (
        f"Claim: an `{claim.baseline}` baseline (`{claim.family}`, seeds {claim.seeds}) shows "
        f"the failure: {claim.describe()}."
    )
    if record is None:
        return head + "\n\nNot yet checked: no validity record beside the spec."
    if record.content_sha256 != digest:
        return head + "\n\nThe validity record is for another build; re-run the check."
    rows = []
    for s in record.seeds:
        ctx = "; ".join(
            f"{m.metric} {m.split}{'/' + m.group if m.group else ''} {m.value:.3f}"
            for m in s.context
            if m.value is not None
        )
        ci = f"[{_fmt(s.ci_low)}, {_fmt(s.ci_high)}]"
        rows.append(
            f"| {s.seed} | {_fmt(s.value)} | {ci} | {'yes' if s.passed else 'no'} | {ctx} |"
        )
    verdict = "shown" if record.passed else "NOT shown"
    recipe = ", ".join(f"{k} {v}" for k, v in record.config.items()) or "the family's defaults"
    return "\n".join(
        [
            head,
            "",
            f"Recipe: {recipe}; selected on `val` cross-entropy, no test split used.",
            "",
            f"Result ({record.n_boot} bootstrap replicates, medfail {record.medfail_version}, "
            f"{record.created_at}): the failure is **{verdict}**.",
            "",
            "| seed | value | CI | passed | context |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "Reproduce: `python benchmarks/release/validity.py " + spec.ref + "`.",
        ]
    )
