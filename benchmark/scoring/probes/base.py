"""The Probe contract and the scoring context every probe receives.

A probe is a small dataclass (its fields are its config) with ``name`` and
``run(ctx) -> ProbeResult``. The scorer builds one :class:`ScoringContext` per evaluation:
checked predictions per split, the threshold frozen on ``val``, and the bootstrap. A probe
computes each statistic through :meth:`ScoringContext.bootstrap`, so every number gets a
CI from the same resamples (the same seed gives the same resamples to every model, which
makes paired comparisons exact). Later probes (corruption, adversarial, explanation)
declare the model capabilities they need in ``requires``.
"""

from __future__ import annotations

import dataclasses
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from benchmark.models.protocol import Model
from benchmark.results.report import MetricResult, ProbeResult
from benchmark.scoring.predictions import SplitPredictions
from benchmark.stats.bootstrap import Resampler, percentile_ci
from benchmark.tasks.spec import TaskSpec

if TYPE_CHECKING:
    from benchmark.tasks.task import Task

#: A CI is not reported when more than this share of replicates is undefined.
MAX_UNDEFINED = 0.05

BatchFn = Callable[[np.ndarray], np.ndarray]
#: A metric's identity in a report: (probe, metric, split, attribute, group).
MetricKey = tuple[str, str, str, str | None, str | None]
#: Point value and bootstrap replicates of each metric :func:`emit` sees while recording.
Replicates = dict[MetricKey, tuple[float, np.ndarray]]

_RECORDING: ContextVar[Replicates | None] = ContextVar("medfail_replicates", default=None)


@contextmanager
def recording() -> Iterator[Replicates]:
    """Collect, for every metric the probes emit inside the block, its point value and its
    replicates (what paired comparisons need; a report keeps only the interval)."""
    found: Replicates = {}
    token = _RECORDING.set(found)
    try:
        yield found
    finally:
        _RECORDING.reset(token)


def split_seed(seed: int, split: str) -> int:
    """The bootstrap seed of one split: ``SeedSequence([seed, crc32(split)])``."""
    ss = np.random.SeedSequence([seed, zlib.crc32(split.encode())])
    return int(ss.generate_state(1)[0])


@dataclass
class ScoringContext:
    spec: TaskSpec
    model: Model
    predictions: dict[str, SplitPredictions]
    test_splits: tuple[str, ...]
    threshold: float
    n_boot: int = 1000
    level: float = 0.95
    seed: int = 0
    task: Task | None = None  # the scored task's data, for probes that re-run the model
    detail: Callable[[str, int, int], None] | None = None  # progress: (what, done, total)

    _memo: dict[Hashable, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def bootstrap(
        self, split: str, fn: BatchFn, key: Hashable | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``fn`` at unit weights (point, shape (m,)) and on every replicate (n_boot, m).

        Probes that need the same statistics (shift reuses performance) pass the same
        ``key`` and share one computation.
        """
        if key is not None and (split, key) in self._memo:
            return self._memo[split, key]
        out = bootstrap(self.predictions[split], fn, self.n_boot, split_seed(self.seed, split))
        if key is not None:
            self._memo[split, key] = out
        return out


def bootstrap(
    p: SplitPredictions, fn: BatchFn, n_boot: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Point value and replicates of ``fn``; patients resampled within sites."""
    resampler = Resampler(len(p), clusters=p.patient_id, strata=p.site, n_boot=n_boot, seed=seed)
    point = np.asarray(fn(np.ones((1, len(p)), dtype=np.int32)), dtype=np.float64).reshape(-1)
    reps = [np.asarray(fn(w), dtype=np.float64).reshape(len(w), -1) for w in resampler.weights()]
    return point, np.concatenate(reps) if reps else np.zeros((0, len(point)))


def interval(reps: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile CI per column, the share of undefined replicates, NaN CI above the cap."""
    undefined = np.isnan(reps).mean(axis=0) if len(reps) else np.ones(reps.shape[1])
    lo, hi = percentile_ci(reps, level) if len(reps) else (undefined * np.nan,) * 2
    drop = undefined > MAX_UNDEFINED
    return np.where(drop, np.nan, lo), np.where(drop, np.nan, hi), undefined


def emit(
    probe: str,
    split: str,
    names: list[str],
    point: np.ndarray,
    reps: np.ndarray,
    level: float,
    *,
    reasons: dict[str, str] | None = None,
    **keys: Any,
) -> list[MetricResult]:
    """MetricResults for columns ``names`` of a bootstrap, with reasons for undefined ones."""
    lo, hi, undefined = interval(reps, level)
    record = _RECORDING.get()
    out = []
    for i, name in enumerate(names):
        if record is not None:
            key = (probe, name, split, keys.get("attribute"), keys.get("group"))
            record[key] = (float(point[i]), reps[:, i].copy())
        reason = None
        if not np.isfinite(point[i]):
            reason = (reasons or {}).get(name, "undefined on this split")
        elif not np.isfinite(lo[i]):
            reason = f"CI not reported: {100 * undefined[i]:.0f}% of bootstrap replicates undefined"
        out.append(
            MetricResult.of(
                point[i], lo[i], hi[i], probe=probe, metric=name, split=split, reason=reason, **keys
            )
        )
    return out


class Probe(ABC):
    """One failure dimension. Subclasses are dataclasses; their fields are the config."""

    name: ClassVar[str]
    #: model capabilities the probe needs beyond predict_proba (see benchmark.models.protocol)
    requires: ClassVar[tuple[str, ...]] = ()

    def config(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def skip(self, why: str) -> ProbeResult:
        """A result with no metrics and the reason, for a probe that cannot run here."""
        return ProbeResult(
            name=self.name, config=self.config(), metrics=[], warnings=[f"{self.name} probe: {why}"]
        )

    @abstractmethod
    def run(self, ctx: ScoringContext) -> ProbeResult: ...


def class_counts_reason(p: SplitPredictions, what: str = "the split") -> str | None:
    """Why a ranking metric is undefined on these rows, or None if both classes occur."""
    n_pos = int((p.y == 1).sum())
    if n_pos == 0 or n_pos == len(p.y):
        only = "positives" if n_pos else "negatives"
        return f"{what} has only {only} ({len(p.y)} samples): undefined"
    return None


def subset(
    p: SplitPredictions, rows: np.ndarray, proba: np.ndarray | None = None
) -> SplitPredictions:
    """The rows ``rows`` of ``p`` (with other probabilities, if given)."""
    return SplitPredictions(
        split=p.split,
        sample_id=p.sample_id[rows],
        patient_id=p.patient_id[rows],
        site=p.site[rows] if p.site is not None else None,
        y=p.y[rows],
        proba=p.proba[rows] if proba is None else proba,
        groups={k: v[rows] for k, v in p.groups.items()},
    )


def rerun_blocker(ctx: ScoringContext, what: str) -> str | None:
    """Why a probe that re-runs the model on altered images cannot run here, or None."""
    array = ctx.spec.features.array
    if array is None or array.kind != "image":
        return "skipped: the task has no image inputs"
    if callable(getattr(ctx.model, "predict_ids", None)):
        return f"skipped: the model is a predictions file and cannot be re-run on {what}"
    if ctx.task is None:
        return "skipped: no task data in the scoring context"
    return None


def image_sample(
    ctx: ScoringContext, split: str, max_samples: int | None, tag: str
) -> tuple[SplitPredictions, np.ndarray, list[str]]:
    """The clean predictions and float32 images of ``split``, subsampled to ``max_samples``
    (a choice seeded from the bootstrap seed and ``tag``), and a warning when subsampled."""
    assert ctx.task is not None
    X, _, _ = ctx.task.split(split)
    clean = ctx.predictions[split]
    rows = np.arange(len(clean))
    warnings = []
    if max_samples is not None and len(rows) > max_samples:
        rng = np.random.default_rng(split_seed(ctx.seed, f"{tag}:{split}"))
        rows = np.sort(rng.choice(len(rows), max_samples, replace=False))
        warnings.append(
            f"{tag} probe: {len(rows)} of {len(clean)} {split} samples (seeded subsample)"
        )
    return subset(clean, rows), np.ascontiguousarray(X[rows], dtype=np.float32), warnings
