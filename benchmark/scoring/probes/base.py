"""The Probe contract and the scoring context every probe receives.

A probe is a small dataclass (its fields are its config) with ``name`` and
``run(ctx) -> ProbeResult``. The scorer builds one :class:`ScoringContext` per evaluation:
checked predictions per split, the threshold frozen on ``val``, and the bootstrap. A probe
computes each statistic through :meth:`ScoringContext.bootstrap`, so every number gets a
CI from the same resamples (the same seed gives the same resamples to every model, which
makes paired comparisons exact).

Intervals (``ScoringContext.interval_method``, recorded in the report): ``"bca"`` (the
default since issue 26) is the BCa interval with a leave-one-patient-out jackknife
(:mod:`benchmark.stats.intervals`) wherever the statistic has one, the percentile interval
for statistics derived from independently resampled splits (the shift drop); and an
interval is withheld when its *support* is below its minimum
(:data:`~benchmark.stats.intervals.MIN_SUPPORT`, by what the metric counts), the
thresholds the coverage study found for 95% coverage (``docs/intervals.md``). Support
counts patients from labels and groups, never from the predictions: for a rate, the
patients of its denominator (a group's positive patients for its TPR); for AUROC, the
patients of the rarer class; for a comparison, the least of its terms'.
``"percentile"`` is the scorer before issue 26 (reports that say so are recomputed so).

Probes that re-run the model (corruption, adversarial, explanation) declare the model
capabilities they need in ``requires``.
"""

from __future__ import annotations

import dataclasses
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd

from benchmark.models.protocol import Model
from benchmark.results.report import IntervalMethod, MetricResult, ProbeResult
from benchmark.scoring.predictions import SplitPredictions
from benchmark.stats.bootstrap import Resampler, percentile_ci
from benchmark.stats.intervals import (
    MAX_JACKKNIFE_BLOCKS,
    MIN_SUPPORT,
    bca_interval,
    jackknife_weights,
)
from benchmark.tasks.spec import TaskSpec

if TYPE_CHECKING:
    from benchmark.tasks.task import Task

#: A CI is not reported when more than this share of replicates is undefined.
MAX_UNDEFINED = 0.05

BatchFn = Callable[[np.ndarray], np.ndarray]
#: A metric's identity in a report: (probe, metric, split, attribute, group).
MetricKey = tuple[str, str, str, str | None, str | None]


class Draws(NamedTuple):
    """A statistic's point values (m,), bootstrap replicates (n_boot, m) and, for BCa, its
    leave-one-patient-out jackknife values (k, m) (None: a percentile interval); as
    recorded by :func:`emit`, also the patients behind each column (m,) and the least
    support each column's interval needs (m,)."""

    point: np.ndarray
    reps: np.ndarray
    jack: np.ndarray | None = None
    support: np.ndarray | None = None
    minimum: np.ndarray | None = None

    def cols(self, index: slice | list[int]) -> Draws:
        """The columns ``index`` of every part."""
        jack = None if self.jack is None else self.jack[:, index]
        support = None if self.support is None else self.support[index]
        minimum = None if self.minimum is None else self.minimum[index]
        return Draws(self.point[index], self.reps[:, index], jack, support, minimum)


#: Each metric :func:`emit` sees while recording: its draws (one column).
Replicates = dict[MetricKey, Draws]

_RECORDING: ContextVar[Replicates | None] = ContextVar("medfail_replicates", default=None)


@contextmanager
def recording() -> Iterator[Replicates]:
    """Collect, for every metric the probes emit inside the block, its point value,
    replicates and jackknife (what paired comparisons need; a report keeps the interval)."""
    found: Replicates = {}
    token = _RECORDING.set(found)
    try:
        yield found
    finally:
        _RECORDING.reset(token)


def unrecord(rows: Sequence[MetricResult]) -> None:
    """Leave ``rows`` out of the active :func:`recording` (numbers a probe withholds after
    emitting them, such as a method that failed its sanity check, are not compared)."""
    found = _RECORDING.get()
    if found is not None:
        for m in rows:
            found.pop((m.probe, m.metric, m.split, m.attribute, m.group), None)


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
    interval_method: IntervalMethod = "bca"  # or "percentile" (reports scored before issue 26)
    #: per-example tables of a stored report, by probe (a replay scores them, no model run)
    examples: dict[str, pd.DataFrame] | None = None

    _memo: dict[Hashable, Draws] = field(default_factory=dict, repr=False)
    #: each split's replicate and jackknife weights, drawn once and reused by every metric
    #: (the draws depend only on the split and the seed; see WEIGHT_CACHE_CELLS)
    _weights: dict[str, Weights] = field(default_factory=dict, init=False, repr=False)

    def support(self, counts: Sequence[int]) -> Sequence[int] | None:
        """``counts`` (patients behind each metric) where this scorer withholds intervals
        on them; None under the percentile method, which never did."""
        return counts if self.interval_method == "bca" else None

    @property
    def jackknife(self) -> bool:
        """Whether intervals need the jackknife (BCa; not for point values only)."""
        return self.interval_method == "bca" and self.n_boot > 0

    def bootstrap(self, split: str, fn: BatchFn, key: Hashable | None = None) -> Draws:
        """``fn`` at unit weights, on every replicate and (for BCa) leaving out one patient
        at a time.

        Probes that need the same statistics (shift reuses performance) pass the same
        ``key`` and share one computation.
        """
        if key is not None and (split, key) in self._memo:
            return self._memo[split, key]
        seed = split_seed(self.seed, split)
        p = self.predictions[split]
        weights = self._weights.get(split)
        if weights is None and len(p) * (self.n_boot + MAX_JACKKNIFE_BLOCKS) <= WEIGHT_CACHE_CELLS:
            weights = self._weights[split] = draw_weights(p, self.n_boot, seed, self.jackknife)
        out = bootstrap(p, fn, self.n_boot, seed, jackknife=self.jackknife, weights=weights)
        if key is not None:
            self._memo[split, key] = out
        return out


#: Most weight cells (rows x (replicates + jackknife blocks)) a context keeps per split:
#: 25M int32 = 100 MB; larger splits redraw their weights for every metric instead.
WEIGHT_CACHE_CELLS = 25_000_000


class Weights(NamedTuple):
    """A split's replicate weight batches and (for BCa) its jackknife weight batches."""

    replicates: list[np.ndarray]
    jackknife: list[np.ndarray] | None


def _replicate_weights(p: SplitPredictions, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    resampler = Resampler(len(p), clusters=p.patient_id, strata=p.site, n_boot=n_boot, seed=seed)
    return resampler.weights()


def draw_weights(p: SplitPredictions, n_boot: int, seed: int, jackknife: bool) -> Weights:
    """The weights :func:`bootstrap` draws for ``p``, kept as lists."""
    jack = list(jackknife_weights(p.patient_id, len(p), seed=seed)) if jackknife else None
    return Weights(list(_replicate_weights(p, n_boot, seed)), jack)


def bootstrap(
    p: SplitPredictions,
    fn: BatchFn,
    n_boot: int,
    seed: int,
    *,
    jackknife: bool = False,
    weights: Weights | None = None,
) -> Draws:
    """``fn``'s point value and replicates, patients resampled within sites, and with
    ``jackknife`` its leave-one-patient-out values (blocks of patients beyond
    :data:`~benchmark.stats.intervals.MAX_JACKKNIFE_BLOCKS`). ``weights``: the same draws
    made before (:func:`draw_weights`), reused."""

    def run(batches: Iterable[np.ndarray]) -> np.ndarray:
        out = [np.asarray(fn(w), dtype=np.float64).reshape(len(w), -1) for w in batches]
        return np.concatenate(out) if out else np.zeros((0, len(point)))

    point = np.asarray(fn(np.ones((1, len(p)), dtype=np.int32)), dtype=np.float64).reshape(-1)
    if weights is None:
        replicates: Iterable[np.ndarray] = _replicate_weights(p, n_boot, seed)
        jack_batches = jackknife_weights(p.patient_id, len(p), seed=seed) if jackknife else None
    else:
        if jackknife and weights.jackknife is None:
            raise ValueError("the kept weights have no jackknife")
        replicates, jack_batches = weights.replicates, weights.jackknife if jackknife else None
    jack = None if jack_batches is None else run(jack_batches)
    return Draws(point, run(replicates), jack)


def clusters(p: SplitPredictions, rows: np.ndarray | None = None) -> int:
    """Patients (clusters) among ``rows`` of ``p`` (a boolean mask; None: all rows)."""
    ids = p.patient_id if rows is None else p.patient_id[rows]
    return len(np.unique(ids))


def class_clusters(p: SplitPredictions, rows: np.ndarray | None = None) -> int:
    """Patients of the rarer class among ``rows`` (a mask; None: all): the support of a
    metric that needs both classes (AUROC)."""
    keep = np.ones(len(p.y), dtype=bool) if rows is None else rows
    return min(clusters(p, keep & (p.y == 1)), clusters(p, keep & (p.y != 1)))


def interval(
    draws: Draws,
    level: float,
    support: np.ndarray | None = None,
    minimum: np.ndarray | int = MIN_SUPPORT["rarer_class"],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str | None]]:
    """CI bounds per column, the share of undefined replicates, and per column why no CI
    is reported (None: it is). BCa where ``draws`` has a jackknife, else percentile; NaN
    when more than :data:`MAX_UNDEFINED` of the replicates are undefined, or (``support``:
    each column's support) its support is below its ``minimum`` (default: the rarer
    class's, for metrics of a whole split)."""
    reps = draws.reps
    m = reps.shape[1]
    undefined = np.isnan(reps).mean(axis=0) if len(reps) else np.ones(m)
    if not len(reps):
        lo = hi = np.full(m, np.nan)
    elif draws.jack is not None:
        lo, hi = bca_interval(draws.point, reps, draws.jack, level)
    else:
        lo, hi = percentile_ci(reps, level)
    why: list[str | None] = [None] * m
    least = np.broadcast_to(np.asarray(minimum), (m,))
    for j in range(m):
        if undefined[j] > MAX_UNDEFINED:
            why[j] = f"CI not reported: {100 * undefined[j]:.0f}% of bootstrap replicates undefined"
        elif support is not None and support[j] < least[j]:
            why[j] = (
                f"CI withheld: supported by {support[j]} patients (< {least[j]}, too few "
                "for 95% coverage; docs/intervals.md)"
            )
    drop = np.array([w is not None for w in why])
    return np.where(drop, np.nan, lo), np.where(drop, np.nan, hi), undefined, why


def emit(
    probe: str,
    split: str,
    names: list[str],
    draws: Draws,
    level: float,
    *,
    reasons: dict[str, str] | None = None,
    support: Sequence[int] | None = None,
    minimum: Sequence[int] | int = MIN_SUPPORT["rarer_class"],
    **keys: Any,
) -> list[MetricResult]:
    """MetricResults for columns ``names`` of ``draws``, with reasons for undefined values
    and withheld intervals; ``support``: each column's support, ``minimum`` the least it
    needs (withholding)."""
    sup = None if support is None else np.asarray(support)
    lo, hi, _, why = interval(draws, level, sup, np.asarray(minimum))
    method = "bca" if draws.jack is not None else "percentile"
    record = _RECORDING.get()
    out = []
    for i, name in enumerate(names):
        if record is not None:
            key = (probe, name, split, keys.get("attribute"), keys.get("group"))
            least = np.broadcast_to(np.asarray(minimum), (len(names),))
            record[key] = draws._replace(support=sup, minimum=least).cols([i])
        reason = None
        if not np.isfinite(draws.point[i]):
            reason = (reasons or {}).get(name, "undefined on this split")
        elif not np.isfinite(lo[i]):
            reason = why[i] or "CI undefined: every replicate on one side of the estimate"
        out.append(
            MetricResult.of(
                draws.point[i],
                lo[i],
                hi[i],
                probe=probe,
                metric=name,
                split=split,
                reason=reason,
                interval=method if np.isfinite(lo[i]) else None,
                support=None if sup is None else int(sup[i]),
                **keys,
            )
        )
    return out


class Probe(ABC):
    """One failure dimension. Subclasses are dataclasses; their fields are the config."""

    name: ClassVar[str]
    #: model capabilities the probe needs beyond predict_proba (see benchmark.models.protocol)
    requires: ClassVar[tuple[str, ...]] = ()
    #: config keys a run fills in (what it measured), not settings: comparisons ignore them
    derived_config: ClassVar[tuple[str, ...]] = ()

    def settings(self) -> dict[str, Any]:
        """The config without :attr:`derived_config`: what two runs must share to pair."""
        return {k: v for k, v in self.config().items() if k not in self.derived_config}

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
