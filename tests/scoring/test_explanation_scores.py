"""The explanation probe's numbers from a per-example table: each equals its hand-computed
or reference value (scipy's Spearman), degenerate maps are counted and left out, a failed
sanity check withholds, and whole patients are sampled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from benchmark.conformance.probes import scoring_context
from benchmark.scoring.predictions import SplitPredictions
from benchmark.scoring.probes.explanation import (
    ExplanationProbe,
    Masks,
    _method_columns,
    sample_patients,
)
from benchmark.scoring.probes.explanation_scores import RATER, delta_p, score_examples


def _examples(seed: int = 0, n_patients: int = 60) -> pd.DataFrame:
    """Two methods on id_test: pairs of rows per patient (with, then without a lesion)."""
    rng = np.random.default_rng(seed)
    n = 2 * n_patients
    lesion = np.tile([1, 0], n_patients)
    base = pd.DataFrame(
        {
            "split": "id_test",
            "sample_id": [f"s{i:04d}" for i in range(n)],
            "patient_id": np.repeat([f"p{i:03d}" for i in range(n_patients)], 2),
            "site": np.repeat(np.where(np.arange(n_patients) % 3 == 0, "A", "B"), 2),
            "y_true": lesion,
            "score": rng.uniform(0, 1, n),
            "group_sex": np.repeat(np.where(np.arange(n_patients) % 2 == 0, "F", "M"), 2),
            "pair": np.where(lesion == 1, "with_lesion", "without_lesion"),
        }
    )
    for name in RATER:
        base[name] = np.where(lesion == 1, rng.uniform(0.5, 0.9, n), np.nan)
    base["rater_kappa"] = np.where(lesion == 1, rng.uniform(0.6, 0.9, n), np.nan)
    frames = []
    for method in ("gradcam", "integrated_gradients"):
        f = base.assign(method=method)
        for name in ("saliency_dice", "pointing_game", "relevance_mass", "pixel_auroc"):
            f[name] = np.where(lesion == 1, rng.uniform(0, 1, n), np.nan)
        f["shortcut_mass"] = np.where(rng.random(n) < 0.5, rng.uniform(0, 1, n), np.nan)
        f["counterfactual_peak_moved"] = np.where(lesion == 1, rng.integers(0, 2, n), np.nan)
        bad = rng.random(n) < 0.1
        f["degenerate"] = bad.astype(float)
        for name in ("saliency_dice", "pointing_game", "relevance_mass", "pixel_auroc"):
            f.loc[bad, name] = np.nan
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def _value(rows: list, metric: str, attribute: str | None = None, group: str | None = None):
    found = [m for m in rows if (m.metric, m.attribute, m.group) == (metric, attribute, group)]
    assert len(found) == 1, (metric, attribute, group)
    return found[0]


def test_every_number_equals_its_hand_computed_value() -> None:
    ctx = scoring_context(n_boot=200)
    ex = _examples()
    rows, _ = score_examples(ctx, ex, {})
    gc = ex[ex.method == "gradcam"].reset_index(drop=True)
    dice = gc.saliency_dice.to_numpy()
    assert _value(rows, "saliency_dice", "gradcam").value == pytest.approx(np.nanmean(dice))
    assert _value(rows, "degenerate_maps", "gradcam").value == pytest.approx(gc.degenerate.mean())
    both = np.isfinite(dice) & np.isfinite(gc.rater_saliency_dice)
    ratio = dice[both].sum() / gc.rater_saliency_dice[both].sum()
    assert _value(rows, "saliency_dice_of_ceiling", "gradcam").value == pytest.approx(ratio)
    assert _value(rows, "rater_kappa").value == pytest.approx(np.nanmean(gc.rater_kappa))
    ok = np.isfinite(dice)
    rho = spearmanr(gc.score[ok], dice[ok]).statistic
    assert _value(rows, "trust_rank_correlation", "gradcam").value == pytest.approx(rho)
    sex = gc.group_sex.to_numpy()
    gap = np.nanmean(dice[sex == "M"]) - np.nanmean(dice[sex == "F"])
    assert _value(rows, "saliency_dice_gap", "gradcam/sex", "M").value == pytest.approx(gap)
    site_a = _value(rows, "saliency_dice", "gradcam/site", "A").value
    assert site_a == pytest.approx(np.nanmean(dice[gc.site.to_numpy() == "A"]))
    score = gc.score.to_numpy()
    assert _value(rows, "counterfactual_delta_p").value == pytest.approx(
        (score[0::2] - score[1::2]).mean()
    )
    mass = _value(rows, "shortcut_mass", "integrated_gradients").value
    ig = ex[ex.method == "integrated_gradients"]
    assert mass == pytest.approx(ig.shortcut_mass.mean())  # pandas skips NaN
    ci = _value(rows, "saliency_dice", "gradcam")
    assert ci.ci_low < ci.value < ci.ci_high and ci.interval == "bca"


def test_delta_p_pairs_rows_by_patient_whatever_their_order() -> None:
    rows = pd.DataFrame(
        {
            "patient_id": ["a", "b", "a", "b", "c"],
            "pair": ["without_lesion", "with_lesion", "with_lesion", "without_lesion", "none"],
            "score": [0.2, 0.9, 0.7, 0.4, 0.5],
        }
    )
    out = delta_p(rows)
    assert np.isnan(out[[0, 3, 4]]).all()
    assert out[1] == pytest.approx(0.5) and out[2] == pytest.approx(0.5)


def test_a_failed_sanity_check_withholds_that_method_only() -> None:
    ctx = scoring_context(n_boot=50)
    rows, _ = score_examples(ctx, _examples(), {"gradcam": {"passed": False}})
    dice = _value(rows, "saliency_dice", "gradcam")
    assert dice.value is None and "failed the sanity check" in dice.reason
    assert _value(rows, "saliency_dice", "integrated_gradients").value is not None
    assert _value(rows, "degenerate_maps", "gradcam").value is not None  # counts stay
    assert _value(rows, "rater_saliency_dice").value is not None  # the ceiling stays


def test_the_probe_replays_its_stored_table_with_the_same_numbers() -> None:
    ctx = scoring_context(n_boot=50)
    ex = _examples(seed=3)
    direct, _ = score_examples(ctx, ex, {})
    ctx.examples = {"explanation": ex}
    replay = ExplanationProbe(measured={"sanity": {}}).run(ctx)
    assert [m.model_dump() for m in replay.metrics] == [m.model_dump() for m in direct]


def test_degenerate_maps_are_counted_and_not_scored() -> None:
    maps = np.zeros((3, 4, 4))
    maps[0, 1, 1] = 1.0  # a real map
    maps[1, 0, 0] = np.nan  # NaN
    # maps[2] is constant
    lesion = np.zeros((3, 4, 4), dtype=bool)
    lesion[:, 1, 1] = True
    cols = _method_columns(maps, Masks(lesion, None, None, None), tolerance=0)
    assert cols["degenerate"].tolist() == [0.0, 1.0, 1.0]
    assert cols["saliency_dice"][0] == 1.0 and np.isnan(cols["saliency_dice"][1:]).all()
    assert cols["pointing_game"][0] == 1.0 and np.isnan(cols["pointing_game"][1:]).all()


def test_whole_patients_are_sampled_and_the_sample_is_seeded() -> None:
    ids = np.repeat([f"p{i}" for i in range(50)], 2)
    p = SplitPredictions("x", ids, ids, None, np.zeros(100, int), np.full((100, 2), 0.5), {})
    rows = sample_patients(p, 31, seed=4)
    assert (
        len(rows) == 30 and (np.bincount(np.unique(ids[rows], return_inverse=True)[1]) == 2).all()
    )
    assert np.array_equal(rows, sample_patients(p, 31, seed=4))
    assert not np.array_equal(rows, sample_patients(p, 31, seed=5))
    assert len(sample_patients(p, None, seed=0)) == 100
