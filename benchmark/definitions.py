"""Probe names and the exact metric conventions that task cards state.

This is the single written source of each convention: cards quote it, and the probe
implementations cite it in their docstrings. Directions are stated per metric; no two
conventions share a name.
"""

from __future__ import annotations

#: Probe name -> (metric, definition) pairs, in the order a card lists them.
METRIC_DEFINITIONS: dict[str, list[tuple[str, str]]] = {
    "performance": [
        ("auroc", "Area under the ROC curve of the positive-class score (higher is better)."),
        ("auprc", "Average precision, sklearn's step-wise AUPRC (higher is better)."),
        ("accuracy", "Share of correct decisions at the frozen operating threshold."),
        ("f1", "F1 of the positive class at the frozen operating threshold."),
        (
            "sensitivity_at_specificity",
            "TPR at the highest threshold whose specificity on the scored split is >= 0.9.",
        ),
        (
            "threshold_drift",
            "Best (Youden) threshold on a test split minus the frozen threshold; reported, "
            "never used to score.",
        ),
    ],
    "calibration": [
        ("ece_equal_width", "ECE = sum_b (n_b/N) |acc_b - conf_b|, 15 equal-width bins on [0, 1]."),
        ("ece_equal_mass", "The same sum over 15 bins holding equal numbers of samples."),
        ("brier", "Mean squared error of the positive-class probability (lower is better)."),
    ],
    "fairness": [
        (
            "disparate_impact",
            "DI = P(yhat=1 | group) / P(yhat=1 | reference group); 1 is parity.",
        ),
        ("eod_sum", "EOD (seed definition) = |dTPR| + |dFPR| versus the reference group."),
        (
            "equalized_odds_difference_max",
            "fairlearn's equalized-odds difference: max(|dTPR|, |dFPR|) over groups.",
        ),
        (
            "equal_opportunity_ratio_gap",
            "ED = |TPR_group - TPR_reference| / TPR_reference.",
        ),
        ("demographic_parity_difference", "max - min of P(yhat=1) over groups."),
        ("worst_group_auroc", "Lowest per-group AUROC; groups below the minimum size are flagged."),
        ("worst_group_accuracy", "Lowest per-group accuracy at the frozen threshold."),
    ],
    "shift": [
        ("metric_id / metric_ood", "Every performance metric on id_test and ood_test."),
        ("shift_robustness", "(m_ID - m_OOD) / m_ID; 0 is no drop, positive is a drop."),
    ],
    "corruption": [("mce", "Mean corruption error relative to ERM on the same task.")],
    "adversarial": [("robust_accuracy", "Per-example worst case over all attacks run, per eps.")],
    "explanation": [("saliency_dice", "Dice(A, B) = 2|A n B| / (|A| + |B|) against the ROI.")],
}

PROBE_NAMES: tuple[str, ...] = tuple(METRIC_DEFINITIONS)

#: Threshold rules a task may name; the threshold is chosen on ``val`` and frozen.
THRESHOLD_RULES: dict[str, str] = {
    "youden": "maximise Youden's J = TPR - FPR on val; ties go to the higher threshold",
    "fixed_specificity": "the highest threshold whose specificity on val is >= the target",
    "fixed": "a fixed threshold stated in the spec",
}

#: Confidence intervals: the scorer's default bootstrap.
CI_PROTOCOL = (
    "95% percentile bootstrap, 1,000 replicates, resampling patients (clusters) and, where a "
    "site column exists, sites; the bootstrap seed is the task seed."
)
