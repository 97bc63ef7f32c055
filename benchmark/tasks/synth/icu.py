"""ICU / remote-monitoring telemetry: windows of vital signs before a sepsis-like deterioration.

Each sample is one patient's window of ``window`` steps of ``step_minutes`` (the task grid),
five channels in :data:`CHANNELS` order, float32 ``(n, 5, T)`` with NaN where missing:

- ``hr``: heart rate, beats/min;  ``spo2``: peripheral oxygen saturation, %;
- ``rr``: respiratory rate, breaths/min;  ``map``: mean arterial pressure, mmHg;
- ``temp``: core temperature, °C.

Readings are rounded to the monitor's display resolution (whole units; 0.1 °C for
temperature).

Time convention: step ``j`` is at ``j * step_minutes`` minutes from the window start, and the
window ends at ``end = window * step_minutes``. Label ``deteriorating`` = a deterioration
onset in ``(end, end + horizon_minutes]``; ``onset_minute`` records it (minutes from the
window start; NaN for ``stable``). Like a real early-warning task the label is visible in the
window: a prodrome starts ``prodrome_minutes`` (uniform in the range, 30-90 min by default)
before the onset and ramps linearly to full strength at the onset (HR, RR up; MAP, SpO2
down; fever, or hypothermia in 20 % of cases). When the prodrome is shorter than the lead
time it lies wholly after the window (about one positive in eight by default: not every
deterioration is announced).

Physiology (plausible, not clinical): per-patient baselines depending on age (years) and sex
(e.g. HR higher in women and lower with age, MAP higher with age); a circadian sinusoid
from a random clock time; two AR(1) components per channel (tau 3 min and 60 min) with
correlated innovations (HR and RR co-move, MAP moves against HR); true values are clipped
to a physiological range. ``effect`` scales the prodrome (0 = the label is not in the data).

Measurement chain per cohort, in order: instrument noise (plus ``noise.sd``) -> calibration
``drift`` (``gain * value + offset + offset_per_hour * hours since the window start``) ->
clip to the monitor's display range -> impulse artefacts (``noise.salt_pepper``: the
reading replaced by an implausible extreme outside the display range, e.g. HR 0 or 300,
SpO2 0) -> sampling (a reading every ``k = sampling_minutes / step_minutes`` steps, at steps
``0, k, 2k, ...``, carried forward over the next ``k - 1`` steps) -> ``dropout`` (a channel
missing for the whole window, and short intermittent gaps) as NaN.

Every random draw has a fixed size and order whatever the shift settings, so two cohorts
that differ only in shifts (or ``effect``) share the same patients under the same seed.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field, NonNegativeFloat, model_validator
from scipy.signal import lfilter

from benchmark.common.schema import StrictModel
from benchmark.tasks.synth.base import (
    CohortBase,
    GeneratorParams,
    SynthBatch,
    apply_label_noise,
    cohort_rng,
    draw_labels,
    metadata,
)

CLASSES = ("stable", "deteriorating")
CHANNELS = ("hr", "spo2", "rr", "map", "temp")
Channel = Literal["hr", "spo2", "rr", "map", "temp"]

# Per channel, in CHANNELS order (channel units).
_BASE = np.array([78.0, 97.0, 16.0, 82.0, 36.9])
_PER_FEMALE = np.array([4.0, 0.0, 0.0, -3.0, 0.1])
_PER_YEAR = np.array([-0.15, -0.04, 0.03, 0.2, -0.004])  # per year of age above 60
_BASE_SD = np.array([9.0, 1.0, 2.5, 8.0, 0.3])  # between-patient SD of the baseline
_CIRCADIAN = np.array([4.0, 0.0, 0.8, 4.0, 0.3])  # amplitude
_CIRCADIAN_PEAK_H = np.array([15.0, 15.0, 15.0, 15.0, 17.0])  # clock hour of the peak
_FAST_SD, _FAST_TAU = np.array([3.0, 0.6, 1.2, 3.0, 0.02]), 3.0  # AR(1) SD, minutes
_SLOW_SD, _SLOW_TAU = np.array([4.0, 0.7, 1.2, 4.0, 0.15]), 60.0
_CORR = np.array(  # innovation correlation
    [
        [1.0, -0.1, 0.5, -0.3, 0.1],
        [-0.1, 1.0, -0.2, 0.1, 0.0],
        [0.5, -0.2, 1.0, -0.1, 0.1],
        [-0.3, 0.1, -0.1, 1.0, 0.0],
        [0.1, 0.0, 0.1, 0.0, 1.0],
    ]
)
_DELTA = np.array([35.0, -6.0, 12.0, -25.0, 1.8])  # full prodrome at onset, effect 1
_HYPOTHERMIA = (0.2, -1.2)  # share of deteriorations with falling temperature, its delta
# Display resolution (readings per unit): whole beats, %, breaths and mmHg; 0.1 degC. The
# generator computes in float64 and rounds here, so last-bit differences between CPUs
# (SIMD and BLAS kernels) never reach the stored float32 values.
_RESOLUTION = np.array([1.0, 1.0, 1.0, 1.0, 10.0])[:, None]
_INSTRUMENT_SD = np.array([1.0, 0.4, 0.8, 2.0, 0.03])
# Rows low, high; shaped (2, C, 1) to broadcast over (n, C, T).
_PHYSIO = np.float64([[30, 60, 4, 30, 33], [220, 100, 60, 160, 42]])[:, :, None]
DISPLAY_RANGE = np.float64([[20, 50, 2, 20, 30], [250, 100, 70, 200, 43]])[:, :, None]
ARTEFACT_VALUES = np.float64([[0, 0, 0, 0, 20], [300, 0, 99, 300, 45]])[:, :, None]


class Drift(StrictModel):
    """Calibration of one channel: reading = ``gain * value + offset + offset_per_hour * h``,
    ``h`` = hours since the window start; offsets in the channel's units."""

    offset: float = 0.0
    offset_per_hour: float = 0.0
    gain: float = Field(default=1.0, gt=0, le=3)


class Noise(StrictModel):
    """Extra Gaussian measurement noise ``sd`` per channel (channel units, on top of the
    instrument noise) and the rate of impulse artefacts per reading and channel."""

    sd: dict[Channel, NonNegativeFloat] = Field(default_factory=dict)
    salt_pepper: float = Field(default=0.0, ge=0, le=0.5)


class Dropout(StrictModel):
    """Missing data. ``channels``: probability that a channel is missing (NaN) for the whole
    window; ``intermittent``: short gaps starting per channel per hour; ``gap_minutes``:
    their mean length (uniform from one step to about twice the mean)."""

    channels: dict[Channel, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict)
    intermittent: float = Field(default=0.0, ge=0, le=60)
    gap_minutes: float = Field(default=5.0, gt=0, le=240)


class Cohort(CohortBase):
    """One site's patients, monitor and acquisition shifts.

    ``female``: share of women; ``age``: uniform range in years; ``effect``: prodrome
    strength (1 = default, 0 = none); ``device``: monitor vendor recorded per sample;
    ``sampling_minutes``: the device's sampling interval (None = every task step).
    """

    female: float = Field(default=0.5, ge=0, le=1)
    age: tuple[float, float] = (18.0, 90.0)
    effect: float = Field(default=1.0, ge=0, le=5)
    device: str = Field(default="generic", min_length=1)
    drift: dict[Channel, Drift] = Field(default_factory=dict)
    noise: Noise = Field(default_factory=Noise)
    dropout: Dropout = Field(default_factory=Dropout)
    sampling_minutes: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _age(self) -> Cohort:
        lo, hi = self.age
        if not 0 <= lo < hi <= 120:
            raise ValueError("age must be [lo, hi] with 0 <= lo < hi <= 120")
        return self


class Params(GeneratorParams):
    """Task grid (``window`` steps of ``step_minutes``), label horizon and cohorts."""

    window: int = Field(default=120, ge=8, le=10_000)
    step_minutes: float = Field(default=1.0, gt=0, le=60)
    horizon_minutes: float = Field(default=60.0, gt=0, le=1440)
    prodrome_minutes: tuple[float, float] = (30.0, 90.0)
    cohorts: list[Cohort] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Params:
        lo, hi = self.prodrome_minutes
        if not 0 < lo <= hi:
            raise ValueError("prodrome_minutes must be [lo, hi] with 0 < lo <= hi")
        for c in self.cohorts:
            if c.sampling_minutes is not None:
                k = c.sampling_minutes / self.step_minutes
                if k < 1 - 1e-9 or abs(k - round(k)) > 1e-6:
                    raise ValueError(
                        f"{c.site}: sampling_minutes must be a multiple of step_minutes"
                    )
        return self


def _ar1(z: np.ndarray, sd: np.ndarray, tau: float, dt: float) -> np.ndarray:
    """Stationary AR(1) along the last axis from standard normals ``z`` ``(n, C, T)``,
    correlation ``exp(-dt / tau)`` per step and marginal SD ``sd`` per channel."""
    phi = float(np.exp(-dt / tau))
    e = z * (sd * np.sqrt(1 - phi**2)).astype(np.float64)[:, None]
    e[:, :, 0] = z[:, :, 0] * sd.astype(np.float64)  # first value from the stationary law
    return lfilter([1.0], [1.0, -phi], e, axis=-1).astype(np.float64)


def _summary(cohort: Cohort) -> tuple[str, str]:
    """Short text of the cohort's drift and noise shifts (``none`` when absent)."""
    drift = []
    for ch, d in cohort.drift.items():
        part = (f"{d.offset:+g}" if d.offset else "") + (
            f"{d.offset_per_hour:+g}/h" if d.offset_per_hour else ""
        )
        part += f"x{d.gain:g}" if d.gain != 1 else ""
        if part:
            drift.append(f"{ch}:{part}")
    noise = [f"{ch}:{v:g}" for ch, v in cohort.noise.sd.items() if v > 0]
    if cohort.noise.salt_pepper > 0:
        noise.append(f"salt_pepper:{cohort.noise.salt_pepper:g}")
    return ";".join(drift) or "none", ";".join(noise) or "none"


def _cohort(
    params: Params, cohort: Cohort, rng: np.random.Generator, start: int
) -> tuple[pd.DataFrame, np.ndarray]:
    n, t_len, dt, n_ch = cohort.n, params.window, params.step_minutes, len(CHANNELS)
    t = np.arange(t_len) * dt  # minutes from the window start
    end = t_len * dt

    clean = draw_labels(rng, n, cohort.prevalence)
    female = rng.random(n) < cohort.female
    age = rng.uniform(*cohort.age, size=n)
    lead = params.horizon_minutes * (1.0 - rng.random(n))  # (0, horizon]
    prodrome = rng.uniform(*params.prodrome_minutes, size=n)
    severity = rng.uniform(0.5, 1.5, size=n)[:, None] * rng.uniform(0.7, 1.3, size=(n, n_ch))
    hypothermic = rng.random(n) < _HYPOTHERMIA[0]
    base_z = rng.standard_normal((n, n_ch))
    clock_h = rng.uniform(0, 24, size=n)
    chol = np.round(np.linalg.cholesky(_CORR), 12)  # LAPACK's last bits vary by CPU
    fast = rng.standard_normal((n, n_ch, t_len), dtype=np.float64)
    slow = rng.standard_normal((n, n_ch, t_len), dtype=np.float64)
    meas_z = rng.standard_normal((n, n_ch, t_len), dtype=np.float64)
    art_u = rng.random((n, n_ch, t_len), dtype=np.float64)
    drop_u = rng.random((n, n_ch))
    gap_u = rng.random((n, n_ch, t_len), dtype=np.float64)

    # True physiology.
    base = (
        _BASE
        + _PER_FEMALE * female[:, None]
        + _PER_YEAR * (age[:, None] - 60.0)
        + _BASE_SD * base_z
    )
    clock = 2 * np.pi * (clock_h[:, None] + t / 60.0) / 24  # (n, T), radians
    peak = 2 * np.pi * _CIRCADIAN_PEAK_H / 24  # cos(clock - peak), expanded
    cos_c = (_CIRCADIAN * np.cos(peak)).astype(np.float64)[:, None]
    sin_c = (_CIRCADIAN * np.sin(peak)).astype(np.float64)[:, None]
    x = base.astype(np.float64)[:, :, None] + cos_c * np.cos(clock, dtype=np.float64)[:, None]
    x += sin_c * np.sin(clock, dtype=np.float64)[:, None]
    x += _ar1(chol @ fast, _FAST_SD, _FAST_TAU, dt)
    x += _ar1(chol @ slow, _SLOW_SD, _SLOW_TAU, dt)
    onset = np.where(clean == 1, end + lead, np.nan)
    ramp = np.clip((t - (onset - prodrome)[:, None]) / prodrome[:, None], 0, 1)
    ramp = np.nan_to_num(ramp, nan=0.0)  # stable patients: no prodrome
    delta = np.broadcast_to(_DELTA, (n, n_ch)).copy()
    delta[hypothermic, 4] = _HYPOTHERMIA[1]
    x += (cohort.effect * severity * delta)[:, :, None].astype(np.float64) * ramp[:, None, :]
    x = np.clip(x, *_PHYSIO)

    # Measurement: noise, drift, display range, artefacts, sampling, dropout.
    extra_sd = np.array([cohort.noise.sd.get(ch, 0.0) for ch in CHANNELS])
    sd = np.sqrt(_INSTRUMENT_SD**2 + extra_sd**2).astype(np.float64)
    x += sd[:, None] * meas_z
    drifts = [cohort.drift.get(ch, Drift()) for ch in CHANNELS]
    gain = np.array([d.gain for d in drifts], dtype=np.float64)[:, None]
    offset = np.array([d.offset for d in drifts])[:, None] + np.outer(
        [d.offset_per_hour for d in drifts], t / 60.0
    )
    x = x * gain + offset.astype(np.float64)
    x = np.clip(x, *DISPLAY_RANGE)
    x = np.round(x * _RESOLUTION) / _RESOLUTION  # what the monitor displays
    rate = cohort.noise.salt_pepper
    if rate > 0:
        low, high = ARTEFACT_VALUES
        x = np.where(art_u < rate, np.where(art_u < rate / 2, high, low), x)
    k = 1 if cohort.sampling_minutes is None else round(cohort.sampling_minutes / dt)
    if k > 1:
        x = x[:, :, (np.arange(t_len) // k) * k]  # last observation carried forward
    dropped = drop_u < np.array([cohort.dropout.channels.get(ch, 0.0) for ch in CHANNELS])
    x[dropped] = np.nan
    p_gap = min(1.0, cohort.dropout.intermittent * dt / 60.0)  # gap starts per step
    if p_gap > 0:
        gap_steps = max(1.0, cohort.dropout.gap_minutes / dt)
        starts = gap_u < p_gap
        length = 1 + np.floor(gap_u / p_gap * (2 * gap_steps - 1)).astype(np.int64)
        stop = np.where(starts, np.arange(t_len) + length, -1)
        x[np.maximum.accumulate(stop, axis=-1) > np.arange(t_len)] = np.nan

    sex = np.where(female, "F", "M").astype(object)
    device = np.full(n, cohort.device, dtype=object)
    noisy = apply_label_noise(rng, clean, cohort.label_noise, {"sex": sex, "device": device})
    drift_text, noise_text = _summary(cohort)
    names = np.asarray(CHANNELS)
    columns = {
        "sex": sex,
        "age": np.round(age, 1),
        "device": device,
        "onset_minute": onset,
        "prodrome_minutes": np.where(clean == 1, prodrome, np.nan),
        "drift": drift_text,
        "noise": noise_text,
        "dropped_channels": np.array([",".join(names[row]) for row in dropped], dtype=object),
        "sampling_minutes": float(k * dt),
        "missing_share": np.isnan(x).mean(axis=(1, 2)),  # NaN share of the window's values
    }
    return metadata(cohort.site, start, clean, noisy, CLASSES, columns), x


def generate(params: Params, seed: int) -> SynthBatch:
    """Telemetry windows of every cohort: ``inputs`` float32 ``(n, 5, window)``, NaN where
    missing; cohort ``i`` draws from ``cohort_rng(seed, i)``."""
    frames, arrays, start = [], [], 0
    for i, cohort in enumerate(params.cohorts):
        frame, x = _cohort(params, cohort, cohort_rng(seed, i), start)
        frames.append(frame)
        arrays.append(x)
        start += cohort.n
    return SynthBatch(
        pd.concat(frames, ignore_index=True), np.concatenate(arrays).astype(np.float32)
    )
