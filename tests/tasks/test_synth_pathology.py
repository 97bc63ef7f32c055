"""The H&E-like patch generator: determinism, atypia, the stain model and site shift."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmark.tasks.synth import pathology as p


def _params(*cohorts: dict[str, Any], size: int = 32, **kw: Any) -> p.Params:
    return p.Params.model_validate({"image_size": size, "cohorts": list(cohorts), **kw})


def _cohort(site: str = "A", n: int = 200, **kw: Any) -> dict[str, Any]:
    return {"site": site, "n": n, "prevalence": 0.5, **kw}


def _deconvolve(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel hematoxylin and eosin OD ``(n, H, W)`` by Ruifrok-Johnston unmixing."""
    od = -np.log(np.maximum(x.astype(np.float64), 1) / 255).transpose(0, 2, 3, 1)
    stains = np.array([p.RUIFROK_H, p.RUIFROK_E])
    stains /= np.linalg.norm(stains, axis=1, keepdims=True)  # (2, 3) unit rows
    conc = od @ np.linalg.pinv(stains)
    return conc[..., 0], conc[..., 1]


def test_determinism_and_cohort_independence() -> None:
    one = _params(_cohort(n=60, stain={"jitter": 0.2}, style={"blur": 0.5}))
    two = _params(_cohort(n=60, stain={"jitter": 0.2}, style={"blur": 0.5}), _cohort("B", 30))
    a, b = p.generate(one, 7), p.generate(one, 7)
    assert a.inputs.dtype == np.uint8 and a.inputs.shape == (60, 3, 32, 32)
    assert a.inputs.tobytes() == b.inputs.tobytes()
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert a.inputs.tobytes() != p.generate(one, 8).inputs.tobytes()
    both = p.generate(two, 7)
    assert both.inputs[:60].tobytes() == a.inputs.tobytes()
    pd.testing.assert_frame_equal(both.frame.iloc[:60], a.frame)
    assert both.frame["sample_id"].is_unique and both.frame["patient_id"].is_unique


def test_params_validation() -> None:
    with pytest.raises(ValidationError, match="distinct"):
        _params(_cohort(), _cohort())
    with pytest.raises(ValidationError):
        _params(_cohort(), size=16)
    with pytest.raises(ValidationError):
        _params(_cohort(stain={"hematoxylin": [0, 0, 0]}))
    with pytest.raises(ValidationError):
        _params(_cohort(stain={"h_gain": 2}))


def test_atypical_patches_have_more_larger_darker_nuclei() -> None:
    batch = p.generate(_params(_cohort(n=300)), 0)
    f = batch.frame
    pos = (f["label"] == "atypical").to_numpy()
    assert 0.35 < pos.mean() < 0.65
    counts = f["nuclei_count"].to_numpy()
    assert counts[pos].mean() > 1.5 * counts[~pos].mean()
    area = f["nuclear_area"].to_numpy()
    assert area[pos].mean() > 2 * area[~pos].mean()
    od_h, od_e = _deconvolve(batch.inputs)
    h_dominant = ((od_h > 0.6) & (od_h > od_e)).mean(axis=(1, 2))
    assert h_dominant[pos].mean() > 2 * h_dominant[~pos].mean()
    # effect 0: the classes look alike
    flat = p.generate(_params(_cohort(n=300, atypia={"effect": 0})), 0).frame
    fpos = (flat["label"] == "atypical").to_numpy()
    ratio = flat["nuclei_count"][fpos].mean() / flat["nuclei_count"][~fpos].mean()
    assert 0.9 < ratio < 1.1


def test_stain_model_is_beer_lambert_and_scales_shift_colour() -> None:
    base = p.generate(_params(_cohort(n=40)), 3)
    strong = p.generate(_params(_cohort(n=40, stain={"h_scale": 1.5})), 3)
    # same tissue (stain draws do not move the other streams): only the colour changes
    assert (base.frame["nuclei_count"] == strong.frame["nuclei_count"]).all()
    h0, e0 = _deconvolve(base.inputs)
    h1, e1 = _deconvolve(strong.inputs)
    nuclei = h0 > 0.5
    assert np.median(h1[nuclei] / h0[nuclei]) == pytest.approx(1.5, abs=0.05)
    assert np.median(e1[nuclei] - e0[nuclei]) == pytest.approx(0, abs=0.02)
    x0, x1 = base.inputs.astype(float), strong.inputs.astype(float)
    assert x1.mean() < x0.mean() - 3  # darker
    blueness = lambda x: (x[:, 2] - x[:, 0]).mean()  # noqa: E731
    assert blueness(x1) > blueness(x0) + 2  # bluer (hematoxylin absorbs red more than blue)
    pale = p.generate(_params(_cohort(n=40, stain={"h_scale": 0.6, "e_scale": 1.4})), 3)
    xp = pale.inputs.astype(float)
    assert (xp[:, 0] - xp[:, 1]).mean() > (x0[:, 0] - x0[:, 1]).mean() + 5  # pinker
    assert base.frame["stain"].iloc[0] == "H=ruifrok*1 E=ruifrok*1 jitter=0"
    assert (strong.frame["h_scale"] == 1.5).all() and (base.frame["scanner"] == "none").all()


def test_stain_shift_degrades_a_colour_histogram_classifier() -> None:
    def features(x: np.ndarray) -> np.ndarray:
        bins = (x // 32).reshape(len(x), 3, -1)
        return np.concatenate([(bins == b).mean(axis=2) for b in range(8)], axis=1)

    atypia = {"effect": 0.3}
    batch = p.generate(
        _params(
            _cohort("A", atypia=atypia),
            _cohort("A2", atypia=atypia),
            _cohort("B", atypia=atypia, stain={"h_scale": 0.5, "e_scale": 1.6}),
        ),
        0,
    )
    x, site = features(batch.inputs), batch.frame["site"].to_numpy()
    y = (batch.frame["label"] == "atypical").to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    model.fit(x[site == "A"], y[site == "A"])
    auc = {
        s: roc_auc_score(y[site == s], model.decision_function(x[site == s])) for s in ("A2", "B")
    }
    assert auc["A2"] > 0.85
    assert auc["A2"] - auc["B"] > 0.15
    assert abs(y[site == "A2"].mean() - y[site == "B"].mean()) < 0.12  # labels alike


def test_patients_share_label_demographics_and_stain_jitter() -> None:
    params = _params(_cohort(n=31, stain={"jitter": 0.3}), patches_per_patient=4)
    f = p.generate(params, 1).frame
    groups = f.groupby("patient_id", sort=False)
    assert groups.size().tolist() == [4] * 7 + [3]
    assert (
        (groups[["label", "label_clean", "sex", "age", "h_scale", "e_scale"]].nunique() == 1)
        .all()
        .all()
    )
    assert f["h_scale"].nunique() == 8 and f["h_scale"].std() > 0.05
    assert f["sample_id"].is_unique


def test_label_noise_changes_the_record_not_the_tissue() -> None:
    f = p.generate(_params(_cohort(n=400, label_noise={"fpr": 0.3})), 2).frame
    neg = f["label_clean"] == "benign"
    assert 0.2 < f.loc[neg, "label_flipped"].mean() < 0.4
    assert f.loc[~neg, "label_flipped"].sum() == 0
    flipped = f["label_flipped"] == 1
    # flipped negatives look benign: nuclei counts follow the true status
    assert f.loc[flipped, "nuclei_count"].mean() < 0.8 * f.loc[~neg, "nuclei_count"].mean()
    assert set(f["sex"]) == {"F", "M"} and f["age"].between(18, 95).all()
