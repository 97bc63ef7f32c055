"""Shift diagnostics: how far each evaluated split moved from the training data, measured
on the data (not on the model's errors), and whether its label prevalence changed.

**Representation** (``config.representation`` says which): the model's ``embed()``
(penultimate features) when it has one and can be run; else, for images, a fixed
reference encoder (each channel average-pooled to 8 x 8 intensities) and, for series, each
channel's mean and standard deviation over time (NaN-aware), each with the model's score
appended when the model can be run; else, for tables, the task's numeric encoding of the
raw features. Columns are standardised with the reference sample's mean and SD; constant
columns are dropped (counted in a warning). Missing values count as the reference mean
(0 after standardising) for the MMD and the domain classifier; KL and W1 compare each
column's present values.

**The reference sample** (``config.reference``) is the training split for a fixed
representation (raw features, the encoder alone) and the val split for one the model
learned from train (its embedding, or its score): a network fits its training rows, so
they sit apart from every held-out row in its own representation, and train-vs-id_test
would be flagged as a shift that is only memorisation. Val is in-distribution and was
never fitted (only used to stop training).

**Between the reference and each test split** (``id_test`` is the false-alarm control;
rows carry the split), on seeded subsamples of at most ``max_samples`` rows per side:

- ``mmd2``, ``mmd2_p_value``, ``mmd2_threshold`` (τ) and ``shift_flagged`` (1 when
  p < ``alpha``): :func:`benchmark.stats.shift.mmd_test` with ``n_permutations``. A test
  statistic, reported with its permutation p-value instead of an interval.
- ``kl_max`` / ``kl_mean`` (nats) and ``wasserstein_max`` / ``wasserstein_mean``
  (standardised units) over the columns: per raw feature for tables, per principal
  component (the first ``components``, fitted on the reference sample) for embeddings and
  encoders;
  distances between two samples, without an interval (the MMD test judges their noise).
- ``c2st_auroc``: the held-out AUROC of a domain classifier
  (:func:`benchmark.stats.shift.domain_scores`: fitted on a stratified half, scored on the
  other), with a bootstrap CI over the held-out patients within each sample (0.5: the
  samples cannot be told apart).
- ``estimated_prevalence``: black-box shift estimation of the split's positive-class
  prevalence from the val confusion matrix at the frozen threshold
  (:func:`benchmark.stats.shift.label_shift`), with a CI over val and split patients;
  ``observed_prevalence`` is the split's true prevalence for comparison, and
  ``val_prevalence`` (on val) the reference. A prevalence change with a small MMD points to
  label shift; an MMD flag with an unchanged prevalence to covariate shift.

**Maps** (``maps``): t-SNE and UMAP of at most ``map_rows`` rows per sample, coloured by
split, site and each group attribute, written as ``figures/shift-tsne.png`` and
``figures/shift-umap.png`` beside the report (:mod:`benchmark.scoring.shift_maps`).

Undefined statistics (too few rows, NaN features, a singular confusion matrix) are NaN
with the reason, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from benchmark.results.report import MetricResult, ProbeResult
from benchmark.scoring import shift_maps
from benchmark.scoring.predictions import SplitPredictions
from benchmark.scoring.probes.base import Probe, ScoringContext, bootstrap, emit, split_seed
from benchmark.stats import shift
from benchmark.stats.bootstrap import GroupedScorer

#: The reference encoder's pooled image size (per channel).
POOLED = 8
#: Fewest rows per side for any statistic.
MIN_ROWS = 10
#: The statistics that compare the two samples' representations.
SAMPLE_METRICS = [
    "mmd2",
    "mmd2_p_value",
    "mmd2_threshold",
    "shift_flagged",
    "kl_max",
    "kl_mean",
    "wasserstein_max",
    "wasserstein_mean",
    "c2st_auroc",
]
NO_INTERVAL = {
    "mmd2": "a test statistic: its permutation p-value and threshold are reported instead",
    "distance": "a distance between two samples: the MMD test judges its noise",
}


@dataclass
class ShiftDiagnosticsProbe(Probe):
    """The statistics of the module docstring, per test split."""

    max_samples: int | None = 1000
    n_permutations: int = 1000
    alpha: float = 0.05
    components: int = 10
    maps: bool = True
    map_rows: int = 300

    name = "shift_diagnostics"
    derived_config: ClassVar[tuple[str, ...]] = ("representation", "reference", "columns")

    def run(self, ctx: ScoringContext) -> ProbeResult:
        if ctx.task is None:
            return self.skip("no task data in the scoring context")
        rep = _Representation(ctx)
        reference = self._sample(ctx, "val" if rep.learned else "train")
        raw = rep(reference)
        space = _Standardised.fit(raw)
        warnings = [f"{self.name} probe: {note}" for note in space.notes]
        ref = space(raw)
        basis = None if rep.tabular else _pca(ref, self.components)
        rows: list[MetricResult] = []
        mapped = [(reference, ref)]
        for split in ctx.test_splits:
            test = self._sample(ctx, split)
            x = space(rep(test))
            mapped.append((test, x))
            if min(len(ref), len(x)) < MIN_ROWS or not space.keep.any():
                why = f"fewer than {MIN_ROWS} rows in a sample, or no varying column"
                rows += [_undefined(self.name, split, m, why, len(x)) for m in SAMPLE_METRICS]
            else:
                rows += self._distances(ctx, split, ref, x, basis)
                rows += self._c2st(ctx, reference, test, ref, x)
            rows += self._prevalence(ctx, split)
        warnings += [
            f"{self.name} probe: the estimated prevalence on {m.split} is at its bound "
            f"({m.value:g}): the label-shift assumption (p(x | y) unchanged) fails there"
            for m in rows
            if m.metric == "estimated_prevalence" and m.value in (0.0, 1.0)
        ]
        figures: dict[str, bytes] = {}
        if self.maps and space.keep.any():
            what = f"{rep.what} (reference: {reference.split})"
            figures, unmapped = self._maps(ctx, mapped, what)
            warnings += [f"{self.name} probe: {w}" for w in unmapped]
        config = self.config() | {
            "representation": rep.what,
            "reference": reference.split,
            "columns": int(space.keep.sum()),
        }
        result = ProbeResult(name=self.name, config=config, metrics=rows, warnings=warnings)
        return result.with_figures(figures)

    def _maps(
        self, ctx: ScoringContext, samples: list[tuple[_Rows, np.ndarray]], what: str
    ) -> tuple[dict[str, bytes], list[str]]:
        """t-SNE and UMAP of at most ``map_rows`` rows per sample, coloured by sample,
        site and each group attribute (:mod:`benchmark.scoring.shift_maps`)."""
        rng = np.random.default_rng(split_seed(ctx.seed, f"{self.name}:maps"))
        picks = [
            np.sort(rng.choice(len(z), min(len(z), self.map_rows), replace=False))
            for _, z in samples
        ]
        z = np.concatenate([z[p] for (_, z), p in zip(samples, picks, strict=True)])
        colourings = {
            "split": np.concatenate(
                [np.full(len(p), r.split) for (r, _), p in zip(samples, picks, strict=True)]
            )
        }
        for key in samples[0][0].labels:
            colourings[key] = np.concatenate(
                [r.labels[key][p] for (r, _), p in zip(samples, picks, strict=True)]
            )
        return shift_maps.maps(z, colourings, ctx.seed, what)

    def _sample(self, ctx: ScoringContext, split: str) -> _Rows:
        """The split's rows (a seeded subsample of at most ``max_samples``)."""
        assert ctx.task is not None
        X, y, meta = ctx.task.split(split)
        rows = np.arange(len(y))
        if self.max_samples is not None and len(rows) > self.max_samples:
            rng = np.random.default_rng(split_seed(ctx.seed, f"{self.name}:{split}"))
            rows = np.sort(rng.choice(len(rows), self.max_samples, replace=False))
        take = X.iloc[rows] if hasattr(X, "iloc") else X[rows]
        columns = {"site": "site"} if "site" in meta.columns else {}
        columns |= {k: c for k, c in ctx.spec.group_columns.items() if c in meta.columns}
        labels = {k: meta[c].astype(str).to_numpy()[rows] for k, c in columns.items()}
        return _Rows(split, take, meta["patient_id"].astype(str).to_numpy()[rows], labels)

    def _distances(
        self,
        ctx: ScoringContext,
        split: str,
        ref: np.ndarray,
        x: np.ndarray,
        basis: np.ndarray | None,
    ) -> list[MetricResult]:
        values, why = shift.distances(
            ref,
            x,
            basis=basis,
            n_permutations=self.n_permutations,
            alpha=self.alpha,
            seed=split_seed(ctx.seed, f"mmd:{split}"),
        )
        out = []
        for metric, value in values.items():
            kind = "mmd2" if metric.startswith(("mmd2", "shift")) else "distance"
            reason = NO_INTERVAL[kind] if np.isfinite(value) else (why or "NaN columns only")
            out.append(_undefined(self.name, split, metric, reason, len(x), value))
        return out

    def _c2st(
        self, ctx: ScoringContext, reference: _Rows, test: _Rows, ref: np.ndarray, x: np.ndarray
    ) -> list[MetricResult]:
        split = test.split
        held, labels, scores = shift.domain_scores(
            np.nan_to_num(ref), np.nan_to_num(x), seed=split_seed(ctx.seed, f"c2st:{split}")
        )
        patients = np.r_[reference.patients, test.patients][held]
        pooled = _pooled(f"{split}:c2st", labels, patients, labels, scores)
        scorer = GroupedScorer(labels, scores, 0.5)

        def fn(w: np.ndarray) -> np.ndarray:
            return scorer.score_batch(w)[1][:, :1]

        draws = bootstrap(
            pooled, fn, ctx.n_boot, split_seed(ctx.seed, f"c2st:{split}"), jackknife=ctx.jackknife
        )
        return emit(self.name, split, ["c2st_auroc"], draws, ctx.level, n=len(labels))

    def _prevalence(self, ctx: ScoringContext, split: str) -> list[MetricResult]:
        val, test = ctx.predictions["val"], ctx.predictions[split]
        t = ctx.threshold
        pred_val, pred_test = (val.score >= t).astype(int), (test.score >= t).astype(int)
        n_val = len(val)
        sample = np.r_[np.zeros(n_val, dtype=int), np.ones(len(test), dtype=int)]
        patients = np.r_[val.patient_id, test.patient_id]
        y, decided = np.r_[val.y, test.y], np.r_[pred_val, pred_test].astype(float)
        pooled = _pooled(f"{split}:prevalence", sample, patients, y, decided)

        def fn(w: np.ndarray) -> np.ndarray:
            q = shift.label_shift(
                val.y, pred_val, pred_test, w_val=w[:, :n_val], w_target=w[:, n_val:]
            )
            observed = (w[:, n_val:] @ test.y) / w[:, n_val:].sum(1)
            prior = (w[:, :n_val] @ val.y) / w[:, :n_val].sum(1)
            return np.column_stack([q[:, 1], observed, prior])

        draws = bootstrap(
            pooled, fn, ctx.n_boot, split_seed(ctx.seed, f"bbse:{split}"), jackknife=ctx.jackknife
        )
        names = ["estimated_prevalence", "observed_prevalence", "val_prevalence"]
        reasons = {"estimated_prevalence": "a class is never predicted on val (C is singular)"}
        return emit(self.name, split, names, draws, ctx.level, reasons=reasons, n=len(test))


def _undefined(
    probe: str, split: str, metric: str, reason: str, n: int, value: float = float("nan")
) -> MetricResult:
    """A row without an interval (and, by default, without a value), with the reason."""
    nan = float("nan")
    return MetricResult.of(
        value, nan, nan, probe=probe, metric=metric, split=split, reason=reason, n=n
    )


@dataclass(frozen=True)
class _Rows:
    """A sample of one split: its inputs, patients, and site and group labels by name."""

    split: str
    X: Any
    patients: np.ndarray
    labels: dict[str, np.ndarray]


class _Representation:
    """The rows' representation, chosen once per run (module docstring)."""

    def __init__(self, ctx: ScoringContext) -> None:
        assert ctx.task is not None
        self.ctx, self.task = ctx, ctx.task
        array = ctx.spec.features.array
        self.kind = array.kind if array is not None else "table"
        runnable = not callable(getattr(ctx.model, "predict_ids", None))
        self.embed = getattr(ctx.model, "embed", None) if runnable else None
        self.score = runnable and self.kind != "table"
        self.tabular = self.embed is None and self.kind == "table"
        if callable(self.embed):
            self.what = "the model's embed() (penultimate features)"
        elif self.kind == "image":
            self.what = f"reference encoder: each channel average-pooled to {POOLED}x{POOLED}"
        elif self.kind == "series":
            self.what = "reference encoder: each channel's mean and SD over time"
        else:
            self.what = "raw features (the task's numeric encoding)"
        if self.score and not callable(self.embed):
            self.what += ", and the model's score"
        #: a representation the model learned from train: train rows sit apart from any
        #: held-out rows in it, so the reference sample is val (never fitted) instead
        self.learned = callable(self.embed) or self.score

    def __call__(self, rows: _Rows) -> np.ndarray:
        X = rows.X
        if callable(self.embed):
            return np.concatenate(
                [
                    np.asarray(self.embed(X[i : i + 256]), dtype=np.float64)
                    for i in range(0, len(X), 256)
                ]
            )
        if self.tabular:
            return np.asarray(self.task.encoding()(X), dtype=np.float64)
        x = np.asarray(X, dtype=np.float64)
        if self.kind == "image":
            n, c, h, w = x.shape
            feats = x[:, :, : h - h % POOLED, : w - w % POOLED]
            feats = feats.reshape(n, c, POOLED, h // POOLED, POOLED, w // POOLED).mean((3, 5))
            feats = feats.reshape(n, -1)
        else:
            with np.errstate(all="ignore"):
                feats = np.concatenate([np.nanmean(x, 2), np.nanstd(x, 2)], axis=1)
        if self.score:
            proba = np.asarray(self.ctx.model.predict_proba(np.asarray(X, dtype=np.float32)))
            feats = np.column_stack([feats, proba[:, 1]])
        return feats


@dataclass(frozen=True)
class _Standardised:
    """The reference sample's column means and SDs: columns constant there are dropped,
    the rest standardised (a missing value stays NaN)."""

    keep: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    notes: list[str]

    @classmethod
    def fit(cls, ref: np.ndarray) -> _Standardised:
        with np.errstate(all="ignore"):
            mean, sd = np.nanmean(ref, 0), np.nanstd(ref, 0)
        keep = np.isfinite(sd) & (sd > 0)
        notes = [f"{int((~keep).sum())} constant column(s) dropped"] if not keep.all() else []
        missing = float(np.isnan(ref[:, keep]).mean()) if ref[:, keep].size else 0.0
        if missing:
            notes.append(
                f"{missing:.1%} of the reference's values are missing; the MMD and the domain "
                "classifier read them as the reference mean, KL and W1 compare each column's "
                "present values"
            )
        return cls(keep, mean[keep], sd[keep], notes)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        return (raw[:, self.keep] - self.mean) / self.sd


def _pca(ref: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` principal directions (d, k) of the standardised training sample."""
    centred = np.nan_to_num(ref - np.nanmean(ref, 0))
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return vt[: min(k, len(vt))].T


def _pooled(
    name: str, sample: np.ndarray, patients: np.ndarray, y: np.ndarray, score: np.ndarray
) -> SplitPredictions:
    """Rows of two samples (``sample`` 0 or 1) as one resampling unit: patients resampled
    within their sample (its stratum), the two samples' patient ids kept apart."""
    sample = np.asarray(sample, dtype=int)
    patient = np.char.add(sample.astype(str), np.char.add(":", np.asarray(patients, dtype=str)))
    s = np.clip(np.asarray(score, dtype=np.float64), 0.0, 1.0)
    return SplitPredictions(
        split=name,
        sample_id=np.arange(len(y)).astype(str),
        patient_id=patient,
        site=sample.astype(str),
        y=np.asarray(y, dtype=int),
        proba=np.column_stack([1 - s, s]),
        groups={},
    )
