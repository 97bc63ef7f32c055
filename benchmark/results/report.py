"""The Report: typed results of one model on one task version, pinned to both hashes.

A report is a pydantic model serialised to JSON. Results are long-form rows
(:class:`MetricResult`: probe, metric, split, attribute, group, value, CI), so a report
is one ``DataFrame`` away (:meth:`Report.to_frame`) and the leaderboard reads every
report the same way. An undefined value is ``null`` with a ``reason``, never a crash.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import Field, PrivateAttr, ValidationError, model_validator

from benchmark.common.conventions import RANGE_SLACK, metric_range
from benchmark.common.files import atomic_write_text, read_limited
from benchmark.common.hashing import sha256_file
from benchmark.common.schema import StrictModel
from benchmark.errors import MedFailError
from benchmark.results.figures import FIGURES_DIR, write_pngs
from benchmark.results.gallery import GALLERY_DIR, write_gallery
from benchmark.results.predictions_file import read_predictions, write_predictions

REPORT_FILE = "report.json"
PREDICTIONS_FILE = "predictions.parquet"
EXAMPLES_FILE = "examples.parquet"
#: Most example rows per scored row (one per attribution method, of at most three).
EXAMPLES_PER_ROW = 3
SCHEMA_VERSION = 1
#: Most prediction rows any report's file may hold (the largest task scores about 120,000
#: rows; its derived copies add a few thousand).
MAX_SCORED_ROWS = 2_000_000
#: Largest report.json read, in bytes (the committed reports are under 0.1 MB).
MAX_REPORT_BYTES = 64 * 1024 * 1024


class ModelInfo(StrictModel):
    """What a report records about the model it scored."""

    name: str
    adapter: str
    sha256: str | None = None
    hash_of: Literal["file", "weights", "predictions"] = "predictions"
    capabilities: list[str] = []


#: How a report's intervals were computed (:mod:`benchmark.scoring.probes.base`).
IntervalMethod = Literal["bca", "percentile"]


class MetricResult(StrictModel):
    """One number with its confidence interval. ``value`` is None when undefined."""

    probe: str
    metric: str
    split: str
    attribute: str | None = None
    group: str | None = None
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = Field(default=None, ge=0)
    reason: str | None = None
    #: how the CI was computed: "bca" or "percentile" (None: no CI, or a report scored
    #: before issue 26, whose ``bootstrap.method`` says)
    interval: IntervalMethod | None = None
    #: patients behind the metric, from labels and groups (a rate's denominator: a group's
    #: positive patients for its TPR; AUROC: the rarer class's): below
    #: ``benchmark.stats.intervals.MIN_SUPPORT`` the CI is withheld; None: not counted
    #: (reports scored before issue 26)
    support: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _possible(self) -> MetricResult:
        """Finite numbers in the metric's range (:func:`metric_range`), ``ci_low <= ci_high``."""
        low, high = metric_range(self.metric)
        for name in ("value", "ci_low", "ci_high"):
            x = getattr(self, name)
            if x is None:
                continue
            if not math.isfinite(x):
                raise ValueError(f"{self.metric} {name} is {x}: not a finite number")
            if not low - RANGE_SLACK <= x <= high + RANGE_SLACK:
                raise ValueError(
                    f"{self.metric} {name} is {x:.6g}, outside its possible range [{low}, {high}]"
                )
        if self.ci_low is not None and self.ci_high is not None and self.ci_low > self.ci_high:
            raise ValueError(f"{self.metric}: ci_low {self.ci_low} > ci_high {self.ci_high}")
        return self

    @classmethod
    def of(cls, value: float, lo: float, hi: float, **fields: Any) -> MetricResult:
        """Build from floats, mapping NaN to None (JSON has no NaN)."""

        def clean(x: float) -> float | None:
            return None if x is None or not math.isfinite(x) else float(x)

        return cls(value=clean(value), ci_low=clean(lo), ci_high=clean(hi), **fields)


class Curve(StrictModel):
    """Curve data, e.g. a reliability diagram: per-bin x (mean p), y (mean y), count."""

    probe: str
    name: str
    split: str
    attribute: str | None = None
    group: str | None = None
    x: list[float]
    y: list[float]
    count: list[float]


class ProbeResult(StrictModel):
    name: str
    config: dict[str, Any]
    metrics: list[MetricResult]
    curves: list[Curve] = []
    warnings: list[str] = []

    _predictions: dict[str, Any] = PrivateAttr(default_factory=dict)
    _examples: pd.DataFrame | None = PrivateAttr(default=None)
    _gallery: list[dict[str, Any]] = PrivateAttr(default_factory=list)
    _figures: dict[str, bytes] = PrivateAttr(default_factory=dict)

    @property
    def predictions(self) -> dict[str, Any]:
        """Per-sample predictions the probe derived, by pseudo-split (e.g. worst-case scores
        under attack, ``id_test@linf=4/255``); saved with the report's predictions."""
        return self._predictions

    def with_predictions(self, predictions: dict[str, Any]) -> ProbeResult:
        self._predictions = dict(predictions)
        return self

    @property
    def examples(self) -> pd.DataFrame | None:
        """Per-example scores behind the probe's numbers (the explanation probe's map
        scores), saved in ``examples.parquet`` with the predictions; None if none."""
        return self._examples

    def with_examples(self, examples: pd.DataFrame | None) -> ProbeResult:
        self._examples = examples
        return self

    @property
    def gallery(self) -> list[dict[str, Any]]:
        """Images with their maps and masks, written as PNG overlays beside the report
        (:mod:`benchmark.results.gallery`); not kept when the report is read back."""
        return self._gallery

    def with_gallery(self, items: list[dict[str, Any]]) -> ProbeResult:
        self._gallery = list(items)
        return self

    @property
    def figures(self) -> dict[str, bytes]:
        """PNG figures by file name (the shift maps), written to ``figures/`` beside the
        report (:mod:`benchmark.results.figures`); not kept when the report is read back."""
        return self._figures

    def with_figures(self, figures: dict[str, bytes]) -> ProbeResult:
        self._figures = dict(figures)
        return self


class TaskInfo(StrictModel):
    id: str
    version: str
    content_sha256: str = Field(description="manifest content digest of the scored build")
    spec_sha256: str
    classes: list[str]
    released: bool = Field(default=False, description="scored on a released (pinned) version")

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"


class BootstrapInfo(StrictModel):
    n_boot: int
    level: float
    seed: int
    unit: Literal["patient", "row"]
    strata: str | None
    #: "bca": BCa with a patient jackknife, CIs withheld below MIN_SUPPORT patients (the
    #: scorer since issue 26); "percentile": percentile CIs (reports scored before it)
    method: IntervalMethod = "percentile"


class ThresholdInfo(StrictModel):
    rule: str
    value: float
    chosen_on: str = "val"


class Report(StrictModel):
    schema_version: int = SCHEMA_VERSION
    medfail_version: str
    created_at: str
    task: TaskInfo
    model: ModelInfo
    seeds: dict[str, int]
    bootstrap: BootstrapInfo
    threshold: ThresholdInfo
    splits: dict[str, Annotated[int, Field(ge=0)]] = Field(description="rows scored per split")
    probes: list[ProbeResult]
    warnings: list[str] = []
    timings: dict[str, float] = Field(description="seconds per stage")
    environment: dict[str, str] = Field(
        default_factory=dict, description="python and key package versions that scored it"
    )
    predictions_sha256: str | None = Field(
        default=None, description="sha256 of the predictions.parquet saved with this report"
    )
    examples_sha256: str | None = Field(
        default=None, description="sha256 of the examples.parquet saved with this report"
    )

    _predictions: pd.DataFrame | None = PrivateAttr(default=None)

    @property
    def predictions(self) -> pd.DataFrame | None:
        """Per-sample predictions behind every number (None if not kept)."""
        return self._predictions

    def with_predictions(self, frame: pd.DataFrame | None) -> Report:
        self._predictions = frame
        return self

    def max_prediction_rows(self) -> int:
        """The most rows this report's predictions file can hold: every scored row once, plus
        derived copies (scores under attack) of at most as many rows again per probe; and
        never more than :data:`MAX_SCORED_ROWS` in all, whatever the report claims."""
        return min(sum(self.splits.values()) * (1 + len(self.probes)), MAX_SCORED_ROWS)

    def max_example_rows(self) -> int:
        """The most rows this report's examples file can hold (per probe with examples: one
        row per scored test row and attribution method)."""
        tests = sum(n for s, n in self.splits.items() if s != "val")
        return min(tests * EXAMPLES_PER_ROW * len(self.probes), MAX_SCORED_ROWS)

    def probe(self, name: str) -> ProbeResult:
        for p in self.probes:
            if p.name == name:
                return p
        raise KeyError(f"the report has no {name!r} probe; probes: {[p.name for p in self.probes]}")

    def metric(
        self,
        metric: str,
        split: str,
        *,
        probe: str | None = None,
        attribute: str | None = None,
        group: str | None = None,
    ) -> MetricResult:
        """The one result matching all the keys (KeyError if none)."""
        for p in self.probes:
            if probe is not None and p.name != probe:
                continue
            for m in p.metrics:
                if (m.metric, m.split, m.attribute, m.group) == (metric, split, attribute, group):
                    return m
        raise KeyError(f"no {metric} on {split} (attribute={attribute}, group={group})")

    def to_frame(self) -> pd.DataFrame:
        """Every metric as one row (columns as in :class:`MetricResult`)."""
        rows = [m.model_dump() for p in self.probes for m in p.metrics]
        return pd.DataFrame(rows, columns=list(MetricResult.model_fields))

    def save(self, folder: str | Path, *, predictions: bool = False) -> Path:
        """Write ``report.json`` (with ``predictions``: also ``predictions.parquet`` and,
        when a probe kept per-example scores, ``examples.parquet``) atomically, and the
        gallery's PNGs (``gallery/``) and the probes' figures (``figures/``) when a probe
        made them.

        The report records each file's sha256, so :meth:`load` attaches only the files
        written with it; files left in ``folder`` by an earlier report are removed.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        update: dict[str, str | None] = {"predictions_sha256": None, "examples_sha256": None}
        examples = self._examples_frame()
        if predictions:
            if self._predictions is None:
                raise MedFailError("this report kept no predictions to save")
            update["predictions_sha256"] = write_predictions(
                self._predictions, folder / PREDICTIONS_FILE
            )
            if examples is not None:
                update["examples_sha256"] = write_predictions(examples, folder / EXAMPLES_FILE)
        report = self.model_copy(update=update)
        path = folder / REPORT_FILE
        atomic_write_text(path, report.model_dump_json(indent=1) + "\n")
        # after the new report is in place: an earlier model's files go
        for name, key in (
            (PREDICTIONS_FILE, "predictions_sha256"),
            (EXAMPLES_FILE, "examples_sha256"),
        ):
            if update[key] is None:
                (folder / name).unlink(missing_ok=True)
        write_gallery([item for p in self.probes for item in p.gallery], folder / GALLERY_DIR)
        write_pngs({k: v for p in self.probes for k, v in p.figures.items()}, folder / FIGURES_DIR)
        return path

    def _examples_frame(self) -> pd.DataFrame | None:
        """Every probe's examples in one table, with a ``probe`` column first."""
        frames = [
            p.examples.assign(probe=p.name)[["probe", *p.examples.columns]]
            for p in self.probes
            if p.examples is not None
        ]
        return pd.concat(frames, ignore_index=True) if frames else None

    @classmethod
    def load(cls, path: str | Path) -> Report:
        """Read a report JSON (a folder means its ``report.json``) and, if the report names
        one, its predictions file, checked against the recorded sha256."""
        path = Path(path)
        if path.is_dir():
            path = path / REPORT_FILE
        if not path.exists():
            raise MedFailError(f"no report at {path}")
        raw = read_limited(path, MAX_REPORT_BYTES, MedFailError)
        try:
            report = cls.model_validate_json(raw)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(map(str, first["loc"])) or "(top level)"
            detail = f"{where}: {first['msg'].removeprefix('Value error, ')}"
            more = f"; {e.error_count() - 1} more problem(s)" if e.error_count() > 1 else ""
            raise MedFailError(f"{path}: not a valid MedFail report ({detail}{more})") from e
        if report.schema_version != SCHEMA_VERSION:
            raise MedFailError(
                f"{path}: report schema {report.schema_version}; MedFail reads {SCHEMA_VERSION}"
            )
        if report.predictions_sha256 is not None:
            report._predictions = _recorded(
                path, PREDICTIONS_FILE, report.predictions_sha256, report.max_prediction_rows()
            )
        if report.examples_sha256 is not None:
            frame = _recorded(
                path, EXAMPLES_FILE, report.examples_sha256, report.max_example_rows()
            )
            report._attach_examples(frame, path.parent / EXAMPLES_FILE)
        return report

    def _attach_examples(self, frame: pd.DataFrame, file: Path) -> None:
        """Hand each probe its rows of the examples table."""
        if "probe" not in frame.columns:
            raise MedFailError(f"{file}: no probe column; not a MedFail examples file")
        for p in self.probes:
            rows = frame[frame["probe"] == p.name]
            if len(rows):
                p._examples = rows.drop(columns="probe").reset_index(drop=True)


def _recorded(report: Path, name: str, sha256: str, max_rows: int) -> pd.DataFrame:
    """The table ``name`` beside ``report``, which recorded its ``sha256``: refused when
    missing, when its digest differs (stale or edited) or when it holds over ``max_rows``."""
    file = report.parent / name
    if not file.is_file():
        raise MedFailError(f"{report}: its {name.split('.')[0]} file {file} is missing")
    if sha256_file(file) != sha256:
        raise MedFailError(
            f"{file} does not belong to {report}: its sha256 differs from the one the "
            "report recorded (stale or edited)"
        )
    return read_predictions(file, max_rows)
