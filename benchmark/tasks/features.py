"""The tensor contract of tabular tasks: how a feature frame becomes a float32 matrix.

Torch models of a tabular task receive ``encode(X)``: the numeric features as they are
(float32, NaN where missing), then one 0/1 column per level of each categorical feature,
levels being the sorted distinct values in ``train`` (an unseen or missing level is all
zeros). The levels depend only on the task build, so the contract is the same for every
model on a task version; scaling and imputation belong inside the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class TabularEncoding:
    numeric: tuple[str, ...]
    levels: dict[str, tuple[str, ...]]

    @classmethod
    def fit(cls, X: pd.DataFrame, numeric: list[str], categorical: list[str]) -> TabularEncoding:
        levels = {c: tuple(sorted(X[c].dropna().astype(str).unique())) for c in categorical}
        return cls(tuple(numeric), levels)

    @property
    def names(self) -> list[str]:
        """Column names of the encoded matrix, ``column=level`` for one-hot columns."""
        return [*self.numeric, *(f"{c}={v}" for c, lv in self.levels.items() for v in lv)]

    @property
    def width(self) -> int:
        return len(self.names)

    def __call__(self, X: pd.DataFrame) -> np.ndarray:
        """``(n, width)`` float32: numeric columns, then one-hot categorical levels."""
        blocks = [X[list(self.numeric)].to_numpy(dtype=np.float32, na_value=np.nan)]
        for column, lv in self.levels.items():
            values = X[column].astype("string").to_numpy(dtype=object, na_value=None)
            blocks.append(values[:, None] == np.array(lv, dtype=object)[None, :])
        return np.concatenate([b.astype(np.float32) for b in blocks], axis=1)
