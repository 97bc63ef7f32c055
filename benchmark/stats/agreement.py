"""Agreement between raters: Fleiss' kappa.

Used for inter-rater agreement over pixels (3 rater masks per image: is this pixel
lesion?) and for the stability of feature importance across training seeds (each seed a
rater: is this feature in the top k?).
"""

from __future__ import annotations

import numpy as np


def fleiss_kappa(table: np.ndarray) -> float:
    """Fleiss' kappa from a table of counts (n_subjects, n_categories): row i holds how many
    raters put subject i in each category; every row must sum to the same number of raters
    (at least 2). Equals ``statsmodels.stats.inter_rater.fleiss_kappa(table,
    method="fleiss")``. NaN when chance agreement is 1 (every rating in one category)."""
    t = np.asarray(table, dtype=np.float64)
    if t.ndim != 2 or len(t) == 0:
        raise ValueError(f"a (subjects, categories) table is needed; got shape {t.shape}")
    raters = t.sum(axis=1)
    if np.any(raters != raters[0]) or raters[0] < 2:
        raise ValueError("every subject needs the same number of raters, at least 2")
    n = raters[0]
    p_cat = t.sum(axis=0) / t.sum()
    p_subject = ((t * t).sum(axis=1) - n) / (n * (n - 1))
    p_bar, p_e = p_subject.mean(), float((p_cat**2).sum())
    return float("nan") if p_e == 1 else float((p_bar - p_e) / (1 - p_e))


def rater_table(ratings: np.ndarray, n_categories: int = 2) -> np.ndarray:
    """Counts per subject and category from ratings (n_raters, n_subjects) of category
    indices, e.g. binary masks of 3 raters flattened over pixels."""
    r = np.asarray(ratings, dtype=np.int64)
    return np.stack([(r == c).sum(axis=0) for c in range(n_categories)], axis=1)
