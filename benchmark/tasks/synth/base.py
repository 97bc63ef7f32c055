"""What every synthetic generator shares: the batch it returns, cohorts, seeds, label noise.

A generator turns validated params and one integer seed into a :class:`SynthBatch`: a
metadata table (one row per sample) and arrays aligned with it. Cohort ``i`` draws from
``default_rng([seed, i])``, so a cohort's samples do not depend on the other cohorts, and
the same params and seed always give the same bytes.

Metadata conventions (generators add their own attributes and shift columns):
``sample_id`` and ``patient_id`` (text, unique per generator call), ``site`` (text),
``label`` (class name, possibly noisy), ``label_clean`` (the class name before label
noise) and ``label_flipped`` (0/1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from benchmark.common.schema import StrictModel


@dataclass(frozen=True)
class SynthBatch:
    """Metadata rows plus aligned arrays.

    ``inputs``: images ``(n, C, H, W)`` uint8, or series ``(n, C, T)`` float32 with NaN
    where a value is missing. ``masks``: ``(n, H, W)`` uint8 ROI (1 = lesion), all zero
    for samples without a lesion. ``rater_masks``: ``(n, R, H, W)`` uint8, one per rater.
    """

    frame: pd.DataFrame
    inputs: np.ndarray
    masks: np.ndarray | None = None
    rater_masks: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.frame)
        for name, arr in self.arrays().items():
            if len(arr) != n:
                raise ValueError(f"{name} has {len(arr)} rows, metadata has {n}")

    def __len__(self) -> int:
        return len(self.frame)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array by name (``inputs``, ``masks``, ``rater_masks``, extras)."""
        out = {"inputs": self.inputs}
        if self.masks is not None:
            out["masks"] = self.masks
        if self.rater_masks is not None:
            out["rater_masks"] = self.rater_masks
        return {**out, **self.extra}


def concat(batches: Sequence[SynthBatch]) -> SynthBatch:
    """Stack batches row-wise (every batch must carry the same arrays)."""
    names = [tuple(b.arrays()) for b in batches]
    if len(set(names)) != 1:
        raise ValueError(f"batches carry different arrays: {sorted(set(names))}")
    arrays = {k: np.concatenate([b.arrays()[k] for b in batches]) for k in names[0]}
    frame = pd.concat([b.frame for b in batches], ignore_index=True)
    return SynthBatch(
        frame,
        arrays.pop("inputs"),
        arrays.pop("masks", None),
        arrays.pop("rater_masks", None),
        extra=arrays,
    )


def cohort_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of cohort ``index`` under ``seed`` (independent streams)."""
    return np.random.default_rng([seed, index])


class LabelNoise(StrictModel):
    """Class-conditional label flips, optionally confined to one group.

    ``fnr``: share of true positives recorded as negative (missed diagnoses); ``fpr``:
    share of true negatives recorded as positive. ``only``: apply the flips only to rows
    whose attribute equals the value, e.g. ``{sex: F}`` (group-dependent under-diagnosis).
    """

    fnr: float = Field(default=0.0, ge=0, lt=1)
    fpr: float = Field(default=0.0, ge=0, lt=1)
    only: dict[str, str] | None = None

    @model_validator(mode="after")
    def _one_group(self) -> LabelNoise:
        if self.only is not None and len(self.only) != 1:
            raise ValueError("only names exactly one attribute and its value")
        return self


class CohortBase(StrictModel):
    """One site's draw: how many samples, the prevalence and the label noise."""

    site: str = Field(min_length=1)
    n: int = Field(ge=1, le=1_000_000)
    prevalence: float = Field(gt=0, lt=1)
    label_noise: LabelNoise = Field(default_factory=LabelNoise)


class GeneratorParams(StrictModel):
    """What every generator's ``Params`` holds: cohorts, one per site (names distinct).

    Subclasses narrow ``cohorts`` to their own ``Cohort`` type; the check is inherited.
    """

    cohorts: list[CohortBase] = Field(min_length=1)

    @field_validator("cohorts")
    @classmethod
    def _distinct_sites(cls, v: list[CohortBase]) -> list[CohortBase]:
        sites = [c.site for c in v]
        if len(set(sites)) != len(sites):
            raise ValueError(f"cohort sites must be distinct: {sites}")
        return v


class Shortcut(StrictModel):
    """A spurious marker correlated with the recorded label: with probability ``strength``
    it is present exactly when the label is positive, otherwise with probability
    ``base_rate`` (``strength`` 0: no correlation)."""

    strength: float = Field(default=0.0, ge=0, le=1)
    base_rate: float = Field(default=0.0, ge=0, le=1)


def shortcut_presence(
    rng: np.random.Generator, s: Shortcut, n: int, label: np.ndarray | None = None
) -> np.ndarray:
    """Presence (bool) of shortcut ``s`` in ``n`` samples that follows the 0/1 ``label``
    with probability ``strength`` (no label: Bernoulli(``base_rate``) only). Draws two
    uniforms per sample whatever the settings, so streams stay aligned across configs."""
    follow, chance = rng.random(n), rng.random(n)
    base = chance < s.base_rate
    if label is None:
        return base
    return np.where(follow < s.strength, label.astype(bool), base)


def draw_labels(rng: np.random.Generator, n: int, prevalence: float) -> np.ndarray:
    """Bernoulli(prevalence) true labels as int8."""
    return (rng.random(n) < prevalence).astype(np.int8)


def apply_label_noise(
    rng: np.random.Generator, clean: np.ndarray, noise: LabelNoise, attrs: dict[str, np.ndarray]
) -> np.ndarray:
    """Noisy copy of the 0/1 ``clean`` labels under ``noise``; ``attrs`` holds group columns."""
    u = rng.random(len(clean))  # drawn even without noise: streams stay aligned across configs
    flip = np.where(clean == 1, u < noise.fnr, u < noise.fpr)
    if noise.only is not None:
        ((attr, value),) = noise.only.items()
        if attr not in attrs:
            raise ValueError(f"label_noise.only names {attr!r}; attributes: {sorted(attrs)}")
        in_group = attrs[attr].astype(str) == value
        if len(clean) and not in_group.any():
            seen = sorted(set(attrs[attr].astype(str).tolist()))
            raise ValueError(f"label_noise.only: no sample has {attr}={value!r}; values: {seen}")
        flip &= in_group
    return np.where(flip, 1 - clean, clean).astype(np.int8)


def metadata(
    site: str,
    start: int,
    clean: np.ndarray,
    noisy: np.ndarray,
    classes: tuple[str, str],
    columns: dict[str, np.ndarray],
) -> pd.DataFrame:
    """The standard metadata table of one cohort; ``start`` numbers samples across cohorts."""
    n = len(clean)
    ids = [f"{site}-{start + i:07d}" for i in range(n)]
    names = np.asarray(classes, dtype=object)
    frame = pd.DataFrame(
        {
            "sample_id": ids,
            "patient_id": ids,
            "site": site,
            "label": names[noisy],
            "label_clean": names[clean],
            "label_flipped": (noisy != clean).astype(np.int8),
        }
    )
    for name, values in columns.items():
        frame[name] = values
    return frame


def to_uint8(x: np.ndarray) -> np.ndarray:
    """[0, 1] floats to uint8 with rounding (values outside are clipped)."""
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)
