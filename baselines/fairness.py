"""Fairness constraints through fairlearn: reductions in training, thresholds after it.

- :func:`fit_exponentiated_gradient` (Agarwal et al., 2018, "A reductions approach to fair
  classification"): fairlearn's ``ExponentiatedGradient`` around a logistic regression, under
  demographic parity or equalized odds (``eps`` = 0.01, at most 50 iterations: fairlearn's
  defaults), for tabular tasks. The result is a randomized classifier; its score is the
  probability that it predicts the positive class (fairlearn's ``_pmf_predict``, the mixture
  weight of the base classifiers voting positive).
- :func:`threshold_optimize` (Hardt, Price & Srebro, 2016, "Equality of opportunity in
  supervised learning"): fairlearn's ``ThresholdOptimizer`` on a trained model's scores,
  group-specific (randomized) thresholds under equalized odds that maximise balanced accuracy,
  fitted on the val split. It needs the group at prediction time, so its entry is flagged
  ``group_aware_inference``.

Both write their scores for every split to a predictions file (``predictions:PATH``), which
``medfail evaluate`` scores like any model: the probes that need only predictions run
(performance, calibration, fairness, shift); the ones that perturb inputs do not apply.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from benchmark.tasks.spec import GROUP_PREFIX
from benchmark.tasks.task import Task

CONSTRAINTS = {"dp": "DemographicParity", "eo": "EqualizedOdds"}


@contextmanager
def _fairlearn_quiet() -> Iterator[None]:
    """fairlearn 0.15 sets new Series keys with ``.at`` and upcasts on assignment, which
    pandas 3 deprecates (``Pandas4Warning``, raised from fairlearn's frames); the results
    are unaffected."""
    from pandas.errors import Pandas4Warning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=Pandas4Warning, module="fairlearn")
        yield


def fairness_attribute(task: Task) -> str:
    """The attribute a fairness method protects: the one the task's fairness validity claim
    names, else the first attribute of the spec."""
    validity = task.spec.validity
    if validity is not None and validity.attribute is not None:
        return validity.attribute
    return next(iter(task.spec.attributes))


def group_labels(task: Task, split: str) -> np.ndarray:
    """Each sample's group of :func:`fairness_attribute` in ``split``, as text."""
    _, _, meta = task.split(split)
    return meta[GROUP_PREFIX + fairness_attribute(task)].astype(str).to_numpy()


def logistic_pipeline(task: Task, seed: int) -> Pipeline:
    """One-hot categoricals, median imputation, standardisation, then an L2 logistic
    regression (C = 1, lbfgs): the base classifier of the reductions and its ERM twin."""
    f = task.spec.features
    coder = ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore"), list(f.categorical))],
        remainder="passthrough",
        sparse_threshold=0,
    )
    return Pipeline(
        [
            ("coder", coder),
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(max_iter=2000, random_state=seed)),
        ]
    )


def fit_exponentiated_gradient(task: Task, constraint: str, seed: int) -> object:
    """fairlearn's ``ExponentiatedGradient`` (``constraint``: dp or eo) around
    :func:`logistic_pipeline`, fitted on the train split with its groups."""
    from fairlearn import reductions

    if constraint not in CONSTRAINTS:
        raise ValueError(f"constraint {constraint!r}: one of {sorted(CONSTRAINTS)}")
    X, y, _ = task.split("train")
    np.random.seed(seed)  # the reductions draw nothing, but a base estimator might
    mitigator = reductions.ExponentiatedGradient(
        logistic_pipeline(task, seed),
        constraints=getattr(reductions, CONSTRAINTS[constraint])(),
        sample_weight_name="model__sample_weight",
    )
    with _fairlearn_quiet():
        mitigator.fit(X, y, sensitive_features=group_labels(task, "train"))
    return mitigator


def exponentiated_gradient_scores(mitigator: object, X: pd.DataFrame) -> np.ndarray:
    """P(positive) of the randomized classifier (fairlearn's ``_pmf_predict``: the mixture
    weight of base classifiers that predict positive; fairlearn has no public name for it)."""
    return mitigator._pmf_predict(X)[:, 1]  # type: ignore[attr-defined]


class _GivenScores(ClassifierMixin, BaseEstimator):
    """A fitted "classifier" whose input is its score: ``ThresholdOptimizer(prefit=True)``
    post-processes scores that another model computed."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> _GivenScores:
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        s = np.asarray(X, dtype=np.float64)[:, 0]
        return np.column_stack([1 - s, s])


def threshold_optimize(
    scores: dict[str, np.ndarray], task: Task, fit_split: str = "val"
) -> dict[str, np.ndarray]:
    """Post-processed P(positive) per split: equalized-odds thresholds that maximise balanced
    accuracy, fitted on ``fit_split``'s scores, labels and groups (fairlearn's
    ``ThresholdOptimizer``; randomized thresholds, reported as their probability)."""
    from fairlearn.postprocessing import ThresholdOptimizer

    _, y, _ = task.split(fit_split)
    fit_groups = group_labels(task, fit_split)
    post = ThresholdOptimizer(
        estimator=_GivenScores().fit(np.zeros((1, 1)), np.zeros(1)),
        constraints="equalized_odds",
        objective="balanced_accuracy_score",
        prefit=True,
        predict_method="predict_proba",
    )
    with _fairlearn_quiet():
        post.fit(scores[fit_split][:, None], y, sensitive_features=fit_groups)
    seen = set(fit_groups)
    out = {}
    for split, s in scores.items():
        groups = group_labels(task, split)
        unseen = sorted(set(groups) - seen)
        if unseen:
            raise ValueError(
                f"{split} has group {unseen[0]!r} of {fairness_attribute(task)}, absent from "
                f"{fit_split}; thresholds exist only for groups seen there"
            )
        # _pmf_predict: the probability that the randomized thresholds say positive
        out[split] = post._pmf_predict(s[:, None], sensitive_features=groups)[:, 1]
    return out


def write_scores(task: Task, scores: dict[str, np.ndarray], path: Path) -> Path:
    """``sample_id`` and ``proba_<class>`` for every split's samples (a training folder's
    model file: the caller moves the folder into place)."""
    negative, positive = task.spec.label.classes
    frames = [
        pd.DataFrame(
            {
                "sample_id": task.frame(split)["sample_id"].astype(str).to_numpy(),
                f"proba_{negative}": 1.0 - s,
                f"proba_{positive}": s,
            }
        )
        for split, s in scores.items()
    ]
    pd.concat(frames, ignore_index=True).to_parquet(path, index=False)
    return path
