"""A model the tests can reason about: one feature through a sigmoid."""

from __future__ import annotations

import numpy as np
import pandas as pd


class Feature:
    """P(positive) = sigmoid(scale * X[column])."""

    def __init__(self, column: str, scale: float = 1.0) -> None:
        self.column, self.scale = column, scale

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + np.exp(-self.scale * X[self.column].to_numpy(dtype=float)))
        return np.column_stack([1 - p, p])
