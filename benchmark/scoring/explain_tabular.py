"""The part of the explanation probe that runs a tabular model: SHAP values and DiCE
counterfactuals (the probe, :mod:`benchmark.scoring.probes.explanation`, loads this module
only when it has a tabular model to explain).

SHAP (the ``shap`` library), one value per explained row and feature of the task's spec:

- a scikit-learn pipeline ending in a tree ensemble shap reads (MedFail's gradient
  boosting): ``TreeExplainer`` on the ensemble (tree-path-dependent), inputs through the
  pipeline's own coder, values in the model's raw output (log-odds);
- any other model: ``PermutationExplainer`` on P(positive) with an independent masker
  over a stated background sample of ``train`` rows (seeded), categorical features passed
  as their level codes and decoded before the model sees them; values in probability units.

DiCE (``dice-ml``, the ``random`` method, model-agnostic): for false negatives at the frozen
threshold ``t`` (a positive with ``p < t``), up to ``total`` counterfactuals that reach
``p >= t`` while only mutable features change: the task's group attributes, its site and
any feature named like age, sex, race, ethnicity or site stay frozen. Queries with missing
values are skipped (DiCE samples complete rows). Each returned counterfactual is scored
again by the model here, so validity is measured, not assumed.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from benchmark.common.optional import heavy
from benchmark.models.protocol import Model
from benchmark.tasks.spec import TaskSpec

#: Feature names that are never changed by a counterfactual (besides the group attributes).
IMMUTABLE = re.compile(r"(^|_)(age|sex|gender|race|ethnicity|site)(_|$)", re.IGNORECASE)


@dataclass(frozen=True)
class Codes:
    """Categorical features as integer level codes (levels from ``train``; -1 = missing or
    unseen), so a numeric masker can permute them."""

    columns: list[str]
    levels: dict[str, list[str]]

    @classmethod
    def fit(cls, spec: TaskSpec, train: pd.DataFrame) -> Codes:
        f = spec.features
        levels = {c: sorted(train[c].dropna().astype(str).unique()) for c in f.categorical}
        return cls(list(f.names), levels)

    def encode(self, X: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(X), len(self.columns)), dtype=np.float64)
        for j, c in enumerate(self.columns):
            if c in self.levels:
                index = {v: i for i, v in enumerate(self.levels[c])}
                out[:, j] = [index.get(str(v), -1) if pd.notna(v) else -1 for v in X[c]]
            else:
                out[:, j] = pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=np.float64)
        return out

    def decode(self, Z: np.ndarray) -> pd.DataFrame:
        cols: dict[str, Any] = {}
        for j, c in enumerate(self.columns):
            if c in self.levels:
                lv = np.array([*self.levels[c], None], dtype=object)
                codes = np.where(np.isfinite(Z[:, j]), Z[:, j], -1).astype(int)
                cols[c] = lv[np.where((codes >= 0) & (codes < len(self.levels[c])), codes, -1)]
            else:
                cols[c] = Z[:, j]
        return pd.DataFrame(cols)


def _shap() -> Any:
    """The shap module; importing it makes matplotlib warn of a deprecation in shap's own
    colour maps (PendingDeprecationWarning, set_bad), which is not ours to act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return heavy("shap")


def _tree_pipeline(model: Model) -> Any | None:
    """The fitted scikit-learn pipeline behind ``model`` if it ends in a tree ensemble."""
    Pipeline = heavy("sklearn.pipeline", "Pipeline")
    estimator = getattr(model, "estimator", None)
    if not isinstance(estimator, Pipeline):
        return None
    last = estimator.steps[-1][1]
    trees = ("HistGradientBoosting", "GradientBoosting", "RandomForest", "ExtraTrees")
    return estimator if type(last).__name__.startswith(trees) else None


def shap_values(
    model: Model,
    spec: TaskSpec,
    train: pd.DataFrame,
    X: pd.DataFrame,
    *,
    background: int,
    seed: int,
) -> tuple[np.ndarray, str]:
    """SHAP values (n, features in ``spec.features.names`` order) and how they were made."""
    shap = _shap()
    names = list(spec.features.names)
    pipeline = _tree_pipeline(model)
    if pipeline is not None:
        coder, ensemble = pipeline[:-1], pipeline.steps[-1][1]
        Xt = coder.transform(X[names])
        values = np.asarray(shap.TreeExplainer(ensemble).shap_values(Xt), dtype=np.float64)
        if values.ndim == 3:  # one slice per class: the positive class's
            values = values[..., 1]
        order = [list(coder.get_feature_names_out()).index(c) for c in names]
        how = (
            f"TreeExplainer on {type(ensemble).__name__} (tree-path-dependent), inputs "
            "through the pipeline's coder; values in log-odds"
        )
        return values[:, order], how
    codes = Codes.fit(spec, train)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(train), min(background, len(train)), replace=False)
    masker = shap.maskers.Independent(
        codes.encode(train.iloc[np.sort(rows)]), max_samples=background
    )

    def positive(Z: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_proba(codes.decode(Z)), dtype=np.float64)[:, 1]

    explainer = shap.PermutationExplainer(positive, masker, seed=seed)
    found = explainer(codes.encode(X), max_evals=max(2 * len(names) + 1, 100), silent=True)
    how = (
        f"PermutationExplainer on P(positive), independent masker over {len(rows)} train "
        f"rows (seeded); categorical features as level codes; values in probability units"
    )
    return np.asarray(found.values, dtype=np.float64), how


def immutable_features(spec: TaskSpec) -> list[str]:
    """Features a counterfactual may not change: group attribute columns, the site column
    and features named like age, sex, race, ethnicity or site."""
    fixed = set(spec.group_columns.values()) | ({spec.site} if spec.site else set())
    return [c for c in spec.features.names if c in fixed or IMMUTABLE.search(c)]


@contextmanager
def _quiet() -> Iterator[None]:
    """DiCE draws a progress bar on stderr for every query and calls pandas in ways pandas
    deprecates (``inplace=``): neither is the user's to act on, so both stay out of sight."""
    with warnings.catch_warnings(), redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


class _DiceModel:
    """The sklearn-like face DiCE expects: ``predict_proba`` on its frames."""

    def __init__(self, model: Model, spec: TaskSpec) -> None:
        self.model, self.names, self.cats = (
            model,
            list(spec.features.names),
            spec.features.categorical,
        )

    def _frame(self, X: pd.DataFrame) -> pd.DataFrame:
        frame = X[self.names].copy()
        for c in self.cats:
            frame[c] = frame[c].astype(str)
        return frame

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict_proba(self._frame(X)), dtype=np.float64)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)


def counterfactuals(
    model: Model,
    spec: TaskSpec,
    train: pd.DataFrame,
    y_train: np.ndarray,
    queries: pd.DataFrame,
    threshold: float,
    *,
    total: int,
    seed: int,
) -> list[pd.DataFrame | None]:
    """Per query row, its counterfactuals (features only; None: DiCE found none or the row
    has a missing value)."""
    dice_ml = heavy("dice_ml")
    refused = heavy("raiutils.exceptions", "UserConfigValidationException")
    names = list(spec.features.names)
    vary = [c for c in names if c not in set(immutable_features(spec))]
    complete = train[names].notna().all(axis=1).to_numpy()
    data = train.loc[complete, names].copy()
    for c in spec.features.categorical:
        data[c] = data[c].astype(str)
    data["_label"] = np.asarray(y_train)[complete]
    numeric = list(spec.features.numeric)
    d = dice_ml.Data(dataframe=data, continuous_features=numeric, outcome_name="_label")
    m = dice_ml.Model(model=_DiceModel(model, spec), backend="sklearn")
    explainer = dice_ml.Dice(d, m, method="random")
    out: list[pd.DataFrame | None] = []
    for i in range(len(queries)):
        row = queries.iloc[[i]][names].copy()
        if row.isna().any(axis=None) or not vary:
            out.append(None)
            continue
        for c in spec.features.categorical:
            row[c] = row[c].astype(str)
        try:
            with _quiet():
                found = explainer.generate_counterfactuals(
                    row,
                    total_CFs=total,
                    desired_class=1,  # the positive class, whatever DiCE thinks p < 0.5 means
                    features_to_vary=vary,
                    stopping_threshold=threshold,
                    random_seed=seed + i,
                    verbose=False,
                )
        except (ValueError, refused):  # a query DiCE does not take (a value of a frozen
            out.append(None)  # feature outside the training range): no counterfactual
            continue
        cfs = found.cf_examples_list[0].final_cfs_df
        out.append(None if cfs is None or not len(cfs) else cfs[names].reset_index(drop=True))
    return out


def counterfactual_scores(
    model: Model,
    spec: TaskSpec,
    query: pd.DataFrame,
    found: pd.DataFrame,
    threshold: float,
    mad: pd.Series,
) -> dict[str, float]:
    """One query's counterfactual scores: ``valid`` (share with p >= t, rescored here),
    ``proximity`` (mean over counterfactuals of the mean |change| / MAD over numeric
    features), ``sparsity`` (mean number of features changed) and ``changed:<feature>``
    (share of counterfactuals changing it)."""
    names = list(spec.features.names)
    p = _DiceModel(model, spec).predict_proba(found)[:, 1]
    base = query[names].iloc[0]
    changed = pd.DataFrame(
        {
            c: (
                found[c].astype(str) != str(base[c])
                if c in spec.features.categorical
                else ~np.isclose(pd.to_numeric(found[c]).to_numpy(float), float(base[c]))
            )
            for c in names
        }
    )
    numeric = list(spec.features.numeric)
    scale = mad.reindex(numeric).replace(0, 1.0).fillna(1.0).to_numpy(float)
    delta = np.abs(found[numeric].to_numpy(float) - base[numeric].to_numpy(float)) / scale
    out = {
        "cf_valid": float(np.mean(p >= threshold)),
        "cf_proximity": float(delta.mean()) if numeric else 0.0,
        "cf_sparsity": float(changed.sum(axis=1).mean()),
    }
    out |= {f"cf_changed:{c}": float(changed[c].mean()) for c in names}
    return out
