"""Probe names and the exact metric conventions that task cards state.

This is the single written source of each convention: cards quote it, and the probe
implementations cite it in their docstrings. Directions are stated per metric; no two
conventions share a name. A released card quotes these texts, so changing one changes
every released pin that quotes it (the embedded-task tests catch that).

Binary tasks: ``p`` is the probability of the positive class, ``y`` is 1 for the positive
class, and a decision is ``p >= t`` with ``t`` the threshold frozen on ``val``.
"""

from __future__ import annotations

import math
import re

#: Probe name -> (metric, definition) pairs, in the order a card lists them.
METRIC_DEFINITIONS: dict[str, list[tuple[str, str]]] = {
    "performance": [
        ("auroc", "Area under the ROC curve of p; ties count 1/2 (sklearn roc_auc_score)."),
        ("auprc", "Average precision, sum_k (R_k - R_k-1) P_k (sklearn average_precision_score)."),
        ("accuracy", "Share of correct decisions at the frozen threshold."),
        ("f1", "F1 = 2TP / (2TP + FP + FN) at the frozen threshold; undefined if 2TP+FP+FN = 0."),
        (
            "sensitivity_at_specificity",
            "Largest TPR over all thresholds on the scored split whose specificity 1 - FPR "
            "is >= 0.9 (sklearn roc_curve, drop_intermediate=False); a curve summary, not an "
            "operating point.",
        ),
        (
            "threshold_drift",
            "Youden-optimal threshold on the scored split (max TPR - FPR, ties to the higher "
            "threshold) minus the frozen threshold; reported, never used to score.",
        ),
    ],
    "calibration": [
        (
            "ece_equal_width",
            "ECE = sum_b (n_b/N) |mean(y)_b - mean(p)_b| over 15 bins of width 1/15 on [0, 1], "
            "binned as sklearn calibration_curve(strategy='uniform'); calibration of p. The "
            "plug-in ECE is biased upward, so its interval is approximate (see below).",
        ),
        (
            "ece_equal_mass",
            "The same sum over 15 bins with edges at the quantiles of p on the scored split "
            "(calibration_curve(strategy='quantile')); edges stay fixed across replicates.",
        ),
        ("brier", "Mean of (p - y)^2 (sklearn brier_score_loss); lower is better."),
        (
            "per group; reliability",
            "All three also per group of every attribute (equal-mass edges from the group's "
            "own rows); reliability curves give per-bin mean p, mean y and count.",
        ),
    ],
    "fairness": [
        ("disparate_impact", "DI = P(yhat=1 | group) / P(yhat=1 | reference group); 1 is parity."),
        (
            "eod_sum",
            "EOD (seed definition) = |TPR_g - TPR_ref| + |FPR_g - FPR_ref| per group; the "
            "attribute summary is the largest over groups.",
        ),
        (
            "tpr_gap / fpr_gap / auroc_gap",
            "Signed gaps per group: TPR_g - TPR_ref (equal-opportunity difference), "
            "FPR_g - FPR_ref and AUROC_g - AUROC_ref; 0 is parity, the reference group is 0.",
        ),
        (
            "equalized_odds_difference_max",
            "fairlearn equalized_odds_difference: max(max-min TPR, max-min FPR) over groups; "
            "a group whose rate is undefined (no positives or negatives) is left out, where "
            "fairlearn would count it as 0.",
        ),
        (
            "equal_opportunity_ratio_gap",
            "ED = |TPR_g - TPR_ref| / TPR_ref per group; the summary is the largest.",
        ),
        (
            "demographic_parity_difference",
            "fairlearn demographic_parity_difference: max - min of P(yhat=1) over groups.",
        ),
        (
            "demographic_parity_ratio",
            "fairlearn demographic_parity_ratio: min / max of P(yhat=1) over groups.",
        ),
        (
            "per group",
            "Each group's n, selection_rate, tpr, fpr, accuracy and auroc; a group under "
            "min_group_size is flagged with a warning.",
        ),
        (
            "worst_group_auroc",
            "Lowest per-group AUROC over groups with at least min_group_size samples.",
        ),
        (
            "worst_group_accuracy",
            "Lowest per-group accuracy at the frozen threshold, same groups as above.",
        ),
    ],
    "shift": [
        (
            "shift_robustness_<m>",
            "(m_ID - m_OOD) / m_ID for each performance metric m (id_test vs ood_test); 0 is "
            "no drop, positive is a drop. Splits are resampled independently.",
        ),
        ("ood_minus_id_<m>", "m_OOD - m_ID, the absolute change (negative is a drop)."),
    ],
    "corruption": [
        (
            "auroc / accuracy / balanced_error per corruption and severity",
            "The test split (id_test, else ood_test; at most 2,000 seeded samples) re-scored "
            "after each corruption at severities 1-5, seeded per image; balanced error = "
            "1 - (TPR + TNR) / 2 at the frozen threshold; balanced_error_increase is the "
            "paired change from clean images.",
        ),
        (
            "ce / mce",
            "CE_c = sum_s E_cs / sum_s E_cs(ERM), mCE = mean over corruptions (ImageNet-C's "
            "normalised form, E = balanced error, ERM = the task's reference baseline, held "
            "fixed); relative_ce / relative_mce use E_cs - E_clean on both sides.",
        ),
        (
            "relative_robustness curve",
            "Per severity (0 = clean), the mean over corruptions of AUROC_s / AUROC_clean.",
        ),
    ],
    "adversarial": [
        (
            "robust_accuracy / robust_auroc / robust_f1 / robust_sensitivity per eps",
            "L-inf attacks (ART: FGSM, PGD with random starts, Square) on images in [0, 1] "
            "whose goal is to flip the decision p >= t at the frozen threshold; each example "
            "counts with its worst case over the attacks (its lowest score if positive, "
            "highest if negative); at most 200 seeded samples, recorded.",
        ),
        (
            "attack_success_rate",
            "Share of examples correct on clean inputs whose decision some attack flips.",
        ),
        (
            "gradient-masking badge",
            "Raised, with reasons, when Square beats the gradient attacks, FGSM beats PGD, "
            "robust accuracy rises with eps, or input gradients are zero or NaN.",
        ),
    ],
    "explanation": [
        (
            "saliency_dice",
            "Dice = 2|A n M| / (|A| + |M|) of the k most attributed pixels A against the "
            "lesion mask M, k = the mask's own area (ties in row-major order); mean over the "
            "images with a lesion mask. Per attribution method (`attribute`), per group and "
            "per site (`attribute` method/attribute, `group`); the Dice-vs-k curve is kept.",
        ),
        (
            "pointing_game",
            "1 if the map's first maximal pixel lies within `tolerance` pixels (Chebyshev) "
            "of M, else 0 (Zhang et al., 2018); mean over lesion images.",
        ),
        (
            "relevance_mass",
            "Positive attribution inside M over all positive attribution (Arras et al., "
            "2022); mean over lesion images.",
        ),
        (
            "pixel_auroc",
            "AUROC of the map as a pixel detector of M, ties 1/2; mean over lesion images.",
        ),
        (
            "<metric>_of_ceiling",
            "The model's mean over the human ceiling's mean on the same images "
            "(1 = as good as one rater against the others).",
        ),
        (
            "rater_<metric>",
            "The human ceiling: each rater's mask scored as a map against the majority of "
            "the other raters (leave-one-rater-out), averaged over raters; `rater_kappa` is "
            "Fleiss' kappa of the raters over an image's pixels. Means over lesion images.",
        ),
        (
            "shortcut_mass",
            "Share of positive attribution on the recorded shortcut pixels (the burned-in "
            "marker); mean over the images that carry it.",
        ),
        (
            "counterfactual_delta_p",
            "p(with lesion) - p(without) per counterfactual pair (one patient, the same "
            "image but for the lesion); mean over pairs.",
        ),
        (
            "counterfactual_peak_moved",
            "Share of pairs whose map peak lies on the inserted lesion (within `tolerance`) "
            "on the lesion image and off it on the lesion-free image.",
        ),
        (
            "trust_rank_correlation",
            "Spearman's rho between p and saliency_dice over lesion images: do confident "
            "detections point at the lesion? (replicates: weighted Pearson of the ranks).",
        ),
        (
            "saliency_dice_gap",
            "Explanation disparity: saliency_dice of a group minus the reference group's.",
        ),
        (
            "degenerate_maps",
            "Share of maps with a NaN or constant value: counted here, never scored as 0.",
        ),
        (
            "shap_importance",
            "Tabular tasks: mean |SHAP value| of a feature (`attribute`) over the explained "
            "rows; TreeExplainer (log-odds) for tree ensembles, else a PermutationExplainer "
            "on p with a seeded background of train rows (the report states which). "
            "Stability across seeds: rank correlation and Fleiss' kappa of the top k.",
        ),
        (
            "counterfactual_validity",
            "Tabular tasks, false negatives at the frozen threshold: DiCE counterfactuals "
            "with group attributes, site, age, sex, race and ethnicity frozen; the share that "
            "reach p >= t when rescored. Also `counterfactual_found` (queries with one), "
            "`counterfactual_proximity` (mean |change| / MAD over numeric features), "
            "`counterfactual_sparsity` (features changed), `counterfactual_changed` per "
            "feature.",
        ),
        (
            "sanity check",
            "Cascading randomisation of the model's layers, output first (Adebayo et al., "
            "2018): rank correlation and SSIM with the trained model's maps per step; a "
            "method whose maps keep rank correlation >= 0.5 with every layer random fails "
            "and its alignment numbers are withheld.",
        ),
    ],
}

PROBE_NAMES: tuple[str, ...] = tuple(METRIC_DEFINITIONS)

#: Threshold rules a task may name; the threshold is chosen on ``val`` and frozen.
THRESHOLD_RULES: dict[str, str] = {
    "youden": "maximise Youden's J = TPR - FPR on val; ties go to the higher threshold",
    "fixed_specificity": "the lowest threshold whose specificity on val is >= the target",
    "fixed": "a fixed threshold stated in the spec",
}

#: The scorer's default bootstrap: replicates and interval level (the seed is the task's).
DEFAULT_N_BOOT = 1000
DEFAULT_LEVEL = 0.95

#: Metrics whose intervals are approximate: a distance from parity (|.|), or a max or min
#: over groups, is biased away from its truth near parity, and no bootstrap interval fixes
#: that; in the coverage study EOD's and ECE's BCa intervals covered 80-93% of the time.
#: Tables mark them with APPROXIMATE_MARK.
APPROXIMATE_CI = frozenset(
    {
        "ece_equal_width",
        "ece_equal_mass",
        "eod_sum",
        "equal_opportunity_ratio_gap",
        "equalized_odds_difference_max",
        "demographic_parity_difference",
        "worst_group_auroc",
        "worst_group_accuracy",
    }
)
APPROXIMATE_MARK = "≈"
APPROXIMATE_NOTE = (
    f"{APPROXIMATE_MARK} approximate CI: a |.|, max or min over groups is biased near "
    "parity and its interval under-covers (docs/intervals.md)"
)

#: The least support an interval needs, in patients counted from labels and groups, by
#: what the metric counts (``benchmark.stats.intervals`` reads it; set from the coverage
#: study, ``docs/intervals.md``, where below these the BCa intervals covered less than 93%):
#: ``positive``: a group's positive patients (TPR, the TPR gap); ``negative``: its negative
#: patients (FPR: a small rate at a clinical threshold, so it needs more); ``rarer_class``:
#: the rarer class's patients (AUROC and every metric of a whole split); ``group``: all of
#: a group's patients (selection rate, accuracy, disparate impact, calibration per group).
MIN_SUPPORT: dict[str, int] = {"positive": 15, "negative": 50, "rarer_class": 30, "group": 50}

#: Confidence intervals: the scorer's default bootstrap.
CI_PROTOCOL = (
    "95% BCa bootstrap intervals, 1,000 replicates per test split: patients are resampled "
    "with replacement (all rows of a patient move together), within each site where the "
    "task has sites, and the BCa acceleration comes from a jackknife that leaves out one "
    "patient at a time (200 blocks of patients beyond 200 patients). The seed is "
    "SeedSequence([task seed, crc32(split)]), so two models scored on the same task see the "
    "same resamples. A metric undefined on a replicate is left out of that replicate; if "
    "more than 5% are left out the interval is not reported. An interval is also withheld "
    "when too few patients support it, counted from labels and groups: fewer than "
    f"{MIN_SUPPORT['positive']} positive patients for a group's TPR or TPR gap, "
    f"{MIN_SUPPORT['negative']} negative patients for its FPR, {MIN_SUPPORT['rarer_class']} "
    f"patients of the rarer class for AUROC, {MIN_SUPPORT['group']} patients of a group for "
    "a metric over the whole group (selection rate, accuracy, disparate impact): in "
    "MedFail's coverage study "
    "(docs/intervals.md), intervals on less support covered the truth less than 93% of the "
    "time. The shift drop, computed from two independently resampled splits, has a "
    "percentile interval. Each report records the method of every interval."
)

#: The values a stored metric can take, as (pattern, low, high) on the metric name, first
#: match wins; a value or CI bound outside is impossible, so a report holding one is refused.
#: Every metric must be finite; a name no pattern matches is checked for finiteness only.
METRIC_RANGES: tuple[tuple[str, float, float], ...] = (
    (r"shift_robustness_.+", -math.inf, 1.0),  # (m_ID - m_OOD) / m_ID with m >= 0
    (r"relative_(ce|mce)", -math.inf, math.inf),  # E_cs - E_clean may be negative
    (r"eod_sum", 0.0, 2.0),  # |dTPR| + |dFPR|
    (r".+_of_ceiling", 0.0, math.inf),  # a model's alignment over the raters' own
    (r"shap_importance|counterfactual_(proximity|sparsity)", 0.0, math.inf),
    (r"counterfactual_(found|validity|changed)", 0.0, 1.0),
    (r"rater_kappa|trust_rank_correlation|counterfactual_delta_p", -1.0, 1.0),
    (
        r"(rater_)?(saliency_dice|pointing_game|relevance_mass|pixel_auroc)|shortcut_mass"
        r"|counterfactual_peak_moved|degenerate_maps",
        0.0,
        1.0,
    ),
    (r"disparate_impact|equal_opportunity_ratio_gap|ce|mce", 0.0, math.inf),  # ratios
    (r"(kl|wasserstein)_(max|mean)|mmd2_threshold", 0.0, math.inf),  # divergences
    (r"mmd2", -math.inf, math.inf),  # the unbiased estimate may fall below 0
    (
        r"mmd2_p_value|shift_flagged|c2st_auroc|(estimated|observed|val)_prevalence",
        0.0,
        1.0,
    ),
    (r"threshold_drift|.+_gap|ood_minus_id_.+|balanced_error_increase", -1.0, 1.0),
    (
        r"(robust_)?(auroc|auprc|accuracy|f1|sensitivity)|sensitivity_at_specificity|brier"
        r"|ece_.+|selection_rate|tpr|fpr|worst_group_.+|attack_success_rate"
        r"|demographic_parity_(difference|ratio)|equalized_odds_difference_max"
        r"|(clean_|mean_)?balanced_error",
        0.0,
        1.0,
    ),
)
#: Slack for float rounding at a range's ends.
RANGE_SLACK = 1e-9


def metric_range(metric: str) -> tuple[float, float]:
    """The closed interval ``metric`` lives in (:data:`METRIC_RANGES`); (-inf, inf) if unknown."""
    for pattern, low, high in METRIC_RANGES:
        if re.fullmatch(pattern, metric):
            return low, high
    return -math.inf, math.inf


#: Short column labels for 80-column tables (at most 10 characters); a table that uses them
#: prints the legend (:func:`legend`) mapping each back to the metric's name in the JSON.
METRIC_LABELS: dict[str, str] = {
    "auroc": "AUROC",
    "auprc": "AUPRC",
    "accuracy": "Acc",
    "f1": "F1",
    "sensitivity_at_specificity": "Sens@Sp",
    "threshold_drift": "Thr drift",
    "ece_equal_width": "ECE-unif",
    "ece_equal_mass": "ECE-mass",
    "brier": "Brier",
    "disparate_impact": "DI",
    "eod_sum": "EOD sum",
    "equal_opportunity_ratio_gap": "EOpp ratio",
    "equalized_odds_difference_max": "EqOdds",
    "demographic_parity_difference": "DP diff",
    "demographic_parity_ratio": "DP ratio",
    "worst_group_auroc": "WG AUROC",
    "tpr_gap": "TPR gap",
    "fpr_gap": "FPR gap",
    "auroc_gap": "AUROC gap",
    "worst_group_accuracy": "WG Acc",
    "robust_accuracy": "Rob Acc",
    "robust_auroc": "Rob AUROC",
    "robust_f1": "Rob F1",
    "robust_sensitivity": "Rob Sens",
    "attack_success_rate": "ASR",
    "balanced_error": "Bal err",
    "clean_balanced_error": "Clean err",
    "mean_balanced_error": "Mean err",
    "mce": "mCE",
    "relative_mce": "Rel mCE",
    "saliency_dice": "Sal Dice",
    "pointing_game": "Pointing",
    "relevance_mass": "Rel mass",
    "pixel_auroc": "Pix AUROC",
    "shortcut_mass": "Shortcut",
    "counterfactual_delta_p": "CF Δp",
    "counterfactual_peak_moved": "CF peak",
    "trust_rank_correlation": "Trust ρ",
    "saliency_dice_gap": "Dice gap",
    "degenerate_maps": "Degen",
    "saliency_dice_of_ceiling": "Dice/ceil",
    "pointing_game_of_ceiling": "Point/ceil",
    "relevance_mass_of_ceiling": "Mass/ceil",
    "pixel_auroc_of_ceiling": "PixA/ceil",
    "rater_saliency_dice": "Rater Dice",
    "rater_pointing_game": "Rater pt",
    "rater_relevance_mass": "Rater mass",
    "rater_pixel_auroc": "Rater PixA",
    "rater_kappa": "Fleiss κ",
    "shap_importance": "|SHAP|",
    "counterfactual_found": "CF found",
    "counterfactual_validity": "CF valid",
    "counterfactual_proximity": "CF prox",
    "counterfactual_sparsity": "CF sparse",
    "counterfactual_changed": "CF changed",
    "mmd2": "MMD²",
    "mmd2_p_value": "MMD p",
    "mmd2_threshold": "MMD τ",
    "shift_flagged": "Flagged",
    "kl_max": "KL max",
    "kl_mean": "KL mean",
    "wasserstein_max": "W1 max",
    "wasserstein_mean": "W1 mean",
    "c2st_auroc": "C2ST AUROC",
    "estimated_prevalence": "Prev BBSE",
    "observed_prevalence": "Prev true",
    "val_prevalence": "Prev val",
}
#: Prefixes of derived metrics and the short form of each (the rest is the base label).
_DERIVED = {"shift_robustness_": "Drop ", "ood_minus_id_": "Δ "}


def short_label(metric: str) -> str:
    """The table label of ``metric`` (the name itself when it has none)."""
    for prefix, short in _DERIVED.items():
        if metric.startswith(prefix):
            return short + short_label(metric.removeprefix(prefix))
    return METRIC_LABELS.get(metric, metric)


def legend(metrics: list[str]) -> str:
    """``label = name`` for each shortened metric in ``metrics``, in order, once each."""
    pairs = dict.fromkeys((short_label(m), m) for m in metrics)
    return "; ".join(f"{label} = {name}" for label, name in pairs if label.lower() != name)
