"""The ICU telemetry generator: determinism, physiology, learnable labels and each shift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from benchmark.tasks.synth.base import LabelNoise
from benchmark.tasks.synth.icu import (
    ARTEFACT_VALUES,
    CHANNELS,
    CLASSES,
    DISPLAY_RANGE,
    Cohort,
    Params,
    generate,
)

HR, SPO2, RR, MAP, TEMP = range(5)


def _params(*cohorts: Cohort, **kwargs: object) -> Params:
    return Params(cohorts=list(cohorts), **kwargs)


def _one(seed: int = 0, **kwargs: object) -> tuple[pd.DataFrame, np.ndarray]:
    fields = {"site": "a", "n": 400, "prevalence": 0.3, **kwargs}
    batch = generate(_params(Cohort(**fields)), seed)
    return batch.frame, batch.inputs


def _features(x: np.ndarray) -> np.ndarray:
    """Per channel: mean of the last 30 steps minus mean of the first 30 (1-min grid)."""
    return x[:, :, -30:].mean(-1) - x[:, :, :30].mean(-1)


def _y(frame: pd.DataFrame, column: str = "label_clean") -> np.ndarray:
    return (frame[column] == CLASSES[1]).to_numpy().astype(int)


def test_same_seed_same_bytes_other_seed_differs() -> None:
    shifted = Cohort(
        site="b",
        n=150,
        prevalence=0.4,
        drift={"spo2": {"offset_per_hour": -2.0}},
        noise={"sd": {"hr": 2.0}, "salt_pepper": 0.01},
        dropout={"channels": {"rr": 0.3}, "intermittent": 3.0},
        sampling_minutes=5,
    )
    params = _params(Cohort(site="a", n=200, prevalence=0.3), shifted)
    first, again, other = generate(params, 3), generate(params, 3), generate(params, 4)
    assert first.inputs.dtype == np.float32
    assert first.inputs.shape == (350, len(CHANNELS), 120)
    assert first.inputs.tobytes() == again.inputs.tobytes()
    pd.testing.assert_frame_equal(first.frame, again.frame)
    assert first.frame["sample_id"].is_unique
    assert first.inputs.tobytes() != other.inputs.tobytes()
    assert not first.frame["onset_minute"].equals(other.frame["onset_minute"])


def test_adding_a_cohort_leaves_the_first_unchanged() -> None:
    a = Cohort(site="a", n=120, prevalence=0.3)
    alone = generate(_params(a), 9)
    both = generate(_params(a, Cohort(site="b", n=80, prevalence=0.5, effect=0.5)), 9)
    assert both.inputs[:120].tobytes() == alone.inputs.tobytes()
    pd.testing.assert_frame_equal(both.frame.iloc[:120], alone.frame)
    assert both.frame["sample_id"].iloc[120] == "b-0000120"


def test_values_bounded_and_plausible_without_artefacts() -> None:
    frame, x = _one(noise={"sd": {"spo2": 1.0, "hr": 3.0}}, n=600)
    assert np.isfinite(x).all()
    assert (x >= DISPLAY_RANGE[0]).all() and (x <= DISPLAY_RANGE[1]).all()
    assert x[:, SPO2].max() <= 100 and x[:, HR].min() >= 20 and x[:, HR].max() <= 250
    stable = x[_y(frame) == 0]
    medians = np.median(stable, axis=(0, 2))
    assert 65 < medians[HR] < 90 and 94 < medians[SPO2] < 99 and 12 < medians[RR] < 20
    assert 70 < medians[MAP] < 95 and 36.4 < medians[TEMP] < 37.4
    assert (x.std(axis=2) > 0).all()  # every series varies
    assert set(frame["sex"]) == {"F", "M"} and frame["age"].between(18, 90).all()
    positive = _y(frame) == 1
    assert frame.loc[positive, "onset_minute"].between(120, 180).all()
    assert frame.loc[~positive, "onset_minute"].isna().all()


def test_deterioration_is_learnable_and_vanishes_with_effect_zero() -> None:
    def auroc(effect: float) -> float:
        train_frame, train_x = _one(0, n=600, effect=effect)
        test_frame, test_x = _one(1, n=600, effect=effect)
        model = LogisticRegression(max_iter=1000).fit(_features(train_x), _y(train_frame))
        return roc_auc_score(_y(test_frame), model.predict_proba(_features(test_x))[:, 1])

    assert auroc(1.0) > 0.75
    assert abs(auroc(0.0) - 0.5) < 0.12
    frame, x = _one(2, n=600)  # the prodrome's direction on each channel
    f, y = _features(x), _y(frame) == 1
    diff = f[y].mean(0) - f[~y].mean(0)
    assert diff[HR] > 3 and diff[RR] > 1 and diff[MAP] < -2 and diff[SPO2] < -0.5


def test_drift_moves_the_channel_by_the_asked_offset() -> None:
    drift = {"temp": {"offset": 0.5}, "spo2": {"offset_per_hour": -2.0}}
    frame0, x0 = _one(5)
    frame1, x1 = _one(5, drift=drift)
    assert frame0["drift"].eq("none").all()
    assert set(frame1["drift"]) == {"temp:+0.5;spo2:-2/h"}
    np.testing.assert_allclose(x1[:, TEMP] - x0[:, TEMP], 0.5, atol=1e-4)
    hours = np.arange(120) / 60.0
    unclipped = x0[:, SPO2] < 100  # the undrifted reading was not cut at the display maximum
    assert unclipped.mean() > 0.8
    expected = np.broadcast_to(-2.0 * hours, unclipped.shape)
    got = x1[:, SPO2] - x0[:, SPO2]
    # SpO2 is displayed in whole %: the drift shows up to the display rounding
    np.testing.assert_allclose(got[unclipped], expected[unclipped], atol=1 + 1e-4)
    assert abs((got[unclipped] - expected[unclipped]).mean()) < 0.05
    for other in (HR, RR, MAP):
        assert x1[:, other].tobytes() == x0[:, other].tobytes()


def test_drift_moves_a_models_calibration() -> None:
    train_frame, train_x = _one(0, n=600)
    model = LogisticRegression(max_iter=1000).fit(_features(train_x), _y(train_frame))
    frame, clean_x = _one(1, n=600)
    _, drifted_x = _one(1, n=600, drift={"spo2": {"offset_per_hour": -3.0}})
    p_clean = model.predict_proba(_features(clean_x))[:, 1]
    p_drifted = model.predict_proba(_features(drifted_x))[:, 1]
    prevalence = _y(frame).mean()
    assert abs(p_clean.mean() - prevalence) < 0.05
    assert p_drifted.mean() - prevalence > 0.1  # false alarms: a falling SpO2 reading


def test_whole_channel_dropout_and_intermittent_gaps() -> None:
    frame, x = _one(7, n=800, dropout={"channels": {"spo2": 0.3}})
    missing = np.isnan(x)
    whole = missing[:, SPO2].all(axis=1)
    assert 0.24 < whole.mean() < 0.36
    assert (missing[:, SPO2].any(axis=1) == whole).all()  # all or nothing
    assert not missing[:, [HR, RR, MAP, TEMP]].any()
    assert (frame["dropped_channels"] == np.where(whole, "spo2", "")).all()
    np.testing.assert_allclose(frame["missing_share"], np.where(whole, 0.2, 0.0))

    _, gappy = _one(7, n=300, dropout={"intermittent": 6.0, "gap_minutes": 5.0})
    share = np.isnan(gappy).mean()
    assert 0.2 < share < 0.55  # about 1 - exp(-6/h * 5 min)
    assert np.isnan(gappy).any(axis=2).mean() > 0.95 and not np.isnan(gappy).all(axis=2).any()


def test_sampling_interval_holds_values_within_blocks() -> None:
    frame, x = _one(8, n=200, sampling_minutes=5)
    blocks = x.reshape(200, len(CHANNELS), 24, 5)
    assert (blocks == blocks[..., :1]).all()
    # a new reading each block (displayed values are rounded, so some repeat by chance)
    assert (np.diff(blocks[..., 0], axis=-1) != 0).mean() > 0.6
    assert frame["sampling_minutes"].eq(5.0).all()
    _, every = _one(8, n=200)
    within = np.diff(every.reshape(200, len(CHANNELS), 24, 5), axis=-1)
    assert (within != 0).mean() > 0.5  # sampled every minute: values move inside blocks
    with pytest.raises(ValidationError, match="multiple"):
        _params(Cohort(site="a", n=10, prevalence=0.5, sampling_minutes=2.5), step_minutes=2)


def test_salt_and_pepper_rate() -> None:
    frame, x = _one(4, n=300, noise={"salt_pepper": 0.02})
    outside = (x < DISPLAY_RANGE[0]) | (x > DISPLAY_RANGE[1])
    assert 0.017 < outside.mean() < 0.023
    extremes = (x == ARTEFACT_VALUES[0]) | (x == ARTEFACT_VALUES[1])
    assert (extremes == outside).all()
    assert (x[:, HR] == 300).any() and (x[:, SPO2] == 0).any()
    assert set(frame["noise"]) == {"salt_pepper:0.02"}
    _, clean = _one(4, n=300)
    assert not ((clean < DISPLAY_RANGE[0]) | (clean > DISPLAY_RANGE[1])).any()


def test_label_noise_only_in_the_asked_group() -> None:
    noise = LabelNoise(fnr=0.4, only={"sex": "F"})
    frame, _ = _one(6, n=3000, prevalence=0.5, label_noise=noise)
    flipped = frame["label_flipped"] == 1
    positive = frame["label_clean"] == CLASSES[1]
    women = frame["sex"] == "F"
    assert 0.33 < flipped[positive & women].mean() < 0.47
    assert not flipped[~women].any() and not flipped[~positive].any()
    assert (frame.loc[flipped, "label"] == CLASSES[0]).all()


def test_params_are_validated() -> None:
    a = Cohort(site="a", n=10, prevalence=0.5)
    with pytest.raises(ValidationError, match="distinct"):
        _params(a, a)
    with pytest.raises(ValidationError):
        Cohort(site="a", n=10, prevalence=0.5, drift={"ecg": {"offset": 1.0}})
    with pytest.raises(ValidationError):
        Cohort(site="a", n=10, prevalence=0.5, dropout={"channels": {"hr": 1.5}})
    with pytest.raises(ValidationError, match="age"):
        Cohort(site="a", n=10, prevalence=0.5, age=(70, 40))
