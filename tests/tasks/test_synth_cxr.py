"""The chest-radiograph generator and the scanner styles: determinism, masks, raters,
shortcuts, label noise, learnable sex and lesions, counterfactual pairs and style effects."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy import ndimage
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmark.tasks.synth import style as st
from benchmark.tasks.synth.base import LabelNoise, SynthBatch
from benchmark.tasks.synth.cxr import (
    CLASSES,
    Cohort,
    Params,
    cohort_scene,
    generate,
    lung_field,
    render,
)
from benchmark.tasks.synth.style import ScannerStyle

QUIET = ScannerStyle(noise_level=0.0)
OBVIOUS = {"contrast": (0.25, 0.35), "size": (3.0, 5.0), "opacity_size": (5.0, 8.0)}


def _params(*cohorts: Cohort, **kwargs: object) -> Params:
    return Params(cohorts=list(cohorts), **kwargs)


def _cohort(**kwargs: object) -> Cohort:
    return Cohort(**{"site": "a", "n": 300, "prevalence": 0.5, **kwargs})


def _batch(size: int = 64, seed: int = 0, **kwargs: object) -> tuple[Params, SynthBatch]:
    """One cohort of :func:`_cohort` and its batch."""
    params = _params(_cohort(**kwargs), image_size=size)
    return params, generate(params, seed)


def _y(frame: pd.DataFrame, column: str = "label_clean") -> np.ndarray:
    return (frame[column] == CLASSES[1]).to_numpy()


def _hf_energy(x: np.ndarray) -> float:
    """Mean squared difference of horizontally adjacent pixels (high-frequency energy)."""
    return float(np.mean(np.diff(x.astype(np.float64), axis=-1) ** 2))


# ---------------------------------------------------------------- shapes and determinism


def test_shapes_and_columns() -> None:
    params = _params(_cohort(n=40), image_size=48, raters=2)
    b = generate(params, 1)
    assert b.inputs.shape == (40, 1, 48, 48) and b.inputs.dtype == np.uint8
    assert b.masks.shape == (40, 48, 48) and b.masks.dtype == np.uint8
    assert b.rater_masks.shape == (40, 2, 48, 48) and b.rater_masks.dtype == np.uint8
    assert list(b.frame.columns) == [
        "sample_id",
        "patient_id",
        "site",
        "label",
        "label_clean",
        "label_flipped",
        "sex",
        "age",
        "marker",
        "line",
        "lesion_type",
        "lesion_area",
        "scanner",
    ]
    f = b.frame
    assert set(f.sex) <= {"F", "M"} and set(f.lesion_type) <= {"none", "nodule", "opacity"}
    assert f.age.between(20, 90).all() and np.allclose(f.age, f.age.round(1))
    assert (f.scanner == "default").all()
    assert generate(_params(_cohort(n=5)), 0).rater_masks is None


def test_same_seed_same_bytes_other_seed_differs() -> None:
    params = _params(
        _cohort(n=300, marker={"strength": 0.5, "base_rate": 0.3}, line={"base_rate": 0.3}),
        _cohort(site="b", n=60, style={"blur": 1.0, "noise": "poisson", "bias_field": 0.2}),
        raters=2,
    )
    first, again, other = generate(params, 3), generate(params, 3), generate(params, 4)
    for name, arr in first.arrays().items():
        assert arr.tobytes() == again.arrays()[name].tobytes(), name
    pd.testing.assert_frame_equal(first.frame, again.frame)
    assert first.inputs.tobytes() != other.inputs.tobytes()
    assert not first.frame.equals(other.frame)
    assert first.frame.sample_id.is_unique and len(first) == 360
    assert first.frame.sample_id.iloc[300] == "b-0000300"


def test_cohorts_are_independent() -> None:
    alone = generate(_params(_cohort(n=120)), 5)
    both = generate(_params(_cohort(n=120), _cohort(site="b", n=50, female=0.9)), 5)
    assert both.inputs[:120].tobytes() == alone.inputs.tobytes()
    assert both.masks[:120].tobytes() == alone.masks.tobytes()
    pd.testing.assert_frame_equal(both.frame.iloc[:120], alone.frame)


def test_scene_re_renders_the_batch_and_raters_do_not_change_images() -> None:
    params, b = _batch()
    scene = cohort_scene(params, 0, 0)
    again = render(scene, 64, params.cohorts[0].style)
    assert again.images.tobytes() == b.inputs.tobytes()
    assert again.masks.tobytes() == b.masks.tobytes()
    with_raters = generate(params.model_copy(update={"raters": 3}), 0)
    assert with_raters.inputs.tobytes() == b.inputs.tobytes()


def test_params_validation() -> None:
    with pytest.raises(ValidationError, match="distinct"):
        _params(_cohort(), _cohort())
    with pytest.raises(ValidationError, match="strength"):
        _cohort(counterfactual_pairs=True, marker={"strength": 0.5})
    with pytest.raises(ValidationError, match="size"):
        _cohort(lesion={"size": (5.0, 2.0)})
    with pytest.raises(ValidationError):
        _params(_cohort(), image_size=16)
    with pytest.raises(ValidationError):
        _cohort(age=(50.0, 20.0))


# ---------------------------------------------------------------- masks and raters


def test_masks_follow_true_lesions_inside_lungs() -> None:
    params = _params(_cohort(label_noise={"fnr": 0.3, "fpr": 0.2}))
    b = generate(params, 2)
    clean, area = _y(b.frame), b.masks.sum(axis=(1, 2))
    assert (area[~clean] == 0).all() and (area[clean] > 0).all()
    assert (b.frame.lesion_area.to_numpy() == area).all()
    assert (b.frame.lesion_type[~clean] == "none").all()
    assert b.frame.label_flipped.sum() > 0  # noisy labels did not move the masks
    lungs = lung_field(cohort_scene(params, 2, 0), 64)
    assert (lungs[b.masks.astype(bool)] > 0).all()
    assert np.mean(lungs[b.masks.astype(bool)] >= 0.5) > 0.97


def test_mask_marks_where_the_lesion_brightened_the_image() -> None:
    _, b = _batch(style=QUIET, lesion={"contrast": (0.15, 0.3)})
    x = b.inputs[:, 0].astype(np.float64)
    gaps = []
    for i in np.flatnonzero(_y(b.frame)):
        m = b.masks[i].astype(bool)
        ring = ndimage.binary_dilation(m, iterations=3) & ~ndimage.binary_dilation(m)
        gaps.append(x[i][m].mean() - x[i][ring].mean())
    assert np.mean(np.array(gaps) > 0) > 0.9
    assert np.mean(gaps) > 10  # grey levels


def test_rater_masks_differ_a_little_from_consensus() -> None:
    b = generate(_params(_cohort(), raters=3), 0)
    m, r = b.masks.astype(bool), b.rater_masks.astype(bool)
    neg = ~_y(b.frame)
    assert not r[neg].any()
    dice = [
        2 * (m[i] & r[i, k]).sum() / (m[i].sum() + r[i, k].sum())
        for i in np.flatnonzero(~neg)
        for k in range(3)
    ]
    assert 0.6 < np.mean(dice) < 0.97
    assert np.mean(np.array(dice) < 1) > 0.5  # most rater masks are not the consensus
    assert not np.array_equal(r[:, 0], r[:, 1])


# ---------------------------------------------------------------- shortcuts and labels


def test_shortcut_strength_one_copies_the_recorded_label() -> None:
    cohort = _cohort(
        marker={"strength": 1.0, "base_rate": 0.5},
        line={"strength": 1.0},
        label_noise={"fpr": 0.2},
    )
    f = generate(_params(cohort), 1).frame
    noisy = _y(f, "label")
    assert (f.marker.to_numpy() == noisy).all() and (f.line.to_numpy() == noisy).all()
    assert (f.marker.to_numpy() != _y(f)).any()  # follows the recorded, not the true label


def test_shortcut_strength_zero_is_decorrelated() -> None:
    cohort = _cohort(n=400, marker={"strength": 0.0, "base_rate": 0.5})
    f = generate(_params(cohort), 2).frame
    assert 0.35 < f.marker.mean() < 0.65
    assert abs(np.corrcoef(f.marker, _y(f, "label"))[0, 1]) < 0.2  # 4 SE at n = 400
    assert f.line.sum() == 0  # base_rate 0


def test_marker_and_line_are_visible_and_never_in_masks() -> None:
    cohort = _cohort(
        prevalence=0.3,
        marker={"base_rate": 0.5, "corner": "top_right", "glyph": "L"},
        line={"base_rate": 0.5},
    )
    params = _params(cohort)
    b = generate(params, 3)
    f = b.frame
    marker, line = f.marker.to_numpy().astype(bool), f.line.to_numpy().astype(bool)
    assert 0.3 < marker.mean() < 0.7 and 0.3 < line.mean() < 0.7
    bright = (b.inputs[:, 0, :16, 48:] >= 200).sum(axis=(1, 2))  # glyph level 0.92 = 235
    assert (bright[marker] >= 20).all()  # the glyph L: 28 pixels
    assert np.mean(bright[~marker] > 0) < 0.1  # bright shoulders, rarely
    assert (b.masks[~_y(f)] == 0).all()  # shortcuts on negatives leave the masks empty

    # toggling a shortcut changes only its own pixels, which it brightens
    scene = cohort_scene(params, 3, 0)
    for name, box in (("marker", (slice(0, 16), slice(48, 64))), ("line", (slice(0, 64),))):
        toggled = replace(scene, **{name: ~getattr(scene, name)})
        other = render(toggled, 64, cohort.style).images[:, 0].astype(int)
        x = b.inputs[:, 0].astype(int)
        changed = x != other
        outside = changed.copy()
        outside[(slice(None), *box)] = False
        assert not outside.any()
        has = (marker if name == "marker" else line)[:, None, None]
        assert (np.where(has, x - other, other - x)[changed] > 0).all()
        assert changed.any(axis=(1, 2)).mean() > 0.9
    top = b.inputs[:, 0, :2, 8:56].max(axis=(1, 2)).astype(int)
    assert np.median(top[line]) > np.median(top[~line]) + 40  # the tube enters at the top


def test_shortcut_masks_hold_exactly_the_pixels_the_shortcuts_change() -> None:
    cohort = _cohort(marker={"base_rate": 0.5, "corner": "top_right"}, line={"base_rate": 0.3})
    params = _params(cohort)
    b = generate(params, 5)
    shortcut = b.extra["shortcut_masks"].astype(bool)
    has = (b.frame.marker.to_numpy() | b.frame.line.to_numpy()).astype(bool)
    assert shortcut.any(axis=(1, 2)).tolist() == has.tolist()
    scene = cohort_scene(params, 5, 0)
    plain = replace(scene, marker=np.zeros_like(scene.marker), line=np.zeros_like(scene.line))
    clean = render(plain, 64, cohort.style).images[:, 0]
    changed = clean != b.inputs[:, 0]
    assert not (changed & ~shortcut).any()  # nothing outside the recorded pixels
    assert changed[shortcut].mean() > 0.9  # and the recorded pixels did change
    glyph = render(replace(plain, marker=scene.marker), 64, cohort.style).shortcut_masks
    assert not glyph[:, 16:].any() and not glyph[:, :, :48].any()  # the top-right glyph
    assert (glyph.sum(axis=(1, 2))[scene.marker] >= 20).all()


def test_label_noise_flips_at_the_rate_and_only_in_the_group() -> None:
    noise = LabelNoise(fnr=0.4, only={"sex": "F"})
    f = generate(_params(_cohort(n=400, label_noise=noise)), 4).frame
    flipped = f.label_flipped.to_numpy().astype(bool)
    pos_f = _y(f) & (f.sex == "F").to_numpy()
    assert not flipped[~pos_f].any()
    assert 0.25 < flipped[pos_f].mean() < 0.55
    assert (_y(f, "label")[flipped] == 0).all()


# ---------------------------------------------------------------- learnable signal


def _pooled(x: np.ndarray, cells: int = 16) -> np.ndarray:
    n, _, h, _ = x.shape
    f = h // cells
    return x[:, 0].reshape(n, cells, f, cells, f).mean(axis=(2, 4)).reshape(n, -1) / 255


def test_sex_is_detectable_from_pixels() -> None:
    b = generate(_params(_cohort(n=400)), 5)
    features, sex = _pooled(b.inputs), (b.frame.sex == "F").to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    model.fit(features[:300], sex[:300])
    auc = roc_auc_score(sex[300:], model.predict_proba(features[300:])[:, 1])
    assert 0.65 < auc < 0.995  # real but not perfect


def test_age_lowers_rib_contrast_and_enlarges_lungs() -> None:
    young = cohort_scene(_params(_cohort(age=(20.0, 30.0))), 0, 0)
    old = cohort_scene(_params(_cohort(age=(80.0, 90.0))), 0, 0)
    assert old.rib_contrast.mean() < 0.85 * young.rib_contrast.mean()
    assert old.lung_height.mean() > young.lung_height.mean()
    assert lung_field(old, 32).mean() > lung_field(young, 32).mean()


def test_obvious_lesions_are_detectable() -> None:
    params, b = _batch(size=32, lesion=OBVIOUS)
    lungs = lung_field(cohort_scene(params, 0, 0), 32) > 0.99
    tophat = ndimage.white_tophat(b.inputs[:, 0].astype(np.float32), size=(1, 5, 5))
    score = np.where(lungs, tophat, 0).max(axis=(1, 2))
    assert roc_auc_score(_y(b.frame), score) > 0.9
    opacity = (b.frame.lesion_type == "opacity").to_numpy()
    nodule = (b.frame.lesion_type == "nodule").to_numpy()
    assert b.frame.lesion_area[opacity].mean() > 1.5 * b.frame.lesion_area[nodule].mean()


# ---------------------------------------------------------------- counterfactual pairs


def test_counterfactual_pairs_differ_only_at_the_lesion() -> None:
    cohort = _cohort(n=120, counterfactual_pairs=True, marker={"base_rate": 0.5})
    params = _params(cohort, raters=2)
    b = generate(params, 6)
    f = b.frame
    assert len(b) == 240
    assert (f.pair.to_numpy()[0::2] == "with_lesion").all()
    assert (f.pair.to_numpy()[1::2] == "without_lesion").all()
    assert (f.patient_id.to_numpy()[0::2] == f.patient_id.to_numpy()[1::2]).all()
    for col in ("sex", "age", "marker", "line"):
        assert (f[col].to_numpy()[0::2] == f[col].to_numpy()[1::2]).all()
    assert (b.masks[1::2] == 0).all() and (b.rater_masks[1::2] == 0).all()
    assert (b.masks[0::2].sum(axis=(1, 2)) > 0).all()

    scene = cohort_scene(params, 6, 0)
    radius = scene.lesion_radius * 32  # pixels at 64 px
    grid = (2 * np.arange(64) + 1) / 64 - 1
    dy = (grid[None, :, None] - scene.lesion_y[:, None, None]) * 32
    dx = (grid[None, None, :] - scene.lesion_x[:, None, None]) * 32
    far = np.hypot(dx, dy) > 4.5 * radius[:, None, None] + 1  # beyond the profile's support
    with_, without = b.inputs[0::2, 0].astype(int), b.inputs[1::2, 0].astype(int)
    assert (with_ >= without).all()  # lesions only brighten
    assert (with_[far] == without[far]).all()
    assert (with_ != without).any(axis=(1, 2)).all()


def test_pairs_column_for_mixed_cohorts_and_rendered_counterfactual() -> None:
    params = _params(_cohort(n=50), _cohort(site="b", n=20, counterfactual_pairs=True))
    b = generate(params, 7)
    assert (b.frame.pair[:50] == "none").all() and len(b) == 90
    scene = cohort_scene(params, 7, 0)
    flipped = render(scene, 64, params.cohorts[0].style, lesion=~scene.lesion)
    pos = _y(b.frame.iloc[:50])
    assert (flipped.masks[pos] == 0).all() and (flipped.masks[~pos].sum(axis=(1, 2)) > 0).all()
    assert not np.array_equal(flipped.images, b.inputs[:50])


# ---------------------------------------------------------------- style


def test_style_changes_statistics_in_the_expected_direction() -> None:
    def images(**style: object) -> np.ndarray:
        return generate(_params(_cohort(n=64, style=style)), 8).inputs

    base, noisy = images(), images(noise_level=0.08)
    blurred, brighter = images(blur=1.5), images(offset=0.1)
    assert _hf_energy(noisy) > 1.5 * _hf_energy(base)
    assert _hf_energy(blurred) < 0.7 * _hf_energy(base)
    assert brighter.mean() > base.mean() + 15
    assert images(contrast=0.5).std() < 0.7 * base.std()
    assert images(resolution=0.5).tobytes() != base.tobytes()
    b = generate(_params(_cohort(n=5, style={"blur": 1.0, "offset": 0.1})), 0)
    assert (b.frame.scanner == "blur=1,offset=0.1").all()


def test_style_operators_are_normalised_and_identities_hold() -> None:
    for op in (st.gaussian_operator(40, 1.3), st.resample_operator(40, 0.3)):
        assert np.allclose(op.sum(axis=1), 1, atol=1e-5)
    assert np.array_equal(st.resample_operator(32, 1.0), np.eye(32, dtype=np.float32))
    x = np.random.default_rng(0).random((3, 2, 24, 20), dtype=np.float32)
    rng = np.random.default_rng(0)
    assert np.allclose(st.apply_style(x, ScannerStyle(noise_level=0), rng), x, atol=1e-6)
    same = st.apply_separable(x, st.resample_operator(24, 1.0), st.resample_operator(20, 1.0))
    assert np.allclose(same, x, atol=1e-6)
    blurred = st.apply_separable(x, st.gaussian_operator(24, 1.0), st.gaussian_operator(20, 1.0))
    ref = np.einsum(
        "hk,nckl,wl->nchw", st.gaussian_operator(24, 1.0), x, st.gaussian_operator(20, 1.0)
    )
    assert np.allclose(blurred, ref, atol=1e-5)
    field = st.bias_field(rng, 4, 24, 20, 0.3)
    assert np.allclose(np.abs(np.log(field)).reshape(4, -1).max(axis=1), 0.3, atol=1e-5)


def test_style_noise_has_the_stated_moments() -> None:
    rng = np.random.default_rng(1)
    z = st.normal_noise(rng, (400_000,), 2.0)
    assert z.dtype == np.float64 and abs(z.mean()) < 0.02 and abs(z.std() - 2.0) < 0.02
    flat = np.full((1, 1, 200, 200), 0.5, dtype=np.float32)
    out = st.apply_style(flat, ScannerStyle(noise="poisson", noise_level=0.05), rng)
    assert abs(out.mean() - 0.5) < 0.002  # mean count 200: normal approximation
    assert abs(out.std() - 0.05 * np.sqrt(0.5)) < 0.002
    dark = np.full((1, 1, 200, 200), 0.02, dtype=np.float32)
    out = st.apply_style(dark, ScannerStyle(noise="poisson", noise_level=0.1), rng)
    counts = out * 100  # mean count 2: exact Poisson, whole counts
    assert np.allclose(counts, np.round(counts), atol=1e-3)
    assert abs(counts.mean() - 2) < 0.05 and abs(counts.var() - 2) < 0.1


def test_breast_shadow_scales_womens_lower_lungs_only() -> None:
    _, base = _batch(seed=3, n=120)
    _, same = _batch(seed=3, n=120, breast_shadow=1.0)
    _, dense = _batch(seed=3, n=120, breast_shadow=5.0)
    assert base.inputs.tobytes() == same.inputs.tobytes()  # the default is the scale 1
    women = (base.frame["sex"] == "F").to_numpy()
    assert 0 < women.sum() < len(women)
    diff = dense.inputs.astype(float) - base.inputs.astype(float)
    assert np.abs(diff[~women]).max() == 0  # men unchanged, pixel for pixel
    lower, upper = diff[women][:, 0, 40:56].mean(), diff[women][:, 0, 4:16].mean()
    assert lower > 3 and lower > 5 * abs(upper)  # brighter over the lower lung fields
