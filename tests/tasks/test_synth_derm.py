"""The dermatology-like generator: determinism, masks, skin-tone contrast and shortcuts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from benchmark.tasks.synth import derm as d


def _params(*cohorts: dict[str, Any], size: int = 48) -> d.Params:
    return d.Params.model_validate({"image_size": size, "cohorts": list(cohorts)})


def _cohort(site: str = "A", n: int = 300, **kw: Any) -> dict[str, Any]:
    return {"site": site, "n": n, "prevalence": 0.5, **kw}


def _inside_outside(x: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean grey level (0-255) inside and outside each image's mask."""
    grey = x.astype(np.float64).mean(axis=1)
    m = masks.astype(bool)
    inside = (grey * m).sum(axis=(1, 2)) / m.sum(axis=(1, 2))
    outside = (grey * ~m).sum(axis=(1, 2)) / (~m).sum(axis=(1, 2))
    return inside, outside


def test_determinism_and_cohort_independence() -> None:
    markers = {"ink": {"base_rate": 0.5}, "ruler": {"base_rate": 0.5}, "style": {"blur": 0.5}}
    one = _params(_cohort(n=50, **markers))
    a, b = d.generate(one, 5), d.generate(one, 5)
    assert a.inputs.shape == (50, 3, 48, 48) and a.inputs.dtype == np.uint8
    assert a.masks is not None and b.masks is not None
    assert a.masks.shape == (50, 48, 48) and a.masks.dtype == np.uint8
    assert a.inputs.tobytes() == b.inputs.tobytes() and a.masks.tobytes() == b.masks.tobytes()
    pd.testing.assert_frame_equal(a.frame, b.frame)
    other = d.generate(one, 6)
    assert other.inputs.tobytes() != a.inputs.tobytes()
    assert other.masks is not None and other.masks.tobytes() != a.masks.tobytes()
    both = d.generate(_params(_cohort(n=50, **markers), _cohort("B", 20)), 5)
    assert both.masks is not None
    assert both.inputs[:50].tobytes() == a.inputs.tobytes()
    assert both.masks[:50].tobytes() == a.masks.tobytes()
    pd.testing.assert_frame_equal(both.frame.iloc[:50], a.frame)
    assert both.frame["sample_id"].is_unique


def test_params_validation() -> None:
    with pytest.raises(ValidationError, match="sum to 1"):
        _params(_cohort(tone_shares={"I": 0.5, "II": 0.4}))
    with pytest.raises(ValidationError):
        _params(_cohort(tone_shares={"VII": 1.0}))
    with pytest.raises(ValidationError, match="distinct"):
        _params(_cohort(), _cohort())
    with pytest.raises(ValidationError):
        _params(_cohort(ink={"strength": 1.5}))


def test_masks_cover_every_lesion_and_lesions_are_darker() -> None:
    batch = d.generate(_params(_cohort()), 0)
    masks = batch.masks
    assert masks is not None
    assert set(np.unique(masks)) == {0, 1}
    assert (masks.sum(axis=(1, 2)) > 10).all()  # benign and malignant alike
    border = np.concatenate([masks[:, 0], masks[:, -1], masks[:, :, 0], masks[:, :, -1]], 1)
    assert not border.any()  # whole lesion inside the image
    assert np.allclose(batch.frame["lesion_area"], masks.mean(axis=(1, 2)))
    inside, outside = _inside_outside(batch.inputs, masks)
    assert (inside < outside).all()
    f = batch.frame
    pos = (f["label_clean"] == "malignant").to_numpy()
    area = f["lesion_area"].to_numpy()
    assert area[pos].mean() > 1.5 * area[~pos].mean()
    # effect 0: malignant lesions look like benign ones
    flat = d.generate(_params(_cohort(effect=0)), 0).frame
    fpos = (flat["label_clean"] == "malignant").to_numpy()
    ratio = flat["lesion_area"][fpos].mean() / flat["lesion_area"][~fpos].mean()
    assert 0.85 < ratio < 1.15


def test_darker_skin_lowers_lesion_contrast() -> None:
    batch = d.generate(_params(_cohort(tone_shares={"I": 0.5, "VI": 0.5})), 1)
    f = batch.frame
    assert set(f["skin_tone"]) == {"I", "VI"}
    assert (f.loc[f["skin_tone"] == "I", "tone_group"] == "light").all()
    assert (f.loc[f["skin_tone"] == "VI", "tone_group"] == "dark").all()
    assert batch.masks is not None
    inside, outside = _inside_outside(batch.inputs, batch.masks)
    dark = (f["tone_group"] == "dark").to_numpy()
    assert outside[dark].mean() < 0.6 * outside[~dark].mean()  # darker skin
    absolute = outside - inside
    relative = absolute / outside
    assert absolute[dark].mean() < 0.5 * absolute[~dark].mean()
    assert relative[dark].mean() < 0.9 * relative[~dark].mean()
    shares = d.generate(_params(_cohort(n=600, tone_shares={"III": 0.25, "V": 0.75})), 1).frame
    assert 0.65 < (shares["skin_tone"] == "V").mean() < 0.85
    assert set(shares["tone_group"]) == {"medium", "dark"}


def test_shortcuts_follow_strength() -> None:
    noise = {"fnr": 0.2, "fpr": 0.2}
    f = d.generate(_params(_cohort(ink={"strength": 1}, label_noise=noise)), 2).frame
    recorded = (f["label"] == "malignant").astype(int)
    assert (f["ink"] == recorded).all()  # follows the recorded label ...
    assert (f["ink"] != (f["label_clean"] == "malignant").astype(int)).any()  # ... not the truth
    assert (f["ruler"] == 0).all()
    g = d.generate(_params(_cohort(n=400, ruler={"strength": 0, "base_rate": 0.5})), 2).frame
    pos = (g["label"] == "malignant").to_numpy()
    ruler = g["ruler"].to_numpy()
    assert 0.4 < ruler.mean() < 0.6
    assert abs(ruler[pos].mean() - ruler[~pos].mean()) < 0.15
    h = d.generate(_params(_cohort(n=400, ruler={"strength": 0.8, "base_rate": 0})), 2).frame
    hpos = (h["label"] == "malignant").to_numpy()
    assert h["ruler"][~hpos].sum() == 0 and 0.7 < h["ruler"][hpos].mean() < 0.9


def test_markers_are_drawn_outside_the_lesion_and_keep_the_mask() -> None:
    def run(rate: float) -> Any:
        marker = {"strength": 0, "base_rate": rate}
        return d.generate(_params(_cohort(n=100, ink=marker, ruler=marker)), 3)

    bare, marked = run(0), run(1)
    assert bare.masks is not None and marked.masks is not None
    assert bare.masks.tobytes() == marked.masks.tobytes()
    assert (marked.frame["ink"] == 1).all() and (bare.frame["ink"] == 0).all()
    changed = (bare.inputs != marked.inputs).any(axis=1)  # (n, H, W)
    assert changed.sum(axis=(1, 2)).min() > 20  # every image got visible markers
    assert not (changed & bare.masks.astype(bool)).any()
    # the ruler sits on an image edge: every image has a fully repainted edge row or column
    edges = np.stack(
        [
            changed[:, 0].all(1),
            changed[:, -1].all(1),
            changed[:, :, 0].all(1),
            changed[:, :, -1].all(1),
        ]
    )
    assert edges.any(axis=0).all()
    # ink is violet: where only ink changed a pixel, it absorbs green more than red
    interior = np.zeros_like(changed)
    interior[:, 10:-10, 10:-10] = True
    ink = changed & interior
    od = np.log(np.maximum(bare.inputs, 1) / np.maximum(marked.inputs, 1).astype(float))
    assert od[:, 1][ink].mean() > 1.3 * od[:, 0][ink].mean() > 0


def test_label_noise_flips_at_the_asked_rate() -> None:
    f = d.generate(_params(_cohort(n=400, label_noise={"fnr": 0.3})), 4).frame
    pos = f["label_clean"] == "malignant"
    assert 0.2 < f.loc[pos, "label_flipped"].mean() < 0.4
    assert f.loc[~pos, "label_flipped"].sum() == 0
    only = {"fnr": 0.5, "only": {"tone_group": "dark"}}
    g = d.generate(_params(_cohort(n=400, label_noise=only)), 4).frame
    assert g.loc[g["tone_group"] != "dark", "label_flipped"].sum() == 0
    assert g.loc[g["tone_group"] == "dark", "label_flipped"].sum() > 5
    assert set(f["sex"]) == {"F", "M"} and f["age"].between(18, 95).all()
