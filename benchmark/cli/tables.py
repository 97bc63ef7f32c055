"""Terminal views (rich tables) of reports, comparisons, leaderboards and cases.

Every table is built from the typed object alone, so what the terminal shows is what the
JSON holds. Tables are designed for an 80-column terminal: metrics carry short labels
(:func:`benchmark.common.conventions.short_label`) with a legend under the table, a value
and its interval share one cell on one line (``0.813 [0.766, 0.853]``), and cells that
would not fit (per-severity corruption errors, seed spreads on a board) show point values,
with the intervals a ``--json`` away.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from rich import box
from rich.table import Table
from rich.text import Text

from benchmark.boards.entries import HEADLINES, Board, board_table, headline_split
from benchmark.catalogue.browse import Stats
from benchmark.catalogue.cases import Case
from benchmark.common.conventions import (
    APPROXIMATE_CI,
    APPROXIMATE_MARK,
    APPROXIMATE_NOTE,
    legend,
    short_label,
)
from benchmark.results.report import MetricResult, Report
from benchmark.scoring.compare import Comparison
from benchmark.scoring.explanation_stability import Stability
from benchmark.tasks.spec import ValidityClaim
from benchmark.tasks.validity import claim_metric, outcome

#: The mark of a value shown without its interval, and what it means.
NO_CI = "†"
NO_CI_NOTE = (
    f"{NO_CI} no CI: withheld for too little support (docs/intervals.md) or too many "
    "undefined replicates; each reason: --json"
)

#: What a bootstrap resamples, as titles say it.
UNITS = {"patient": "patients", "row": "rows (the task has no patient id)"}

#: The shift probe's headline column in the report table.
SHIFT_PREFIX = "shift_robustness_"


def new_table(title: str) -> Table:
    """A borderless table that spends its width on cells, not on rules. Text from files
    (model, attribute and group names) is never read as rich markup: titles, captions and
    such cells are :class:`Text`."""
    return Table(
        title=Text(title),
        title_justify="left",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )


def _fix(x: float, digits: int = 3, sign: str = "") -> str:
    """``x`` to ``digits`` places; a value that rounds to zero prints unsigned (no
    ``-0.000``), or as ``+0.000`` with ``sign="+"``."""
    text = f"{x:{sign}.{digits}f}"
    return f"{0.0:{sign}.{digits}f}" if float(text) == 0 else text


def _signed(x: float | None) -> str:
    return "n/a" if x is None else _fix(x, sign="+")


def _num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else _fix(x, digits)


def _cell(m: MetricResult | None, digits: int = 3) -> str:
    """``value [low, high]`` on one line; ``n/a`` (the reason is listed under the table)."""
    if m is None:
        return "-"
    if m.value is None:
        return "n/a"
    if m.ci_low is None:
        return f"{_fix(m.value, digits)} {NO_CI}"
    return f"{_fix(m.value, digits)} [{_num(m.ci_low, digits)}, {_num(m.ci_high, digits)}]"


def _get(
    report: Report, probe: str, metric: str, split: str, **keys: str | None
) -> MetricResult | None:
    try:
        return report.metric(metric, split, probe=probe, **keys)
    except KeyError:
        return None


def _label(metric: str) -> str:
    """The short label, marked when the metric's interval is approximate."""
    return short_label(metric) + (APPROXIMATE_MARK if metric in APPROXIMATE_CI else "")


def _interval_notes(shown: list[tuple[str, float | None, float | None]]) -> list[str]:
    """The notes a table of ``(metric, value, ci_low)`` cells needs: a value shown without
    its interval, and an approximate interval."""
    notes = []
    if any(value is not None and low is None for _, value, low in shown):
        notes.append(NO_CI_NOTE)
    if any(low is not None and metric in APPROXIMATE_CI for metric, _, low in shown):
        notes.append(APPROXIMATE_NOTE)
    return notes


def _reasons(rows: list[MetricResult | None]) -> list[str]:
    """One line per shown n/a cell: what it is and why; one line if any CI is missing."""
    out = _interval_notes([(m.metric, m.value, m.ci_low) for m in rows if m is not None])
    for m in rows:
        if m is not None and m.value is None:
            where = "/".join(x for x in (m.attribute, m.group) if x)
            label = short_label(m.metric) + (f" ({where})" if where else "")
            out.append(f"n/a: {label} on {m.split}: {m.reason or 'undefined'}")
    return list(dict.fromkeys(out))


def _caption(metrics: list[str], reasons: list[str], extra: str = "") -> Text | None:
    lines = [x for x in (legend(metrics), extra, *reasons) if x]
    return Text("\n".join(lines)) if lines else None


def report_tables(report: Report) -> list[Table]:
    """Performance and calibration per test split with the shift drop beside them, then
    fairness per attribute, group sizes, corruptions and adversarial robustness."""
    splits = [s for s in report.splits if s != "val"]
    level = f"{100 * report.bootstrap.level:g}% CI"
    title = (
        f"{report.model.name} on {report.task.ref}: value [{level}], "
        f"{report.bootstrap.n_boot} resamples of {UNITS[report.bootstrap.unit]}; threshold "
        f"{report.threshold.value:.4g} frozen on val ({report.threshold.rule})"
    )
    has_shift = any(p.name == "shift" for p in report.probes)
    main = new_table(title)
    main.add_column("metric", no_wrap=True)
    for s in splits:
        main.add_column(s, no_wrap=True)
    if has_shift:
        main.add_column("drop ID→OOD", no_wrap=True)
    shown: list[MetricResult | None] = []
    names: list[str] = []
    for probe in ("performance", "calibration"):
        if not any(p.name == probe for p in report.probes):
            continue
        metrics = dict.fromkeys(
            m.metric for m in report.probe(probe).metrics if m.attribute is None
        )
        for i, metric in enumerate(metrics):
            cells = [_get(report, probe, metric, s) for s in splits]
            if has_shift:
                cells.append(_get(report, "shift", SHIFT_PREFIX + metric, "ood_test"))
            shown += cells
            names.append(metric)
            main.add_row(
                Text(_label(metric)), *map(_cell, cells), end_section=i == len(metrics) - 1
            )
    drop = "drop = (m_ID - m_OOD) / m_ID, positive is worse" if has_shift else ""
    main.caption = _caption(names, _reasons(shown), drop)
    tables = [main]
    if any(p.name == "fairness" for p in report.probes):
        tables += fairness_tables(report, splits)
    if any(p.name == "corruption" and p.metrics for p in report.probes):
        tables.append(corruption_table(report))
    if any(p.name == "adversarial" and p.metrics for p in report.probes):
        tables.append(adversarial_table(report))
    if any(p.name == "shift_diagnostics" and p.metrics for p in report.probes):
        tables.append(shift_diagnostics_table(report, splits))
    if any(p.name == "explanation" and p.metrics for p in report.probes):
        shap = any(m.metric == "shap_importance" for m in report.probe("explanation").metrics)
        tables.append((shap_table if shap else explanation_table)(report, splits))
    if not names and len(tables) > 1:  # no performance or calibration rows: say so once
        tables[1].title = f"{title}\n{tables[1].title}"
        tables = tables[1:]
    return tables


#: Rows of the explanation table per attribution method, then the method-free rows.
EXPLANATION_ROWS = [
    "saliency_dice",
    "pointing_game",
    "relevance_mass",
    "pixel_auroc",
    "saliency_dice_of_ceiling",
    "shortcut_mass",
    "counterfactual_peak_moved",
    "trust_rank_correlation",
]
SHARED_ROWS = [
    "rater_saliency_dice",
    "rater_pointing_game",
    "rater_kappa",
    "counterfactual_delta_p",
]
METHOD_LABELS = {"gradcam": "Grad-CAM", "integrated_gradients": "IG", "occlusion": "occlusion"}


#: Features shown in the SHAP table (the rest: --json).
SHAP_ROWS = 10
COUNTERFACTUAL_ROWS = [
    "counterfactual_found",
    "counterfactual_validity",
    "counterfactual_proximity",
    "counterfactual_sparsity",
]


def shap_table(report: Report, splits: list[str]) -> Table:
    """Tabular explanation: mean |SHAP| per feature (largest first), then the
    counterfactuals of false negatives and the features they change most often."""
    probe = report.probe("explanation")
    measured = probe.config.get("measured") or {}
    t = new_table("Explanation: mean |SHAP| per feature, counterfactuals of false negatives")
    t.add_column("", no_wrap=True)
    t.add_column("feature / metric", no_wrap=True)
    for split in splits:
        t.add_column(split, no_wrap=True)

    def mean_over_splits(metric: str, feature: str) -> float:
        values = [_get(report, "explanation", metric, sp, attribute=feature) for sp in splits]
        found = [m.value for m in values if m is not None and m.value is not None]
        return float(np.mean(found)) if found else -math.inf

    shown: list[MetricResult | None] = []
    sections = [("|SHAP|", "shap_importance"), ("CF changes", "counterfactual_changed")]
    for label, metric in sections:
        features = sorted(
            {m.attribute for m in probe.metrics if m.metric == metric and m.attribute},
            key=lambda f: -mean_over_splits(metric, f),
        )[:SHAP_ROWS]
        for i, feature in enumerate(features):
            cells = [_get(report, "explanation", metric, sp, attribute=feature) for sp in splits]
            shown += cells
            last = i == len(features) - 1
            t.add_row(label if i == 0 else "", Text(feature), *map(_cell, cells), end_section=last)
        if metric == "shap_importance":
            for i, row in enumerate(COUNTERFACTUAL_ROWS):
                cells = [_get(report, "explanation", row, sp) for sp in splits]
                if not any(cells):
                    continue
                shown += cells
                t.add_row("DiCE" if i == 0 else "", Text(_label(row)), *map(_cell, cells))
    how = "; ".join(f"{k}: {v}" for k, v in measured.get("methods", {}).items())
    frozen = ", ".join(measured.get("immutable", [])) or "none"
    extra = f"{how}\nnever changed by a counterfactual: {frozen}; every feature: --json"
    t.caption = _caption(COUNTERFACTUAL_ROWS, _reasons(shown), extra)
    return t


def explanation_table(report: Report, splits: list[str]) -> Table:
    """Alignment per attribution method (rows) and split (columns), the human ceiling and
    the counterfactual change in p; the sanity verdicts in the caption."""
    probe = report.probe("explanation")
    measured = probe.config.get("measured") or {}
    explained = measured.get("explained", {})
    sizes = ", ".join(f"{s} {n}" for s, n in explained.items())
    table = new_table(f"Explanation alignment (images explained: {sizes}): value [CI]")
    table.add_column("maps", no_wrap=True)
    table.add_column("metric", no_wrap=True)
    for s in splits:
        table.add_column(s, no_wrap=True)
    methods = list(
        dict.fromkeys(m.attribute for m in probe.metrics if m.attribute and "/" not in m.attribute)
    )
    groups = [(METHOD_LABELS.get(m, m), m, EXPLANATION_ROWS) for m in methods]
    groups.append(("raters", None, SHARED_ROWS[:3]))
    groups.append(("model", None, SHARED_ROWS[3:]))
    shown: list[MetricResult | None] = []
    names: list[str] = []
    for label, attribute, rows in groups:
        present = [
            r
            for r in rows
            if any(_get(report, "explanation", r, s, attribute=attribute) for s in splits)
        ]
        for i, metric in enumerate(present):
            cells = [_get(report, "explanation", metric, s, attribute=attribute) for s in splits]
            shown += cells
            names.append(metric)
            table.add_row(
                label if i == 0 else "",
                Text(_label(metric)),
                *map(_cell, cells),
                end_section=i == len(present) - 1,
            )
    verdicts = [
        f"{METHOD_LABELS.get(m, m)} "
        + ("passed" if c.get("passed") else "not run" if c.get("passed") is None else "FAILED")
        for m, c in measured.get("sanity", {}).items()
    ]
    extra = "sanity check: " + ", ".join(verdicts) if verdicts else ""
    extra += "\nper group and site, the Dice-vs-k curve, sanity steps: --json"
    table.caption = _caption(list(dict.fromkeys(names)), _reasons(shown), extra)
    return table


def fairness_tables(report: Report, splits: list[str]) -> list[Table]:
    """Attribute summaries per split, then the size of every group."""
    probe = report.probe("fairness")
    fair = new_table("Fairness per attribute: value [CI]")
    fair.add_column("attribute", no_wrap=True)
    fair.add_column("metric", no_wrap=True)
    for s in splits:
        fair.add_column(s, no_wrap=True)
    summary = [m for m in probe.metrics if m.group is None]
    shown: list[MetricResult | None] = []
    pairs = list(dict.fromkeys((m.attribute, m.metric) for m in summary))
    for i, (attr, metric) in enumerate(pairs):
        cells = [_get(report, "fairness", metric, s, attribute=attr) for s in splits]
        shown += cells
        last = i == len(pairs) - 1 or pairs[i + 1][0] != attr
        fair.add_row(Text(str(attr)), Text(_label(metric)), *map(_cell, cells), end_section=last)
    fair.caption = _caption([m for _, m in pairs], _reasons(shown))
    sizes = new_table("Group sizes (samples)")
    sizes.add_column("attribute", no_wrap=True)
    sizes.add_column("group", no_wrap=True)
    for s in splits:
        sizes.add_column(s, justify="right", no_wrap=True)
    counts: dict[tuple[str, str], dict[str, str]] = {}
    for m in probe.metrics:
        if m.group is not None and m.attribute is not None and m.metric == "accuracy":
            counts.setdefault((m.attribute, m.group), {})[m.split] = str(m.n)
    for (attr, group), by_split in counts.items():
        sizes.add_row(Text(attr), Text(group), *(by_split.get(s, "0") for s in splits))
    return [fair, sizes]


def adversarial_table(report: Report) -> Table:
    """Worst case over the attacks per eps (L-inf rows, then L2), and the masking badge."""
    probe = report.probe("adversarial")
    split = probe.config.get("split", "")
    badge = probe.config.get("gradient_masking") or []
    table = new_table(
        f"Adversarial ({', '.join(probe.config.get('attacks', []))}; "
        f"{probe.config.get('norm')}, {probe.config.get('goal')}) on {split} "
        f"({probe.config.get('n_used')} samples): worst case over attacks, value [CI]"
    )
    metrics = ["robust_accuracy", "robust_auroc", "robust_sensitivity", "attack_success_rate"]
    table.add_column("eps", no_wrap=True)
    table.add_column("metric", no_wrap=True)
    table.add_column("value [CI]", no_wrap=True)
    shown: list[MetricResult | None] = []
    for norm in (None, "L2"):  # L-inf rows have no attribute
        for group in dict.fromkeys(m.group for m in probe.metrics if m.attribute == norm):
            assert group is not None
            label = f"{float(group) * 255:.3g}/255" if norm is None else f"L2 {float(group):.3g}"
            for i, m in enumerate(metrics):
                cell = _get(report, "adversarial", m, split, attribute=norm, group=group)
                shown.append(cell)
                last = i == len(metrics) - 1
                table.add_row(
                    label if i == 0 else "", short_label(m), _cell(cell), end_section=last
                )
    verdict = (
        "GRADIENT MASKING suspected: " + "; ".join(badge)
        if badge
        else "no sign of gradient masking"
    )
    table.caption = _caption(metrics, _reasons(shown), verdict)
    return table


def shift_diagnostics_table(report: Report, splits: list[str]) -> Table:
    """Each shift statistic (rows) between the reference sample and each test split
    (columns); what the representation was in the title."""
    probe = report.probe("shift_diagnostics")
    table = new_table(
        f"Shift diagnostics against {probe.config.get('reference')} on "
        f"{probe.config.get('representation')}: value [CI]"
    )
    table.add_column("statistic", no_wrap=True)
    shown_splits = [s for s in splits if any(m.split == s for m in probe.metrics)]
    for s in shown_splits:
        table.add_column(s, no_wrap=True)
    metrics = list(dict.fromkeys(m.metric for m in probe.metrics))
    shown: list[MetricResult | None] = []
    for metric in metrics:
        cells = [_get(report, "shift_diagnostics", metric, s) for s in shown_splits]
        shown += cells
        table.add_row(Text(_label(metric)), *(_cell(c, 4) for c in cells))
    flag = (
        f"flagged: MMD p < {probe.config.get('alpha')}; MMD, KL and W1 have no interval "
        "(the permutation p-value judges their noise)"
    )
    table.caption = _caption(metrics, _reasons(shown), flag)
    return table


def corruption_table(report: Report) -> Table:
    """Balanced error per corruption (rows) and severity (columns, point values), the
    corruption error CE with its CI, and the summaries in the caption."""
    probe = report.probe("corruption")
    split = probe.config.get("split", "")
    severities = [str(s) for s in probe.config.get("severities", [])]
    table = new_table(
        f"Corruptions on {split} ({probe.config.get('n_used')} samples): balanced error per "
        "severity; CE = sum of errors / ERM's, [CI]"
    )
    table.add_column("corruption", no_wrap=True)
    for s in severities:
        table.add_column(f"s{s}", no_wrap=True)
    table.add_column("CE [CI]", no_wrap=True)
    for name in probe.config.get("corruptions", []):
        cells = [
            _get(report, "corruption", "balanced_error", split, attribute=name, group=s)
            for s in severities
        ]
        ce = _get(report, "corruption", "ce", split, attribute=name)
        table.add_row(Text(str(name)), *(_num(c.value if c else None) for c in cells), _cell(ce))
    summary = [
        f"{short_label(m)}: {_cell(_get(report, 'corruption', m, split))}"
        for m in ("clean_balanced_error", "mean_balanced_error", "mce", "relative_mce")
    ]
    table.caption = Text("; ".join(summary) + "\nseverity intervals: --json")
    return table


def comparison_table(c: Comparison, *, all_rows: bool = False) -> Table:
    """``A - B`` per metric with its paired CI; per-group and redundant rows (threshold
    drift, absolute OOD-minus-ID changes) only with ``all_rows``; McNemar for one seed."""
    seeds = (
        f"{len(c.seeds)} paired seeds, two-level bootstrap"
        if len(c.seeds) > 1
        else "one pair, paired bootstrap"
    )
    t = new_table(f"{c.a} (A) minus {c.b} (B) on {c.task}: {seeds}, {c.n_boot} resamples")
    for col in ("metric", "split", "A", "B", f"A - B [{100 * c.level:g}% CI]"):
        t.add_column(col, no_wrap=True)
    rows = [
        d
        for d in c.differences
        if all_rows or not (d.metric == "threshold_drift" or d.metric.startswith("ood_minus_id_"))
    ]
    for d in rows:
        where = d.attribute if d.group is None else f"{d.attribute}={d.group}"
        label = _label(d.metric) + (f" ({where})" if d.attribute else "")
        ci = f" {NO_CI}" if d.ci_low is None else f" [{_signed(d.ci_low)}, {_signed(d.ci_high)}]"
        diff = "n/a" if d.diff is None else f"{_fix(d.diff, sign='+')}{ci}"
        t.add_row(Text(label), Text(d.split), _num(d.a), _num(d.b), diff)
    notes = []
    if len(c.seeds) == 1:
        notes += [
            f"McNemar (exact) on {m.split}: only A right {m.only_a_correct}, only B right "
            f"{m.only_b_correct}, p = {m.p_value:.3g}"
            for m in c.mcnemar
        ]
    else:
        notes.append(f"A, B: means over seeds {c.seeds}; per-seed differences: --json")
    for r in c.recovery:
        if r.value is None:
            notes.append(f"recovery of {_label(r.metric)}: withheld, {r.reason}")
        else:
            ci = "" if r.ci_low is None else f" [{_signed(r.ci_low)}, {_signed(r.ci_high)}]"
            notes.append(
                f"recovery of {_label(r.metric)} (A's share of B's ID - OOD gap closed): "
                f"{_fix(r.value, sign='+')}{ci}"
            )
    notes += _interval_notes([(d.metric, d.diff, d.ci_low) for d in rows])
    t.caption = _caption([d.metric for d in rows], [], "\n".join(notes))
    return t


#: Board column labels short enough for 80 columns (the legend names each headline).
BOARD_LABELS = {
    "performance": "AUROC",
    "calibration": "ECE",
    "fairness": "WG AUROC",
    "fairness_gap": "EOD",
    "shift": "Drop",
    "explanation": "Dice",
    "shortcut": "Shortcut",
}


def stability_table(name: str, s: Stability) -> Table:
    """Each feature's mean importance and top-k share over the seeds; the pairwise rank
    correlations and Fleiss' kappa in the caption."""
    t = new_table(f"{name}: SHAP importance on {s.split} over seeds {s.seeds}")
    t.min_width = min(80, len(str(t.title)))
    t.add_column("feature", no_wrap=True)
    t.add_column("mean |SHAP|", justify="right", no_wrap=True)
    t.add_column(f"in top {s.k}", justify="right", no_wrap=True)
    for f in s.features:
        t.add_row(Text(f.feature), _num(f.mean_importance, 4), f"{100 * f.top_k_share:.0f}%")
    pairs = ", ".join(f"{p.a}-{p.b} {_num(p.rank_correlation)}" for p in s.pairs)
    t.caption = Text(
        f"rank correlation per seed pair: {pairs} (mean {_num(s.mean_rank_correlation)}); "
        f"Fleiss' kappa of the top {s.k}: {_num(s.fleiss_kappa_top_k)} (1 = every seed "
        "picks the same features, 0 = chance)"
    )
    return t


def _board_cell(row: dict[str, Any], dim: str, *, ci: bool) -> str:
    """A board row's mean over seeds of ``dim``, with ``ci`` its [mean of the per-seed CI
    bounds] when both are finite and the mean is."""
    mean, low, high = (float(row[f"{dim}_{s}"]) for s in ("mean", "ci_low", "ci_high"))
    if ci and math.isfinite(mean) and math.isfinite(low) and math.isfinite(high):
        return f"{_num(mean)} [{_fix(low)}, {_fix(high)}]"
    return _num(mean)


#: Board dimensions printed in their own table (the 80 columns of the ranked table are
#: full): the explanation probe's, which only tasks with masks have.
SEPARATE_DIMENSIONS = ("explanation", "shortcut")


def board_separate_table(board: Board) -> Table | None:
    """The :data:`SEPARATE_DIMENSIONS` of every entry, mean over seeds [mean of the
    per-seed CIs]; None when no entry has any of them."""
    table = board_table(board)
    dims = [d for d in SEPARATE_DIMENSIONS if table[f"{d}_mean"].astype(float).notna().any()]
    if not dims:
        return None
    split = headline_split(board)
    t = new_table(f"{board.task}: explanation on {split}")
    t.add_column("entry", overflow="fold")  # a long name folds; the numbers stay whole
    for dim in dims:
        arrow = "↑" if HEADLINES[dim].direction == "higher" else "↓"
        t.add_column(f"{BOARD_LABELS[dim]} {arrow} [CI]", no_wrap=True)
    for row in table.to_dict("records"):
        t.add_row(Text(str(row["entry"])), *(_board_cell(row, dim, ci=True) for dim in dims))
    names = "; ".join(f"{BOARD_LABELS[d]} = {HEADLINES[d].label}" for d in dims)
    t.caption = Text(
        f"{names}. Means over seeds [mean of the per-seed 95% CIs]; every explanation "
        "number: the reports' explanation probe (--json)"
    )
    return t


def board_rich_table(board: Board, rank_by: str = "performance") -> Table:
    """A board ranked by ``rank_by``: the ranked dimension as mean over seeds [mean of the
    per-seed CIs], every other dimension as its mean over seeds."""
    table = board_table(board, rank_by)
    ranked = HEADLINES[rank_by]
    split = ranked.split or headline_split(board)
    t = new_table(f"{board.task}: ranked by {ranked.label} on {split}")
    t.min_width = min(80, len(str(t.title)))  # a board of few columns keeps its title whole
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("entry", overflow="fold")  # a long name folds; the numbers stay whole
    empty = [
        d
        for d in HEADLINES
        if d != rank_by and len(table) and table[f"{d}_mean"].astype(float).isna().all()
    ]
    others = [d for d in HEADLINES if d not in (rank_by, *empty, *SEPARATE_DIMENSIONS)]
    order = [rank_by, *others]
    for dim in order:
        arrow = "↑" if HEADLINES[dim].direction == "higher" else "↓"
        t.add_column(
            f"{BOARD_LABELS[dim]} {arrow}" + (" [CI]" if dim == rank_by else ""), no_wrap=True
        )
    for row in table.to_dict("records"):
        cells = [_board_cell(row, dim, ci=dim == rank_by) for dim in order]
        rank = "" if pd.isna(row["rank"]) else str(row["rank"])
        rank += "*" if row["apart"] and rank else ""
        t.add_row(rank, Text(str(row["entry"])), *cells)
    names = "; ".join(
        f"{BOARD_LABELS[d]} = {HEADLINES[d].label}"
        for d in order
        if BOARD_LABELS[d] != HEADLINES[d].label
    )
    seeds = sorted({len(e.reports) for e in board.entries})
    notes = [
        f"{names}. Means over {'/'.join(map(str, seeds)) or 0} seed(s); [CI] = mean of the "
        "per-seed 95% bootstrap CIs; SDs and every interval: --json or medfail leaderboard"
    ]
    if table["apart"].any():
        notes.append("* ranked apart: selected on OOD data or by an oracle (see flags)")
    unshown = [d for d in empty if d not in SEPARATE_DIMENSIONS]
    if unshown:
        notes.append(
            f"not shown, n/a for every entry: {', '.join(HEADLINES[d].label for d in unshown)}"
        )
    if any(row["ci_notes"] for row in table.to_dict("records")):
        notes.append("no [CI]: a seed's interval was withheld or undefined (why: --json)")
    if ranked.metric in APPROXIMATE_CI:
        notes.append(
            f"[CI] is approximate: {ranked.label} is a |.|, max or min over groups, biased "
            "near parity (docs/intervals.md)"
        )
    t.caption = Text("\n".join(notes))
    return t


def _claim_where(claim: ValidityClaim, reference: str | None) -> str:
    if claim.attribute is None:
        group = ""
    elif reference is None:
        group = f" ({claim.attribute}={claim.group})"
    else:
        group = f" ({claim.attribute}: {claim.group} minus {reference})"
    return f"{short_label(claim.metric)}{group} on {claim.split}"


def claim_table(
    claim: ValidityClaim, runs: dict[str, list[Report]], reference: str | None = None
) -> Table:
    """The metric of the task's failure claim (its validity record) for each entry or
    model: mean over seeds [mean of the per-seed CIs], and on how many seeds the CI lies on
    the claimed side of 0 (the failure shown). Whatever the board's headline columns are,
    the failure the task is about stays in view. ``reference``: the claim's reference
    group, for a gap's title."""
    side = "below" if claim.direction == "negative" else "above"
    t = new_table(f"The task's failure: {_claim_where(claim, reference)}")
    t.min_width = 64  # the title on one line
    for col in ("entry", "value [CI]", f"seeds with CI {side} 0"):
        t.add_column(col, no_wrap=True)
    means: list[MetricResult] = []
    for name, reports in runs.items():
        rows: list[MetricResult | None] = []
        for r in reports:
            try:
                rows.append(claim_metric(r, claim))
            except KeyError:
                rows.append(None)
        got = [m for m in rows if m is not None and m.value is not None]
        if len(got) < len(rows) or not got:
            t.add_row(Text(name), "n/a", "")
            continue
        mean = MetricResult.of(
            float(np.mean([m.value for m in got])),
            float(np.mean([m.ci_low if m.ci_low is not None else np.nan for m in got])),
            float(np.mean([m.ci_high if m.ci_high is not None else np.nan for m in got])),
            probe=claim.probe,
            metric=claim.metric,
            split=claim.split,
        )
        means.append(mean)
        shown = sum(outcome(r, claim, 0).passed for r in reports)
        t.add_row(Text(name), _cell(mean), f"{shown} of {len(reports)}")
    lines = [
        f"value: mean over seeds [mean of the per-seed {claim.level:.0%} CIs]; the failure "
        f"is shown on a seed whose own CI lies {side} 0"
    ]
    lines += _interval_notes([(m.metric, m.value, m.ci_low) for m in means])
    t.caption = Text("\n".join(lines))
    return t


def board_claim_table(board: Board, claim: ValidityClaim, reference: str | None) -> Table:
    """:func:`claim_table` for every entry of ``board``."""
    runs = {e.metadata.name: [r for _, r in sorted(e.reports.items())] for e in board.entries}
    return claim_table(claim, runs, reference)


def cases_table(cases: list[Case]) -> Table:
    """Cases grouped by domain: the id with its dimensions below it, the year, and how
    many tasks reproduce each."""
    t = new_table(f"MedFail failure cases ({len(cases)})")
    t.add_column("case (dimensions)", no_wrap=True)
    t.add_column("year", no_wrap=True)
    t.add_column("tasks", justify="right", no_wrap=True)
    by_domain: dict[str, list[Case]] = {}
    for c in cases:
        by_domain.setdefault(c.domain, []).append(c)
    for domain, group in by_domain.items():
        t.add_row(Text(domain, style="bold"), "", "")
        for i, c in enumerate(group):
            cell = Text(c.id)
            cell.append("\n  " + ", ".join(c.dimensions), style="dim")
            t.add_row(cell, str(c.year), str(len(c.reproduced_by)), end_section=i == len(group) - 1)
    t.caption = Text(
        "tasks: how many tasks reproduce the case (which: medfail cases show ID, --json)"
    )
    return t


def frame_records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Rows of ``frame`` as plain records for JSON/CSV: missing values (NaN, NA) are None,
    numpy scalars are Python numbers."""
    clean = frame.astype(object).where(frame.notna(), None)
    return [
        {k: getattr(v, "item", lambda v=v: v)() for k, v in row.items()}
        for row in clean.to_dict("records")
    ]


def stats_table(s: Stats) -> Table:
    """Cases by domain (rows) and taxonomy layer (columns, first word; full names below)."""
    layers = list(s.by_layer_domain)
    table = new_table(
        f"{s.n} cases by domain (rows) and taxonomy layer (columns); a case counts once in "
        "each layer it touches"
    )
    table.add_column("domain", no_wrap=True)
    for layer in layers:
        table.add_column(layer.split("-")[0], justify="right", no_wrap=True)
    table.add_column("cases", justify="right")
    for d, n in s.by_domain.items():
        table.add_row(d, *(str(s.by_layer_domain[layer][d]) for layer in layers), str(n))
    table.caption = Text("layers: " + ", ".join(layers))
    return table
