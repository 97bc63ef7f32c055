"""Per-sample predictions: checked model outputs plus what every probe needs per split.

A model's ``predict_proba`` output is checked before anything is scored; the first
offending sample is named. Saved predictions (one Parquet file: sample id, split, patient,
site, y_true, one ``proba_<class>`` column per class, ``score`` and the ``group_*``
attributes) let anyone recompute every number in a report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.errors import PredictionError
from benchmark.models.protocol import Model
from benchmark.tasks.spec import GROUP_PREFIX

#: Probabilities may stray from [0, 1] and from summing to 1 by float rounding only.
RANGE_TOL = 1e-6
SUM_TOL = 1e-4


def check_proba(proba: object, ids: np.ndarray, n_classes: int, where: str) -> np.ndarray:
    """``proba`` as float64 ``(n, n_classes)`` clipped to [0, 1], or PredictionError."""
    arr = np.asarray(proba)
    n = len(ids)
    if arr.ndim != 2 or arr.shape != (n, n_classes):
        raise PredictionError(
            f"{where}: predict_proba returned shape {arr.shape}, expected ({n}, {n_classes}) "
            f"(one row per sample, one column per class)"
        )
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise PredictionError(f"{where}: predict_proba returned dtype {arr.dtype}, not real")
    arr = arr.astype(np.float64)
    checks = (
        (~np.isfinite(arr).all(axis=1), "a NaN or infinite probability"),
        (((arr < -RANGE_TOL) | (arr > 1 + RANGE_TOL)).any(axis=1), "a value outside [0, 1]"),
        (np.abs(arr.sum(axis=1) - 1) > SUM_TOL, "probabilities that do not sum to 1"),
    )
    bad = np.any([b for b, _ in checks], axis=0)
    if bad.any():
        i = int(np.argmax(bad))  # the first offending sample, whatever its faults
        faults = " and ".join(what for b, what in checks if b[i])
        raise PredictionError(
            f"{where}: sample {str(ids[i])!r} has {faults}: {arr[i].tolist()} "
            f"({int(bad.sum())} of {n} samples)"
        )
    return np.clip(arr, 0.0, 1.0)


@dataclass(frozen=True)
class SplitPredictions:
    """One split's checked predictions and the metadata probes use."""

    split: str
    sample_id: np.ndarray
    patient_id: np.ndarray
    site: np.ndarray | None
    y: np.ndarray  # class index
    proba: np.ndarray  # (n, n_classes)
    groups: dict[str, np.ndarray]  # attribute -> group label per sample

    @property
    def score(self) -> np.ndarray:
        """P(positive class) = column 1 of a binary task."""
        return self.proba[:, 1]

    def __len__(self) -> int:
        return len(self.y)


def predict_split(
    model: Model,
    X: pd.DataFrame | np.ndarray,
    y: np.ndarray,
    meta: pd.DataFrame,
    split: str,
    n_classes: int,
) -> SplitPredictions:
    """Run the model on one split and check its output."""
    ids = meta["sample_id"].to_numpy(dtype=str)
    by_id = getattr(model, "predict_ids", None)  # stored predictions are keyed by sample id
    try:
        raw = by_id(ids) if callable(by_id) else model.predict_proba(X)
    except PredictionError:
        raise
    except Exception as e:
        raise PredictionError(f"split {split}: the model failed to predict: {e}") from e
    proba = check_proba(raw, ids, n_classes, f"split {split}")
    groups = {
        c[len(GROUP_PREFIX) :]: meta[c].astype(str).to_numpy()
        for c in meta.columns
        if c.startswith(GROUP_PREFIX)
    }
    return SplitPredictions(
        split=split,
        sample_id=ids,
        patient_id=meta["patient_id"].astype(str).to_numpy(),
        site=meta["site"].astype(str).to_numpy() if "site" in meta.columns else None,
        y=np.asarray(y, dtype=np.int64),
        proba=proba,
        groups=groups,
    )


def to_frame(preds: dict[str, SplitPredictions], classes: list[str]) -> pd.DataFrame:
    """All splits in one long table (the ``--save-predictions`` file)."""
    frames = []
    for split, p in preds.items():
        cols: dict[str, object] = {
            "sample_id": p.sample_id,
            "split": split,
            "patient_id": p.patient_id,
            "site": p.site,
            "y_true": p.y,
        }
        cols.update({f"proba_{c}": p.proba[:, i] for i, c in enumerate(classes)})
        if len(classes) == 2:
            cols["score"] = p.score
        cols.update({f"{GROUP_PREFIX}{a}": g for a, g in p.groups.items()})
        frames.append(pd.DataFrame(cols))
    return pd.concat(frames, ignore_index=True)


def from_frame(df: pd.DataFrame, classes: list[str]) -> dict[str, SplitPredictions]:
    """Inverse of :func:`to_frame` (a saved predictions file back to per-split objects)."""
    out = {}
    proba_cols = [f"proba_{c}" for c in classes]
    for split, part in df.groupby("split", sort=False):
        has_site = part["site"].notna().any()
        out[str(split)] = SplitPredictions(
            split=str(split),
            sample_id=part["sample_id"].to_numpy(dtype=str),
            patient_id=part["patient_id"].to_numpy(dtype=str),
            site=part["site"].to_numpy(dtype=str) if has_site else None,
            y=part["y_true"].to_numpy(dtype=np.int64),
            proba=part[proba_cols].to_numpy(dtype=np.float64),
            groups={
                c[len(GROUP_PREFIX) :]: part[c].to_numpy(dtype=str)
                for c in part.columns
                if c.startswith(GROUP_PREFIX)
            },
        )
    return out
