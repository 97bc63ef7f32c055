"""Do the seeds of one entry agree on which features matter? (SHAP stability)

From the ``shap_importance`` rows (mean |SHAP| per feature) of an entry's reports, one per
training seed, on one split: for each pair of seeds, Spearman's rank correlation of the
two importance vectors (``scipy.stats.spearmanr``, features the reports share); and with
each seed as a rater that puts every feature "in its top k" or not, Fleiss' kappa of those
judgements (:func:`benchmark.stats.agreement.fleiss_kappa`, equal to statsmodels'). Kappa is
1 when every seed picks the same top k, about 0 when the picks agree no more than chance.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from benchmark.common.schema import StrictModel
from benchmark.errors import MedFailError
from benchmark.results.report import Report
from benchmark.stats.agreement import fleiss_kappa


class SeedPair(StrictModel):
    a: int
    b: int
    rank_correlation: float | None


class FeatureAgreement(StrictModel):
    feature: str
    mean_importance: float
    top_k_share: float  # share of seeds that put it in their top k


class Stability(StrictModel):
    split: str
    k: int
    seeds: list[int]
    pairs: list[SeedPair]
    mean_rank_correlation: float | None
    fleiss_kappa_top_k: float | None
    features: list[FeatureAgreement]


def importance(report: Report, split: str) -> pd.Series:
    """Mean |SHAP| per feature on ``split`` (empty when the report has none)."""
    rows = {
        m.attribute: m.value
        for p in report.probes
        if p.name == "explanation"
        for m in p.metrics
        if m.metric == "shap_importance" and m.split == split and m.value is not None
    }
    return pd.Series(rows, dtype=np.float64).sort_index()


def stability(reports: Mapping[int, Report], split: str = "ood_test", k: int = 5) -> Stability:
    """Agreement of the seeds' feature importance (module docstring); at least 2 seeds."""
    seeds = sorted(reports)
    table = pd.DataFrame({s: importance(reports[s], split) for s in seeds}).dropna()
    if len(seeds) < 2 or table.empty:
        raise MedFailError(
            f"SHAP stability needs 2 or more seeds with shap_importance on {split}; found "
            f"{len(seeds)} seed(s) and {len(table)} shared feature(s)"
        )
    if not 1 <= k < len(table):
        raise MedFailError(f"--top-k {k}: choose 1 to {len(table) - 1} of {len(table)} features")
    pairs = []
    for a, b in combinations(seeds, 2):
        rho = spearmanr(table[a], table[b]).statistic
        pairs.append(SeedPair(a=a, b=b, rank_correlation=None if np.isnan(rho) else float(rho)))
    ranks = table.rank(ascending=False, method="first")
    top = (ranks <= k).to_numpy()  # (features, seeds)
    counts = np.column_stack([len(seeds) - top.sum(axis=1), top.sum(axis=1)])
    kappa = fleiss_kappa(counts)
    rhos = [p.rank_correlation for p in pairs if p.rank_correlation is not None]
    order = table.mean(axis=1).sort_values(ascending=False).index
    return Stability(
        split=split,
        k=k,
        seeds=seeds,
        pairs=pairs,
        mean_rank_correlation=float(np.mean(rhos)) if rhos else None,
        fleiss_kappa_top_k=None if np.isnan(kappa) else float(kappa),
        features=[
            FeatureAgreement(
                feature=str(f),
                mean_importance=float(table.loc[f].mean()),
                top_k_share=float(top[table.index.get_loc(f)].mean()),
            )
            for f in order
        ],
    )
