"""Views over the failure cases: filters, counts by taxonomy layer and domain, the cases
no task reproduces, and a case rendered as Markdown or JSON (the CLI and the app use them)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import get_close_matches
from typing import get_args

from benchmark.catalogue.cases import Case, Dimension
from benchmark.catalogue.taxonomy import LAYERS, Modality, all_paths
from benchmark.errors import CaseError


def select(
    cases: Iterable[Case],
    *,
    domain: str | None = None,
    layer: str | None = None,
    dimension: str | None = None,
    reproduced: bool | None = None,
) -> list[Case]:
    """The cases matching every filter given (``layer``: a taxonomy layer or path prefix).
    A filter value that no case could ever match is a CaseError with suggestions, not an
    empty answer."""
    _check_filter("domain", domain, get_args(Modality))
    _check_filter("dimension", dimension, get_args(Dimension))
    _check_filter("layer", layer, all_paths())
    out = []
    for c in cases:
        if domain is not None and c.domain != domain:
            continue
        if layer is not None and not any(
            p == layer or p.startswith(layer + "/") for p in c.taxonomy
        ):
            continue
        if dimension is not None and dimension not in c.dimensions:
            continue
        if reproduced is not None and bool(c.reproduced_by) != reproduced:
            continue
        out.append(c)
    return out


def _check_filter(name: str, value: str | None, allowed: Iterable[str]) -> None:
    allowed = list(allowed)
    if value is None or value in allowed:
        return
    near = get_close_matches(value, allowed, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(near)}?" if near else f"one of {', '.join(allowed[:12])}"
    raise CaseError(f"unknown {name} {value!r}; {hint}")


@dataclass(frozen=True)
class Stats:
    """Counts of cases by layer x domain (a case counts once in each layer it touches)."""

    n: int
    by_layer_domain: dict[str, dict[str, int]]
    by_domain: dict[str, int]
    by_dimension: dict[str, int]
    unreproduced: list[Case]


def stats(cases: list[Case]) -> Stats:
    domains = sorted({c.domain for c in cases})
    table = {layer: dict.fromkeys(domains, 0) for layer in LAYERS}
    for c in cases:
        for layer in c.layers:
            table[layer][c.domain] += 1
    return Stats(
        n=len(cases),
        by_layer_domain=table,
        by_domain=dict(sorted(Counter(c.domain for c in cases).items())),
        by_dimension=dict(Counter(d for c in cases for d in c.dimensions).most_common()),
        unreproduced=[c for c in cases if not c.reproduced_by],
    )


def unknown_tasks(cases: list[Case], task_ids: set[str]) -> list[str]:
    """``reproduced_by`` links that name no known task, as messages."""
    return [
        f"case {c.id}: reproduced_by names unknown task {r.task!r}"
        for c in cases
        for r in c.reproduced_by
        if r.task not in task_ids
    ]


def render_case(case: Case) -> str:
    """One case as markdown (``medfail cases show``, the app's case view)."""
    status = "source read by the maintainers" if case.confirmed else "UNCONFIRMED"
    lines = [
        f"# {case.title}",
        f"`{case.id}` · {case.year} · {case.domain} · {case.modality} · {case.clinical_task}",
        f"Taxonomy: {', '.join(f'`{p}`' for p in case.taxonomy)} · dimensions: "
        f"{', '.join(case.dimensions)} · stage: {case.stage} · evidence: {case.evidence} "
        f"({status})",
        "## What failed",
        case.what_failed,
        *(f"- {f}" for f in case.figures),
        "## Root cause",
        case.root_cause,
        "## Mitigation",
        f"Reported: {case.mitigation.reported or 'none reported'}",
    ]
    if case.mitigation.medfail:
        lines.append(f"MedFail's results: {case.mitigation.medfail}")
    lines.append("## Sources")
    lines += [f"- {s.authors}. {s.title}. {s.venue}, {s.year}. {s.link}" for s in case.sources]
    lines += [f"Verification: {case.verification}", "## Reproduced by"]
    lines += [f"- `{r.task}` ({r.closeness}): {r.note}" for r in case.reproduced_by] or [
        "No MedFail task reproduces this case yet."
    ]
    return "\n\n".join(lines)


def case_json(case: Case) -> str:
    """One case as indented JSON (``medfail cases show --json``)."""
    return json.dumps(case.model_dump(mode="json"), indent=2, ensure_ascii=False)
