"""Corruption robustness: the model re-scored on corrupted copies of a test split.

Per corruption ``c`` and severity ``s`` (rows with ``attribute = c``, ``group = s``):
``auroc``, ``accuracy`` and ``balanced_error`` = 1 - (TPR + TNR) / 2 at the threshold frozen
on the clean ``val`` (MedMNIST-C's error measure), and ``balanced_error_increase`` over the
clean images. All replicates reuse the clean split's bootstrap resamples, so the increases
are paired.

Summaries (ImageNet-C's normalised forms; ``E`` = balanced error, ``ref`` = the task's ERM
baseline, read from ``tasks/<id>/<version>.corruption.json``):

- ``ce`` per corruption = sum_s E_cs / sum_s E_cs(ref); ``mce`` = mean over corruptions;
- ``relative_ce`` = sum_s (E_cs - E_clean) / sum_s (E_cs(ref) - E_clean(ref)); its mean is
  ``relative_mce``;
- ``mean_balanced_error`` over all corruptions and severities (needs no reference).

The reference errors are constants (as AlexNet's are in ImageNet-C), so the CIs of
``ce``/``mce`` carry this model's sampling uncertainty only. The curve ``relative_robustness``
gives, per severity (0 = clean), the mean over corruptions of AUROC_s / AUROC_clean.

Corruptions are applied on the fly (:mod:`benchmark.perturbations.corruptions`), seeded per
image from the task seed, so every model sees the same corrupted bytes. Large splits are subsampled
(``max_samples``, a seeded choice recorded in the config and each row's ``n``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from benchmark.common.files import atomic_write_text
from benchmark.common.schema import StrictModel
from benchmark.errors import MedFailError
from benchmark.perturbations.corruptions import CORRUPTIONS, SEVERITIES, corrupt, for_modality
from benchmark.results.report import Curve, ProbeResult
from benchmark.scoring.predictions import SplitPredictions, check_proba
from benchmark.scoring.probes.base import (
    BatchFn,
    Draws,
    Probe,
    ScoringContext,
    bootstrap,
    class_clusters,
    class_counts_reason,
    emit,
    image_sample,
    rerun_blocker,
    split_seed,
)
from benchmark.stats.bootstrap import GroupedScorer, ratio

CELL_METRICS = ["auroc", "accuracy", "balanced_error", "balanced_error_increase"]
REFERENCE_SUFFIX = ".corruption.json"


class CorruptionReference(StrictModel):
    """The ERM baseline's balanced errors on one task build: the mCE denominators."""

    task: str
    content_sha256: str
    split: str
    n: int
    seed: int
    baseline: dict[str, Any]
    clean: float
    errors: dict[str, dict[str, float]]  # corruption -> severity -> balanced error


def reference_path(spec_path: Path) -> Path:
    """``tasks/<id>/<version>.corruption.json`` beside the spec."""
    return spec_path.with_name(spec_path.stem + REFERENCE_SUFFIX)


def read_reference(path: Path) -> CorruptionReference | None:
    if not path.is_file():
        return None
    try:
        return CorruptionReference.model_validate_json(path.read_bytes())
    except ValidationError as e:
        raise MedFailError(f"{path}: not a valid corruption reference: {e}") from e


def write_reference(path: Path, ref: CorruptionReference) -> None:
    atomic_write_text(path, json.dumps(ref.model_dump(), indent=1, sort_keys=True) + "\n")


def with_increase(cell: Draws, clean: Draws) -> Draws:
    """A cell's metrics and its balanced error's increase over the clean one: both scored
    on the same rows and resamples, so the jackknife of the increase is the difference of
    the two jackknives."""
    jack = None
    if cell.jack is not None and clean.jack is not None:
        jack = np.column_stack([cell.jack, cell.jack[:, 2] - clean.jack[:, 2]])
    return Draws(
        np.append(cell.point, cell.point[2] - clean.point[2]),
        np.column_stack([cell.reps, cell.reps[:, 2] - clean.reps[:, 2]]),
        jack,
    )


def balanced_error_batch(y: np.ndarray, score: np.ndarray, threshold: float) -> BatchFn:
    """Replicate weights (b, n) -> (b, 3): AUROC, accuracy and balanced error."""
    scorer = GroupedScorer(y, score, threshold)
    pos = y == 1
    pred = score >= threshold

    def fn(w: np.ndarray) -> np.ndarray:
        conf, auroc = scorer.score_batch(w)
        wf = np.asarray(w, dtype=np.float64)
        tpr = ratio(wf @ (pos & pred), wf @ pos)
        tnr = ratio(wf @ (~pos & ~pred), wf @ ~pos)
        return np.column_stack([auroc[:, 0], conf.accuracy[:, 0], 1 - (tpr + tnr) / 2])

    return fn


@dataclass
class CorruptionProbe(Probe):
    corruptions: list[str] | None = None  # default: those of the task's modality
    severities: list[int] = field(default_factory=lambda: list(SEVERITIES))
    split: str | None = None  # default: id_test, else ood_test
    max_samples: int | None = 2000
    reference: str | None = None  # default: the file beside the task spec
    normalise: bool = True  # False while making the reference itself

    name = "corruption"

    def run(self, ctx: ScoringContext) -> ProbeResult:
        blocker = rerun_blocker(ctx, "corrupted images")
        if blocker is not None:
            return self.skip(blocker)
        array = ctx.spec.features.array
        assert array is not None
        split = self.split or ("id_test" if "id_test" in ctx.test_splits else "ood_test")
        names = self.corruptions or for_modality(ctx.spec.modality, len(array.channels))
        unknown = sorted(set(names) - set(CORRUPTIONS))
        bad_sev = sorted(set(self.severities) - set(SEVERITIES))
        if unknown or bad_sev or split not in ctx.predictions:
            raise MedFailError(
                f"corruption probe: unknown corruptions {unknown}, severities {bad_sev} or "
                f"split {split!r} (known: {', '.join(CORRUPTIONS)}; severities 1-5)"
            )

        base, images, warnings = image_sample(ctx, split, self.max_samples, self.name)
        seed = split_seed(ctx.seed, split)

        def score(p: SplitPredictions) -> Draws:
            fn = balanced_error_batch(p.y, p.score, ctx.threshold)
            return bootstrap(p, fn, ctx.n_boot, seed, jackknife=ctx.jackknife)

        clean = score(base)
        clean_point, clean_reps = clean.point, clean.reps
        support = ctx.support([class_clusters(base)] * len(CELL_METRICS))
        undefined = class_counts_reason(base, f"the scored {split} sample") or "undefined here"
        n_classes = base.proba.shape[1]
        metrics = []
        cells: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        for name in names:
            for sev in self.severities:
                bad = corrupt(images, name, sev, base.sample_id.tolist(), seed=ctx.spec.seed)
                proba = check_proba(
                    ctx.model.predict_proba(bad),
                    base.sample_id,
                    n_classes,
                    f"split {split} under {name} severity {sev}",
                )
                cell = score(dataclasses.replace(base, proba=proba))
                cells[name, sev] = (cell.point, cell.reps)
                metrics += emit(
                    self.name,
                    split,
                    CELL_METRICS,
                    with_increase(cell, clean),
                    ctx.level,
                    reasons=dict.fromkeys(CELL_METRICS, undefined),
                    support=support,
                    attribute=name,
                    group=str(sev),
                    n=len(base),
                )
        metrics += emit(
            self.name,
            split,
            ["clean_balanced_error"],
            clean.cols([2]),
            ctx.level,
            support=None if support is None else support[:1],
            n=len(base),
        )
        be = np.array([[cells[c, s][0][2] for s in self.severities] for c in names])
        be_reps = np.stack([[cells[c, s][1][:, 2] for s in self.severities] for c in names])
        metrics += emit(
            self.name,
            split,
            ["mean_balanced_error"],
            Draws(np.array([be.mean()]), be_reps.mean(axis=(0, 1))[:, None]),
            ctx.level,
            support=None if support is None else support[:1],
            n=len(base),
        )
        ref, why = self._reference(ctx, split, len(base))
        metrics += self._normalised(
            ctx, split, names, be, be_reps, clean_point, clean_reps, ref, why
        )
        if why is not None:
            warnings.append(f"corruption probe: {why}")
        auroc = np.array([[cells[c, s][0][0] for s in self.severities] for c in names])
        relative = (auroc / clean_point[0]).mean(axis=0)
        curves = []
        if np.isfinite(relative).all():
            curves.append(
                Curve(
                    probe=self.name,
                    name="relative_robustness",
                    split=split,
                    x=[0.0, *map(float, self.severities)],
                    y=[1.0, *map(float, relative)],
                    count=[float(len(base))] * (1 + len(self.severities)),
                )
            )
        else:
            warnings.append("corruption probe: no robustness curve, AUROC is undefined here")
        config = self.config() | {"corruptions": names, "split": split, "n_used": len(base)}
        return ProbeResult(
            name=self.name, config=config, metrics=metrics, curves=curves, warnings=warnings
        )

    def _reference(
        self, ctx: ScoringContext, split: str, n: int
    ) -> tuple[CorruptionReference | None, str | None]:
        """The ERM reference for this build, or None and the reason."""
        if not self.normalise:
            return None, "mCE not computed: normalise=False (the ERM reference run itself)"
        if self.reference is not None:
            path = Path(self.reference)
        else:
            from benchmark.tasks.registry import resolve

            try:
                path = reference_path(resolve(ctx.spec.ref).spec_path)
            except MedFailError:
                return None, f"mCE not reported: {ctx.spec.ref} is not in a task registry"
        ref = read_reference(path)
        if ref is None:
            return None, (
                f"mCE not reported: no ERM corruption reference at {path} "
                "(make one with benchmarks/release/corruption_reference.py)"
            )
        digest = ctx.task.manifest.content_sha256 if ctx.task is not None else None
        if ref.content_sha256 != digest or ref.split != split or ref.n != n:
            return None, (
                f"mCE not reported: the reference {path} was made on other data (digest, "
                "split or sample count differ)"
            )
        return ref, None

    def _normalised(
        self,
        ctx: ScoringContext,
        split: str,
        names: list[str],
        be: np.ndarray,
        be_reps: np.ndarray,
        clean_point: np.ndarray,
        clean_reps: np.ndarray,
        ref: CorruptionReference | None,
        why: str | None,
    ) -> list[Any]:
        """ce / relative_ce per corruption, mce / relative_mce: NaN with a reason when the
        reference is missing or lacks a cell."""
        k = len(names)
        sevs = [str(s) for s in self.severities]
        if ref is not None and all(
            c in ref.errors and all(s in ref.errors[c] for s in sevs) for c in names
        ):
            den = np.array([[ref.errors[c][s] for s in sevs] for c in names])
            ce = ratio(be.sum(axis=1), den.sum(axis=1))
            ce_reps = ratio(be_reps.sum(axis=1).T, den.sum(axis=1))
            rel_den = (den - ref.clean).sum(axis=1)
            rel = ratio((be - clean_point[2]).sum(axis=1), rel_den)
            rel_reps = ratio((be_reps - clean_reps[:, 2][None, None]).sum(axis=1).T, rel_den)
        else:
            why = why or "mCE not reported: the reference lacks some corruption or severity"
            ce = rel = np.full(k, np.nan)
            ce_reps = rel_reps = np.full((len(clean_reps), k), np.nan)
        reasons = dict.fromkeys(["ce", "relative_ce", "mce", "relative_mce"], why or "")
        out = []
        for i, name in enumerate(names):
            out += emit(
                self.name,
                split,
                ["ce", "relative_ce"],
                Draws(np.array([ce[i], rel[i]]), np.column_stack([ce_reps[:, i], rel_reps[:, i]])),
                ctx.level,
                reasons=reasons,
                attribute=name,
            )
        out += emit(
            self.name,
            split,
            ["mce", "relative_mce"],
            Draws(
                np.array([ce.mean(), rel.mean()]),
                np.column_stack([ce_reps.mean(axis=1), rel_reps.mean(axis=1)]),
            ),
            ctx.level,
            reasons=reasons,
        )
        return out
