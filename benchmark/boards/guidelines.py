"""Guidelines from the entries: per failure kind, which methods beat ERM, by how much, and
plainly where none did (``medfail guidelines`` writes ``docs/guidelines.md``).

Each comparison is a method's entry against the ERM entry of the same model family on the
same task version, paired by training seed (:func:`benchmark.scoring.compare.compare_runs`):
the difference on the task's headline metric is the mean over the paired seeds, its
interval the two-level bootstrap over seeds and patients. A method *helps* where that
interval lies entirely on the good side of 0, *hurts* where it lies on the bad side, and
shows *no clear difference* otherwise. Under shift, the share of ERM's ID - OOD gap the
method closes (performance recovery) is given too.

The headline metric of a task: its failure claim's fairness gap (better = toward the claim's
opposite side), else its claim's performance metric on ``ood_test`` (``ood_minus_id_auroc``
reads AUROC), else AUROC on ``ood_test`` (for a subgroup task without shift: the
equalized odds difference of its first attribute, lower is better). The text is a pure
function of the entries: no dates, a fixed order, so regenerating from the same entries
gives the same bytes.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from benchmark.boards.entries import METADATA_FILE, Board, Entry, board_order, load_board
from benchmark.common.files import atomic_write_text
from benchmark.errors import MedFailError
from benchmark.scoring.compare import Comparison, ReplicateCache, compare_runs
from benchmark.tasks.registry import resolve
from benchmark.tasks.spec import TaskSpec

#: Failure kinds by taxonomy path prefix, in priority order (a task files under its first).
KINDS: list[tuple[str, str]] = [
    ("model/adversarial-brittleness", "Adversarial brittleness"),
    ("model/shortcut", "Shortcut learning"),
    ("data/label-noise", "Label noise"),
    ("data/sensor-drift", "Sensor drift"),
    ("data/modality-dropout", "Modality dropout"),
    ("data/underrepresentation", "Subgroup underrepresentation"),
    ("ethical-social/subgroup-bias", "Subgroup disparity"),
    ("data/distribution-shift/site", "Site and scanner shift"),
    ("data/distribution-shift/scanner", "Site and scanner shift"),
    ("data/distribution-shift/temporal", "Temporal shift"),
    ("data/distribution-shift/population", "Population shift"),
]
LABELS = {
    "auroc": "AUROC",
    "accuracy": "accuracy",
    "auroc_gap": "AUROC gap",
    "tpr_gap": "TPR gap",
    "equalized_odds_difference_max": "equalized odds difference (max of |ΔTPR|, |ΔFPR|)",
}


@dataclass(frozen=True)
class Headline:
    """The metric a task's guideline reads, and which sign of ``method - ERM`` is better."""

    probe: str
    metric: str
    split: str
    attribute: str | None
    group: str | None
    better: int  # +1: a larger value is better; -1: a smaller one

    def label(self) -> str:
        what = LABELS.get(self.metric, self.metric)
        if self.group is not None:
            what += f" ({self.attribute}={self.group} vs reference)"
        elif self.attribute is not None:
            what += f" ({self.attribute})"
        return f"{what}, {self.split}"


def kind_of(spec: TaskSpec) -> str:
    """The failure kind ``spec`` files under (its first taxonomy match in :data:`KINDS`)."""
    for prefix, kind in KINDS:
        if any(t.startswith(prefix) for t in spec.taxonomy):
            return kind
    return "Other failures"


def headline(spec: TaskSpec) -> Headline:
    """The task's headline metric (see the module docstring)."""
    claim = spec.validity
    split = "ood_test" if "ood_test" in spec.splits.present() else "id_test"
    if claim is not None and claim.probe == "fairness":
        better = 1 if claim.direction == "negative" else -1
        return Headline("fairness", claim.metric, claim.split, claim.attribute, claim.group, better)
    if claim is not None and claim.metric.startswith("ood_minus_id_"):
        metric = claim.metric.removeprefix("ood_minus_id_")
        return Headline("performance", metric, claim.split, None, None, 1)
    if split == "id_test" and spec.attributes:
        first = next(iter(spec.attributes))
        return Headline("fairness", "equalized_odds_difference_max", split, first, None, -1)
    return Headline("performance", "auroc", split, None, None, 1)


@dataclass(frozen=True)
class Finding:
    """One method against ERM on one task version and model family."""

    kind: str
    task: str
    modality: str
    family: str
    method: str
    entry: str
    seeds: list[int]
    flags: list[str]
    headline: Headline
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    recovery: tuple[float | None, float | None, float | None] | None
    #: the same paired difference on id_test (the ID cost of a gain under shift)
    clean: tuple[float | None, float | None, float | None] = (None, None, None)
    #: the headline's mean over seeds: (method, ERM)
    values: tuple[float | None, float | None] = (None, None)

    @property
    def overshoots(self) -> bool:
        """A fairness gap that changed sides and grew: "better" by the claim's side, worse
        in size."""
        a, b = self.values
        if self.headline.probe != "fairness" or a is None or b is None:
            return False
        return a * b < 0 and abs(a) > abs(b)

    @property
    def costs_id(self) -> bool:
        """Whether the method is worse than ERM on id_test (interval below 0)."""
        return self.clean[2] is not None and self.clean[2] < 0

    @property
    def verdict(self) -> str:
        if self.diff is None:
            return "undefined"
        if self.ci_low is None or self.ci_high is None:
            return "no interval"
        good_low, good_high = sorted(
            (self.headline.better * self.ci_low, self.headline.better * self.ci_high)
        )
        if good_low > 0:
            return "overshoots" if self.overshoots else "helps"
        if good_high < 0:
            return "hurts"
        return "no clear difference"


def _family(entry: Entry) -> str:
    return entry.metadata.name.removeprefix(f"{entry.metadata.method}-")


def _finding(
    board: Board, spec: TaskSpec, entry: Entry, erm: Entry, head: Headline, cache: ReplicateCache
) -> Finding:
    result: Comparison = compare_runs(
        entry.reports,
        erm.reports,
        names=(entry.metadata.name, erm.metadata.name),
        probes={"performance", head.probe},
        cache=cache,
    )
    key = (head.probe, head.metric, head.split, head.attribute, head.group)
    row = next(
        (
            d
            for d in result.differences
            if (d.probe, d.metric, d.split, d.attribute, d.group) == key
        ),
        None,
    )
    rec = next((r for r in result.recovery if r.metric == head.metric), None)
    id_metric = head.metric if head.probe == "performance" else "auroc"
    clean = next(
        (
            (d.diff, d.ci_low, d.ci_high)
            for d in result.differences
            if (d.probe, d.metric, d.split, d.attribute)
            == ("performance", id_metric, "id_test", None)
        ),
        (None, None, None),
    )
    return Finding(
        kind=kind_of(spec),
        task=board.task,
        modality=spec.modality,
        family=_family(entry),
        method=entry.metadata.method,
        entry=entry.metadata.name,
        seeds=result.seeds,
        flags=sorted(k for k, on in entry.metadata.flags.items() if on),
        headline=head,
        diff=None if row is None else row.diff,
        ci_low=None if row is None else row.ci_low,
        ci_high=None if row is None else row.ci_high,
        recovery=None
        if rec is None or head.probe != "performance"
        else (rec.value, rec.ci_low, rec.ci_high),
        clean=clean if head.split != "id_test" else (None, None, None),
        values=(None, None) if row is None else (row.a, row.b),
    )


def _board_findings(folder: Path) -> list[Finding]:
    """Every method entry of one board against its family's ERM entry (a board of a task
    this installation does not know has no headline to read: none)."""
    board = load_board(folder, check="values")
    try:
        spec = resolve(board.task).spec
    except MedFailError:
        return []
    erm = {_family(e): e for e in board.entries if e.metadata.method == "erm"}
    head = headline(spec)
    cache: ReplicateCache = {}
    out = []
    for entry in sorted(board.entries, key=lambda e: e.metadata.name):
        ref = erm.get(_family(entry))
        if entry.metadata.method == "erm" or ref is None:
            continue
        if not set(entry.reports) & set(ref.reports):
            continue
        out.append(_finding(board, spec, entry, ref, head, cache))
    return out


def findings(
    root: Path, step: Callable[[str], None] | None = None, workers: int = 1
) -> list[Finding]:
    """Every method entry under ``root`` against its family's ERM entry, board by board in
    the boards' order; ``workers`` boards at once in fresh interpreters (each board is
    independent: the result does not depend on ``workers``). ``step`` hears each board."""
    root = Path(root)
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    folders.sort(key=lambda p: board_order(p.name))
    out: list[Finding] = []
    with ExitStack() as stack:
        results: Iterable[list[Finding]] = map(_board_findings, folders)
        if workers > 1 and len(folders) > 1:
            spawn = multiprocessing.get_context("spawn")
            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=spawn))
            results = pool.map(_board_findings, folders)
        for folder, found in zip(folders, results, strict=True):
            out += found
            if step is not None:
                step(f"{folder.name}: {len(found)} comparisons")
    return out


def _num(x: float | None, sign: bool = True) -> str:
    if x is None:
        return "n/a"
    return f"{x:+.3f}" if sign else f"{x:.3f}"


def _interval(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f" [{_num(low)}, {_num(high)}]"


def _row(f: Finding, link: str) -> str:
    rec = "—"
    if f.recovery is not None and f.recovery[0] is not None:
        rec = f"{_num(f.recovery[0])}{_interval(f.recovery[1], f.recovery[2])}"
    flags = ", ".join(f.flags) or "—"
    delta = f"{_num(f.diff)}{_interval(f.ci_low, f.ci_high)}"
    clean = "—" if f.clean[0] is None else f"{_num(f.clean[0])}{_interval(*f.clean[1:])}"
    verdict = f"**{f.verdict}**" + (" (worse on id_test)" if f.costs_id else "")
    verdict += " (1 seed)" if len(f.seeds) == 1 and f.ci_low is not None else ""
    return (
        f"| {f.task} | {f.family} | [{f.method}]({link}) | {len(f.seeds)} | {delta} | "
        f"{rec} | {clean} | {verdict} | {flags} |"
    )


def _summary(found: list[Finding]) -> str:
    """Which methods beat ERM, which were worse, and on which tasks nothing could be said."""
    helped = [f for f in found if f.verdict == "helps"]
    hurt = [f for f in found if f.verdict == "hurts"]
    tasks = sorted({f.task for f in found})
    mute = [t for t in tasks if all(f.ci_low is None for f in found if f.task == t)]
    judged = [t for t in tasks if t not in mute]
    parts = []
    if helped:
        wins = ", ".join(
            f"{f.method} ({f.family}) on {f.task}: {_num(f.diff)}{_interval(f.ci_low, f.ci_high)}"
            + (" but worse on id_test" if f.costs_id else "")
            + (" (1 seed)" if len(f.seeds) == 1 else "")
            for f in helped
        )
        parts.append(f"**Beat ERM** ({len(helped)} of {len(found)} comparisons): {wins}")
    quiet = [t for t in judged if not any(f.task == t for f in helped)]
    if quiet:
        parts.append(f"**No method beat ERM** on {', '.join(quiet)}")
    if hurt:
        worse = sorted({f"{f.method} on {f.task}" for f in hurt})
        parts.append(f"Worse than ERM: {', '.join(worse)}")
    if mute:
        parts.append(
            f"No interval on {', '.join(mute)}: too few patients or events on the headline "
            "split to tell any method from ERM"
        )
    return ". ".join(parts) + "."


def render(found: list[Finding], root: Path, out: Path) -> str:
    """The guidelines as markdown; links are relative to ``out``'s folder."""
    lines = [
        "# Which mitigation helps against which failure",
        "",
        f"Generated by `medfail guidelines` from the entries in `{root.name}/`; do not edit by "
        "hand (regenerating from the same entries gives the same bytes).",
        "",
        "Each row compares a method with ERM of the same model family on the same task "
        "version, paired by training seed: Δ = method − ERM on the task's headline metric "
        "(mean over seeds), with its 95% interval from the two-level bootstrap over seeds and "
        "patients. **helps**: the interval lies on the better side of 0; **hurts**: on the "
        "worse side; otherwise **no clear difference**. Recovery (shift only) = (m_method − "
        "m_ERM on OOD) / (m_ERM on ID − m_ERM on OOD), the share of ERM's gap closed, withheld "
        "where ERM shows no gap. Every method selects its model on the ID val split; flags "
        "mark entries that use more than the training data (extra data, unlabelled target "
        "inputs, group labels at inference, privileged annotations): read them apart. "
        "Δ id_test is the same comparison on the in-distribution test split (AUROC, or the "
        "headline's performance metric): a gain under shift bought with a loss there is "
        "marked. **overshoots**: a fairness gap that moved past zero and grew on the other "
        "side. With one training seed (marked) the interval covers test-set resampling only, "
        "not the spread between training runs: read those verdicts as provisional.",
        "",
    ]
    base = out.parent
    order = {kind: i for i, (_, kind) in enumerate(KINDS)}
    kinds = sorted({f.kind for f in found}, key=lambda k: (order.get(k, len(order)), k))
    if not found:
        lines.append("No entry has an ERM entry of its family to compare with yet.")
    for kind in kinds:
        mine = sorted(
            (f for f in found if f.kind == kind), key=lambda f: (f.task, f.family, f.method)
        )
        lines += [f"## {kind}", "", _summary(mine), ""]
        for task in sorted({f.task for f in mine}):
            rows = [f for f in mine if f.task == task]
            head = rows[0].headline
            better = "higher" if head.better > 0 else "lower"
            lines += [
                f"{task} ({rows[0].modality}): Δ {head.label()}, {better} is better.",
                "",
                "| task | family | method | seeds | Δ [95% CI] | recovery [95% CI] "
                "| Δ id_test [95% CI] | verdict | flags |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for f in rows:
                entry = root / f.task / f.entry / METADATA_FILE  # the entry card
                link = os.path.relpath(entry, base).replace(os.sep, "/")
                lines.append(_row(f, link))
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def write_guidelines(
    root: Path, out: Path, step: Callable[[str], None] | None = None, workers: int = 1
) -> tuple[Path, list[Finding]]:
    """Write the guidelines of ``root``'s entries to ``out`` (atomically), comparing
    ``workers`` boards at once."""
    root, out = Path(root), Path(out)
    found = findings(root, step, workers)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, render(found, root, out))
    return out, found
