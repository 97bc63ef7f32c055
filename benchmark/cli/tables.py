"""Terminal views (rich tables) of reports, comparisons and leaderboards.

Every table is built from the typed object alone, so what the terminal shows is what
the JSON holds.
"""

from __future__ import annotations

import pandas as pd
from rich.table import Table

from benchmark.results.report import MetricResult, Report
from benchmark.scoring.compare import Comparison


def _cell(m: MetricResult | None, digits: int = 3) -> str:
    if m is None:
        return "-"
    if m.value is None:
        return f"n/a ({m.reason})" if m.reason else "n/a"
    ci = "" if m.ci_low is None else f" [{m.ci_low:.{digits}f}, {m.ci_high:.{digits}f}]"
    return f"{m.value:.{digits}f}{ci}"


def _get(
    report: Report, probe: str, metric: str, split: str, **keys: str | None
) -> MetricResult | None:
    try:
        return report.metric(metric, split, probe=probe, **keys)
    except KeyError:
        return None


def report_tables(report: Report) -> list[Table]:
    """Overall metrics per test split side by side, then fairness summaries per attribute."""
    splits = [s for s in report.splits if s != "val"]
    level = f"{100 * report.bootstrap.level:g}% CI"
    title = (
        f"{report.model.name} on {report.task.ref}  (threshold {report.threshold.value:.4g} "
        f"frozen on val by {report.threshold.rule}; {level}, {report.bootstrap.n_boot} "
        f"{report.bootstrap.unit} resamples)"
    )
    main = Table(title=title, title_justify="left")
    main.add_column("probe")
    main.add_column("metric")
    for s in splits:
        main.add_column(f"{s} [{level}]")
    has_shift = any(p.name == "shift" for p in report.probes)
    if has_shift:
        main.add_column("shift robustness (m_ID - m_OOD)/m_ID")
    for probe in ("performance", "calibration"):
        if not any(p.name == probe for p in report.probes):
            continue
        metrics = dict.fromkeys(
            m.metric for m in report.probe(probe).metrics if m.attribute is None
        )
        for metric in metrics:
            cells = [_cell(_get(report, probe, metric, s)) for s in splits]
            if has_shift:
                split = "ood_test"
                cells.append(_cell(_get(report, "shift", f"shift_robustness_{metric}", split)))
            main.add_row(probe, metric, *cells)
    tables = [main]
    if any(p.name == "fairness" for p in report.probes):
        fair = Table(title="Fairness (per attribute; group sizes below)", title_justify="left")
        fair.add_column("attribute")
        fair.add_column("metric")
        for s in splits:
            fair.add_column(s)
        summary = [m for m in report.probe("fairness").metrics if m.group is None]
        for attr, metric in dict.fromkeys((m.attribute, m.metric) for m in summary):
            cells = [_cell(_get(report, "fairness", metric, s, attribute=attr)) for s in splits]
            fair.add_row(attr, metric, *cells)
        sizes = {}
        for m in report.probe("fairness").metrics:
            if m.group is not None and m.metric == "accuracy":
                sizes.setdefault(m.attribute, {}).setdefault(m.group, {})[m.split] = m.n
        for attr, groups in sizes.items():
            cells = [
                "; ".join(f"{g}: {by_split.get(s, 0)}" for g, by_split in groups.items())
                for s in splits
            ]
            fair.add_row(attr, "n per group", *cells)
        tables.append(fair)
    if any(p.name == "corruption" and p.metrics for p in report.probes):
        tables.append(corruption_table(report))
    if any(p.name == "adversarial" and p.metrics for p in report.probes):
        tables.append(adversarial_table(report))
    return tables


def adversarial_table(report: Report) -> Table:
    """Worst-case robust metrics per eps (rows: L-inf, then L2), the attacks run and the
    masking badge."""
    probe = report.probe("adversarial")
    split = probe.config.get("split", "")
    badge = probe.config.get("gradient_masking") or []
    table = Table(
        title=f"Adversarial ({', '.join(probe.config.get('attacks', []))}; "
        f"{probe.config.get('norm')}, {probe.config.get('goal')}) on {split} "
        f"({probe.config.get('n_used')} samples): worst case over attacks",
        title_justify="left",
    )
    metrics = ["robust_accuracy", "robust_auroc", "robust_sensitivity", "attack_success_rate"]
    table.add_column("eps")
    for m in metrics:
        table.add_column(m)
    for norm in (None, "L2"):  # L-inf rows have no attribute
        for group in dict.fromkeys(m.group for m in probe.metrics if m.attribute == norm):
            assert group is not None
            cells = [
                _cell(_get(report, "adversarial", m, split, attribute=norm, group=group))
                for m in metrics
            ]
            label = f"{float(group) * 255:.3g}/255" if norm is None else f"L2 {float(group):.3g}"
            table.add_row(label, *cells)
    verdict = "GRADIENT MASKING suspected: " + "; ".join(badge)
    table.caption = verdict if badge else "no sign of gradient masking"
    return table


def corruption_table(report: Report) -> Table:
    """Balanced error per corruption (rows) and severity (columns), with CE and the mCE."""
    probe = report.probe("corruption")
    split = probe.config.get("split", "")
    severities = [str(s) for s in probe.config.get("severities", [])]
    table = Table(
        title=f"Corruptions on {split} ({probe.config.get('n_used')} samples): balanced error "
        "[CI] per severity; CE = sum of errors / ERM's",
        title_justify="left",
    )
    table.add_column("corruption")
    for s in severities:
        table.add_column(f"s{s}")
    table.add_column("CE")
    for name in probe.config.get("corruptions", []):
        cells = [
            _cell(_get(report, "corruption", "balanced_error", split, attribute=name, group=s))
            for s in severities
        ]
        ce = _get(report, "corruption", "ce", split, attribute=name)
        table.add_row(name, *cells, _cell(ce))
    summary = [
        f"{m}: {_cell(_get(report, 'corruption', m, split))}"
        for m in ("clean_balanced_error", "mean_balanced_error", "mce", "relative_mce")
    ]
    table.caption = "; ".join(summary)
    return table


def comparison_table(c: Comparison) -> Table:
    t = Table(
        title=f"{c.a} minus {c.b} on {c.task} (paired, same {c.n_boot} resamples)",
        title_justify="left",
    )
    for col in ("split", "metric", "A", "B", "A - B", f"{100 * c.level:g}% CI"):
        t.add_column(col)

    def f(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.4f}"

    for d in c.differences:
        t.add_row(d.split, d.metric, f(d.a), f(d.b), f(d.diff), f"[{f(d.ci_low)}, {f(d.ci_high)}]")
    for m in c.mcnemar:
        t.add_row(
            m.split,
            "McNemar (exact)",
            f"only A right: {m.only_a_correct}",
            f"only B right: {m.only_b_correct}",
            "",
            f"p = {m.p_value:.3g}",
        )
    return t


def board_rich_table(title: str, table: pd.DataFrame) -> Table:
    """A formatted leaderboard frame (``submissions.format_table``) as a compact rich table:
    rank, entry and one cell per dimension (``mean ± sd`` over seeds, the CI below it)."""
    keep = [c for c in table.columns if c not in ("method", "model", "seeds", "flags")]
    t = Table(title=title, title_justify="left", show_lines=True)
    for col in keep:
        t.add_column(str(col), no_wrap=col in ("rank", "entry"))
    for row in table[keep].itertuples(index=False):
        t.add_row(*("" if pd.isna(v) else str(v).replace(" [", "\n[") for v in row))
    return t
