"""Explanation alignment (image tasks): do the model's attribution maps point where the
evidence is, or at a shortcut?

For each test split the probe explains a seeded sample of whole patients (``max_samples``
images at most, so counterfactual pairs stay together) with each attribution method
(:mod:`benchmark.scoring.attribution`: Grad-CAM on the last Conv2d, Integrated Gradients
from a zero baseline, occlusion for a model without gradients; how each ran is recorded in
``config["measured"]["methods"]``), and scores every map against the task's masks
(:mod:`benchmark.stats.alignment`, vectorised over images):

- the lesion mask: ``saliency_dice`` (top-k with k = the mask's area; the Dice-vs-k curve
  is kept), ``pointing_game`` (``tolerance`` pixels), ``relevance_mass``, ``pixel_auroc``;
- the rater masks: the same metrics for each rater against the others' majority (the human
  ceiling) and Fleiss' kappa over pixels; the model's numbers also as fractions of it;
- the shortcut masks: ``shortcut_mass``, the share of positive attribution on the marker;
- counterfactual pairs: ``counterfactual_delta_p`` and ``counterfactual_peak_moved``.

Each method first faces the cascading-randomisation sanity check (Adebayo et al., 2018;
:mod:`benchmark.scoring.sanity`) on ``sanity_images`` lesion images; a method that fails
is marked and its alignment numbers are withheld. One row per (split, method, image) goes
to the report's *examples* table, and every number follows from that table
(:mod:`benchmark.scoring.probes.explanation_scores`), so ``medfail recheck`` recomputes
them and ``medfail compare`` pairs two models' (ERM against a marker-free model on the
shortcut's mass, say). A task without masks, a predictions file, or a tabular task skips
the probe with the reason. Torch and captum load only when a model is explained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from benchmark.common.optional import heavy
from benchmark.errors import MedFailError
from benchmark.results.report import ProbeResult
from benchmark.scoring.predictions import SplitPredictions
from benchmark.scoring.probes.base import (
    Probe,
    ScoringContext,
    rerun_blocker,
    split_seed,
    subset,
)
from benchmark.scoring.probes.explanation_scores import (
    ALIGNMENT,
    CURVE_FRACTIONS,
    RATER,
    curve_column,
    score_examples,
)
from benchmark.scoring.probes.explanation_tabular import (
    SHAP_PREFIX,
    TABULAR_METHODS,
    score_tabular,
)
from benchmark.stats import alignment
from benchmark.tasks.spec import GROUP_PREFIX

if TYPE_CHECKING:
    from benchmark.tasks.task import Task


@dataclass(frozen=True)
class Masks:
    """The masks of the explained images (None where the task has none): lesion (n, H, W),
    raters (n, R, H, W), shortcut (n, H, W), all bool, and each row's pair role."""

    lesion: np.ndarray | None
    raters: np.ndarray | None
    shortcut: np.ndarray | None
    pair: np.ndarray | None

    @classmethod
    def of(cls, task: Task, split: str, rows: np.ndarray, meta: pd.DataFrame) -> Masks:
        names = task.spec.features.array.names if task.spec.features.array else []

        def load(name: str) -> np.ndarray | None:
            return task.array(split, name)[rows].astype(bool) if name in names else None

        pair = meta["pair"].to_numpy(dtype=str)[rows] if "pair" in meta else None
        return cls(load("masks"), load("rater_masks"), load("shortcut_masks"), pair)


NO_MASKS = Masks(None, None, None, None)


def sample_patients(p: SplitPredictions, max_samples: int | None, seed: int) -> np.ndarray:
    """Rows of whole patients, in a seeded order, while they fit in ``max_samples`` rows
    (all rows when None or when they fit); sorted."""
    if max_samples is None or len(p) <= max_samples:
        return np.arange(len(p))
    ids, counts = np.unique(p.patient_id, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(ids))
    keep = order[np.cumsum(counts[order]) <= max_samples]
    return np.flatnonzero(np.isin(p.patient_id, ids[keep]))


def _shared_columns(p: SplitPredictions, masks: Masks, split: str) -> dict[str, Any]:
    """The method-independent columns of the examples table."""
    cols: dict[str, Any] = {
        "split": split,
        "sample_id": p.sample_id,
        "patient_id": p.patient_id,
        "site": p.site if p.site is not None else np.full(len(p), None, dtype=object),
        "y_true": p.y,
        "score": p.score,
    }
    cols |= {f"{GROUP_PREFIX}{a}": g for a, g in p.groups.items()}
    if masks.pair is not None:
        cols["pair"] = masks.pair
    if masks.raters is not None and masks.raters.shape[1] >= 2:
        for name, metric in zip(RATER, _METRICS, strict=True):
            cols[name] = alignment.rater_ceiling(masks.raters, metric)
        kappa = alignment.pixel_kappa(masks.raters)
        if masks.lesion is not None:  # the raters agree trivially on an image with no lesion
            kappa = np.where(masks.lesion.any(axis=(1, 2)), kappa, np.nan)
        cols["rater_kappa"] = kappa
    return cols


_METRICS = [
    alignment.dice_top_k,
    alignment.pointing_game,
    alignment.relevance_mass,
    alignment.pixel_auroc,
]


def _method_columns(maps: np.ndarray, masks: Masks, tolerance: int) -> dict[str, np.ndarray]:
    """One method's per-image scores; NaN for a degenerate map (counted, not scored)."""
    bad = alignment.degenerate(maps)
    safe = np.where(bad[:, None, None], 0.0, np.nan_to_num(maps))
    cols: dict[str, np.ndarray] = {"degenerate": bad.astype(np.float64)}
    if masks.lesion is not None:
        cols["saliency_dice"] = alignment.dice_top_k(safe, masks.lesion)
        cols["pointing_game"] = alignment.pointing_game(safe, masks.lesion, tolerance)
        cols["relevance_mass"] = alignment.relevance_mass(safe, masks.lesion)
        cols["pixel_auroc"] = alignment.pixel_auroc(safe, masks.lesion)
        curve = alignment.dice_curve(safe, masks.lesion, np.asarray(CURVE_FRACTIONS))
        cols |= {curve_column(f): curve[:, j] for j, f in enumerate(CURVE_FRACTIONS)}
    if masks.shortcut is not None:
        cols["shortcut_mass"] = alignment.relevance_mass(safe, masks.shortcut)
    if masks.pair is not None and masks.lesion is not None:
        cols["counterfactual_peak_moved"] = _peak_moved(safe, masks, tolerance)
    return {k: np.where(bad, np.nan, v) if k != "degenerate" else v for k, v in cols.items()}


def _peak_moved(maps: np.ndarray, masks: Masks, tolerance: int) -> np.ndarray:
    """On each pair's lesion row: 1 if the map's peak is on the lesion there and off it
    on the partner's lesion-free image (the same patient), else 0; NaN on other rows."""
    assert masks.pair is not None and masks.lesion is not None
    out = np.full(len(maps), np.nan)
    with_rows = np.flatnonzero(masks.pair == "with_lesion")
    without = np.flatnonzero(masks.pair == "without_lesion")
    # pairs are adjacent rows of one patient (the generator writes them so, and whole
    # patients are sampled); a lesion row without its partner right after it is skipped
    with_rows = with_rows[np.isin(with_rows + 1, without)]
    if not len(with_rows):
        return out
    mask = masks.lesion[with_rows]
    on = alignment.pointing_game(maps[with_rows], mask, tolerance)
    off = alignment.pointing_game(maps[with_rows + 1], mask, tolerance)
    out[with_rows] = np.where(np.isfinite(on), on * (1 - off), np.nan)
    return out


@dataclass
class ExplanationProbe(Probe):
    """Attribution maps against the task's masks (module docstring).

    ``methods``: attribution methods (Grad-CAM, Integrated Gradients; occlusion for a
    model without gradients); ``max_samples``: images explained per test split (whole
    patients, seeded; None: all); ``tolerance``: pointing-game slack in pixels;
    ``ig_steps``, ``occlusion_window``, ``batch_size``: how the maps are computed;
    ``sanity_images``, ``sanity_blocks``: the randomisation check's images and layer
    groups; ``gallery_images``: overlays kept for the report's gallery. Tabular tasks:
    ``max_samples`` rows explained by SHAP per test split, ``background`` train rows for a
    model-agnostic explainer, ``max_counterfactuals`` false negatives per split given up to
    ``counterfactuals_per_query`` DiCE counterfactuals. ``measured`` is filled in by the run
    (how each method ran, the sanity check, what was explained).
    """

    methods: list[str] = field(default_factory=lambda: ["gradcam", "integrated_gradients"])
    max_samples: int | None = 512
    tolerance: int = 1
    ig_steps: int = 32
    occlusion_window: int = 8
    batch_size: int = 64
    sanity_images: int = 16
    sanity_blocks: int = 6
    gallery_images: int = 4
    background: int = 100
    max_counterfactuals: int = 20
    counterfactuals_per_query: int = 3
    measured: dict[str, Any] | None = None

    name = "explanation"
    #: config keys the run fills in: not settings, so compare and replays ignore them
    derived_config = ("measured",)

    def run(self, ctx: ScoringContext) -> ProbeResult:
        stored = (ctx.examples or {}).get(self.name)
        if stored is not None:  # a replay: every number from the stored table
            return self._result(ctx, stored, self.measured or {}, [])
        if ctx.spec.features.array is None:
            return self._tabular(ctx)
        return self._images(ctx)

    def _images(self, ctx: ScoringContext) -> ProbeResult:
        """Maps of each method on each test split, scored against the masks."""
        blocker = rerun_blocker(ctx, "attribution maps")
        if blocker is not None:
            return self.skip(blocker)
        array = ctx.spec.features.array
        assert array is not None and ctx.task is not None
        if not (array.masks or array.shortcut_masks):
            return self.skip(
                "skipped: the task has no lesion or shortcut masks to check the maps against"
            )
        if self.max_samples is not None and self.max_samples < 2:
            raise MedFailError(f"explanation probe: max_samples {self.max_samples} < 2")
        MapMaker, MapSettings = heavy("benchmark.scoring.explain_maps", "MapMaker", "MapSettings")
        try:
            maker = MapMaker(
                ctx.model,
                list(self.methods),
                MapSettings(
                    self.ig_steps, self.occlusion_window, self.batch_size, self.sanity_blocks
                ),
            )
        except ValueError as e:
            raise MedFailError(f"explanation probe: {e}") from e
        frames, gallery, sanity, used = [], [], {}, {}
        for split in ctx.test_splits:
            frame, images, masks = self._explain(ctx, split, maker)
            frames.append(frame)
            used[split] = len(images["image"])
            if not sanity:
                if ctx.detail is not None:
                    ctx.detail("explanation: sanity check", 0, 1)
                sanity = self._sanity(ctx, maker, images, masks)
            gallery = _gallery(split, images, masks, frame, self.gallery_images) or gallery
        examples = pd.concat(frames, ignore_index=True)
        measured = {"methods": maker.notes, "sanity": sanity, "explained": used}
        warnings = [*maker.warnings, *_image_warnings(sanity, examples)]
        result = self._result(ctx, examples, measured, warnings)
        return result.with_examples(examples).with_gallery(gallery)

    def _result(
        self,
        ctx: ScoringContext,
        examples: pd.DataFrame,
        measured: dict[str, Any],
        warnings: list[str],
    ) -> ProbeResult:
        detail = ctx.detail

        def on_split(split: str) -> None:
            if detail is not None:
                detail(f"explanation: scored {split}", 1, 1)

        if set(examples["method"]) <= TABULAR_METHODS:
            metrics, curves = score_tabular(ctx, examples), []
            on_split(ctx.test_splits[-1])
        else:
            metrics, curves = score_examples(ctx, examples, measured.get("sanity", {}), on_split)
        config = self.config() | {"measured": measured}
        return ProbeResult(
            name=self.name, config=config, metrics=metrics, curves=curves, warnings=warnings
        )

    def _tabular(self, ctx: ScoringContext) -> ProbeResult:
        """SHAP values and DiCE counterfactuals of a tabular model (the module docstring of
        :mod:`benchmark.scoring.explain_tabular`)."""
        if callable(getattr(ctx.model, "predict_ids", None)):
            return self.skip("skipped: the model is a predictions file and cannot be re-run")
        if ctx.task is None:
            return self.skip("skipped: no task data in the scoring context")
        explain = heavy("benchmark.scoring.explain_tabular")
        train, y_train, _ = ctx.task.split("train")
        dice = find_spec("dice_ml") is not None
        warnings = (
            []
            if dice
            else [
                "explanation probe: no counterfactuals: the optional package dice-ml is not "
                "installed (pip install -c constraints.txt -e '.[counterfactuals]')"
            ]
        )
        frames, how, explained, queried = [], "", {}, {}
        for split in ctx.test_splits:
            seed = split_seed(ctx.seed, f"explanation:{split}")
            X, _, _ = ctx.task.split(split)
            frame, how = self._shap(ctx, explain, split, (train, X), seed)
            frames.append(frame)
            explained[split] = len(frame)
            if dice:
                frame = self._counterfactuals(ctx, explain, split, (train, y_train, X), seed)
                queried[split] = len(frame)
                frames.append(frame)
        examples = pd.concat(frames, ignore_index=True)
        measured = {
            "methods": {"shap": how}
            | (
                {"dice": "DiCE random method (dice-ml), stopping threshold = the frozen threshold"}
                if dice
                else {}
            ),
            "explained": explained,
            "counterfactual_queries": queried,
            "immutable": explain.immutable_features(ctx.spec),
        }
        return self._result(ctx, examples, measured, warnings).with_examples(examples)

    def _shap(
        self,
        ctx: ScoringContext,
        explain: Any,
        split: str,
        data: tuple[pd.DataFrame, pd.DataFrame],
        seed: int,
    ) -> tuple[pd.DataFrame, str]:
        """One row per explained row of ``split`` (whole patients, seeded) with its SHAP
        value per feature (``shap:<feature>``), and how they were computed."""
        train, X = data
        p = ctx.predictions[split]
        rows = sample_patients(p, self.max_samples, seed)
        values, how = explain.shap_values(
            ctx.model, ctx.spec, train, X.iloc[rows], background=self.background, seed=seed % 2**31
        )
        shared = _shared_columns(subset(p, rows), NO_MASKS, split)
        names = ctx.spec.features.names
        cols = {f"{SHAP_PREFIX}{c}": values[:, j] for j, c in enumerate(names)}
        return pd.DataFrame({**shared, "method": "shap", **cols}), how

    def _counterfactuals(
        self,
        ctx: ScoringContext,
        explain: Any,
        split: str,
        data: tuple[pd.DataFrame, np.ndarray, pd.DataFrame],
        seed: int,
    ) -> pd.DataFrame:
        """One row per false negative queried (whole patients, seeded): found or not, and
        the counterfactuals' scores."""
        train, y_train, X = data
        p = ctx.predictions[split]
        fn = np.flatnonzero((p.y == 1) & (p.score < ctx.threshold))
        fn = fn[sample_patients(subset(p, fn), self.max_counterfactuals, seed + 1)]
        queries = X.iloc[fn]
        found = explain.counterfactuals(
            ctx.model,
            ctx.spec,
            train,
            y_train,
            queries,
            ctx.threshold,
            total=self.counterfactuals_per_query,
            seed=seed % 2**31,
        )
        numeric = list(ctx.spec.features.numeric)
        mad = (train[numeric] - train[numeric].median()).abs().median()
        scores = [
            {"cf_found": 0.0}
            if cf is None
            else {"cf_found": 1.0}
            | explain.counterfactual_scores(
                ctx.model, ctx.spec, queries.iloc[[i]], cf, ctx.threshold, mad
            )
            for i, cf in enumerate(found)
        ]
        shared = _shared_columns(subset(p, fn), NO_MASKS, split)
        return pd.DataFrame({**shared, "method": "dice"}).join(
            pd.DataFrame(scores, index=range(len(fn)))
        )

    def _explain(
        self, ctx: ScoringContext, split: str, maker: Any
    ) -> tuple[pd.DataFrame, dict[str, np.ndarray], Masks]:
        """The examples rows of ``split``, the maps by method, and the masks."""
        assert ctx.task is not None
        p = ctx.predictions[split]
        rows = sample_patients(p, self.max_samples, split_seed(ctx.seed, f"explanation:{split}"))
        X, _, meta = ctx.task.split(split)
        x = np.ascontiguousarray(X[rows], dtype=np.float32)
        masks = Masks.of(ctx.task, split, rows, meta)
        shared = _shared_columns(subset(p, rows), masks, split)
        frames, maps = [], {"image": x[:, 0]}
        for i, method in enumerate(maker.methods):
            if ctx.detail is not None:
                ctx.detail(f"explanation: {method} on {split}", i, len(maker.methods))
            maps[method] = maker.maps(x, method)
            cols = _method_columns(maps[method], masks, self.tolerance)
            frames.append(pd.DataFrame({**shared, "method": method, **cols}))
        return pd.concat(frames, ignore_index=True), maps, masks

    def _sanity(
        self, ctx: ScoringContext, maker: Any, maps: dict[str, np.ndarray], masks: Masks
    ) -> dict[str, Any]:
        """The randomisation check of each method on the first lesion images of a split."""
        images = maps["image"]
        pick = np.arange(len(images))
        if masks.lesion is not None:
            pick = np.flatnonzero(masks.lesion.any(axis=(1, 2)))
        pick = pick[: self.sanity_images]
        x = np.ascontiguousarray(images[pick][:, None], dtype=np.float32)
        if len(x) == 0:
            return {
                m: {"passed": None, "reason": "not run: no image", "steps": []}
                for m in maker.methods
            }
        seed = split_seed(ctx.seed, "explanation:sanity") % 2**31
        return {m: maker.sanity(x, m, seed) for m in maker.methods}


def _image_warnings(sanity: dict[str, Any], examples: pd.DataFrame) -> list[str]:
    """A warning per method that failed the sanity check, and one for degenerate maps."""
    out = [
        f"explanation probe: {m} FAILED the sanity check ({c['reason']}); its alignment "
        "numbers are withheld"
        for m, c in sanity.items()
        if c["passed"] is False
    ]
    n_bad = int(examples["degenerate"].sum())
    if n_bad:
        out.append(
            f"explanation probe: {n_bad} degenerate maps (NaN or constant), counted in "
            "degenerate_maps and not scored"
        )
    return out


def _gallery(
    split: str, maps: dict[str, np.ndarray], masks: Masks, frame: pd.DataFrame, n: int
) -> list[dict[str, Any]]:
    """Up to ``n`` lesion images for the report's overlays (those with the shortcut
    first): the image, each method's map, the lesion, rater and shortcut masks."""
    if masks.lesion is None or n <= 0:
        return []
    lesion = masks.lesion.any(axis=(1, 2))
    marked = (
        masks.shortcut.any(axis=(1, 2)) if masks.shortcut is not None else np.zeros_like(lesion)
    )
    order = np.concatenate([np.flatnonzero(lesion & marked), np.flatnonzero(lesion & ~marked)])
    ids = frame["sample_id"].to_numpy(dtype=str)[: len(lesion)]  # the first method's rows
    items = []
    for i in order[:n]:
        items.append(
            {
                "split": split,
                "sample_id": ids[i],
                "image": maps["image"][i],
                "maps": {m: v[i] for m, v in maps.items() if m != "image"},
                "lesion": masks.lesion[i],
                "raters": None if masks.raters is None else masks.raters[i],
                "shortcut": None if masks.shortcut is None else masks.shortcut[i],
            }
        )
    return items


__all__ = ["ALIGNMENT", "ExplanationProbe", "sample_patients"]
