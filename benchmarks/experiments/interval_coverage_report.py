"""Tables and a plot from the coverage study's CSV (``interval_coverage.py``).

Coverage of a method in a group of rows is ``covered / shown`` (intervals that held the
truth among those reported), with its Monte Carlo standard error
``sqrt(c (1 - c) / shown)``. Printed as markdown:

1. coverage by support in patients (pooled over the grid's cells), per metric and method;
2. the same by support in events (for rates: the fewer of patients with a hit and with a
   miss), for BCa;
3. the scorer's intervals per cell: BCa where the support in patients reaches the
   metric's minimum (``benchmark.common.conventions.MIN_SUPPORT``), withheld below it:
   coverage of those reported, and the share withheld.

Run: ``.venv/bin/python benchmarks/experiments/interval_coverage_report.py CSV
[--plot docs/interval_coverage.svg]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.common.conventions import MIN_SUPPORT

#: What each study metric's support counts, as the scorer counts it (its minimum:
#: ``MIN_SUPPORT[kind]``).
KIND = {
    "auroc": "rarer_class",
    "tpr_sub": "positive",
    "tpr_ref": "positive",
    "fpr_sub": "negative",
    "fpr_ref": "negative",
    "tpr_gap": "positive",
    "eod": "positive",
    "di": "group",
    "ece": "group",
}

DESIGN = ["n_sub", "n_ref", "max_images", "prevalence", "n_sites", "effect"]
METHODS = ["bca", "percentile", "row", "wilson_eff"]


def _coverage(g: pd.DataFrame) -> pd.Series:
    shown, covered = g["shown"].sum(), g["covered"].sum()
    c = covered / shown if shown else np.nan
    return pd.Series(
        {
            "coverage": c,
            "mc_se": np.sqrt(c * (1 - c) / shown) if shown else np.nan,
            "shown": shown,
            "reps": g["reps"].sum(),
            "mean_width": g["width_sum"].sum() / shown if shown else np.nan,
        }
    )


def by_support(frame: pd.DataFrame, support: str = "patients_from") -> pd.DataFrame:
    """Coverage per metric, method and support bin (``patients_from`` or ``events_from``),
    pooled over cells."""
    keys = ["metric", "method", support]
    return frame.groupby(keys)[["reps", "shown", "covered", "width_sum"]].apply(_coverage)


def scorer(frame: pd.DataFrame) -> pd.DataFrame:
    """Per cell and metric: the BCa intervals the scorer reports (support at or above the
    metric's minimum) pooled, and the share of test sets whose interval it withholds."""
    bca = frame[frame["method"] == "bca"]
    least = bca["metric"].map(lambda m: MIN_SUPPORT[KIND[m]])
    kept = bca[bca["patients_from"] >= least]
    out = kept.groupby([*DESIGN, "metric"])[["reps", "shown", "covered", "width_sum"]].apply(
        _coverage
    )
    total = bca.groupby([*DESIGN, "metric"])["reps"].sum()
    out["withheld"] = 1 - out["shown"] / total.reindex(out.index)
    return out


def _markdown(table: pd.DataFrame) -> str:
    cols = [str(c) for c in table.reset_index().columns]
    rows = table.reset_index().to_numpy().tolist()

    def fmt(x: object) -> str:
        if isinstance(x, float):
            return "" if np.isnan(x) else f"{x:.3f}".rstrip("0").rstrip(".") or "0"
        return str(x)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(x) for x in r) + " |" for r in rows]
    return "\n".join(lines)


def plot(frame: pd.DataFrame, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = by_support(frame).reset_index()
    metrics = ["auroc", "tpr_sub", "fpr_sub", "tpr_gap", "eod", "di", "ece"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3 * len(metrics), 3), sharey=True)
    for ax, metric in zip(axes, metrics, strict=True):
        for method in METHODS:
            t = table[(table["metric"] == metric) & (table["method"] == method)]
            t = t[t["shown"] >= 50]
            if len(t):
                ax.errorbar(
                    t["patients_from"], t["coverage"], yerr=2 * t["mc_se"], marker="o", label=method
                )
        ax.axhspan(0.93, 0.97, color="0.9")
        ax.axvline(MIN_SUPPORT[KIND[metric]], color="0.5", linestyle=":")
        ax.set_xscale("log")
        ax.set_title(metric)
        ax.set_xlabel("support (patients, bin start)")
    axes[0].set_ylabel("coverage of 95% intervals")
    axes[0].set_ylim(0.4, 1.0)
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    tmp = out.with_suffix(".tmp" + out.suffix)
    fig.savefig(tmp, metadata={"Date": None})  # byte-stable across runs
    tmp.replace(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", type=Path)
    ap.add_argument("--plot", type=Path)
    args = ap.parse_args()
    frame = pd.read_csv(args.csv)
    wide = by_support(frame)["coverage"].unstack("method")
    print(_markdown(wide[[m for m in METHODS if m in wide]]))
    print()
    events = by_support(frame, "events_from")
    print(_markdown(events.xs("bca", level="method")[["coverage", "mc_se", "shown"]]))
    print()
    print(_markdown(scorer(frame)))
    if args.plot:
        plot(frame, args.plot)


if __name__ == "__main__":
    main()
