"""The task spec: the YAML schema of ``tasks/<id>/<version>.yaml``.

A spec is data, not code. It names a registered data source with its parameters, the
label rule, the group attributes, the split recipe, the probes and the threshold rule,
and the licence, citations and changelog. :func:`load_spec` parses it with the hardened
loader of :mod:`benchmark.common.safe_yaml` and validates it with pydantic; any problem raises
:class:`~benchmark.errors.SpecError` naming the file and the field (``label.rule.horizon``).

A spec with ``manifest_sha256`` set is a *released* version: its build must reproduce that
digest exactly (see :mod:`benchmark.tasks.manifest`). A spec without it is a draft.
"""

from __future__ import annotations

import datetime as dt
import re
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from benchmark.catalogue.taxonomy import Modality, check_path
from benchmark.common.conventions import PROBE_NAMES, THRESHOLD_RULES
from benchmark.common.hashing import sha256_json
from benchmark.common.safe_yaml import load_yaml, read_yaml
from benchmark.common.schema import StrictModel
from benchmark.errors import SpecError

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
TASK_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")

#: Column names the build writes itself; features and attributes may not reuse them.
RESERVED_COLUMNS = frozenset({"sample_id", "patient_id", "site", "label", "split", "domain"})
GROUP_PREFIX = "group_"
SPLIT_NAMES = ("train", "val", "id_test", "ood_val", "ood_test")
ID_SPLITS = ("train", "val", "id_test")
OOD_SPLITS = ("ood_val", "ood_test")

Scalar = str | int | float | bool


def is_valid_ref(task_id: str, version: str) -> bool:
    """Whether ``task_id`` and ``version`` are a well-formed task id and semantic version."""
    return bool(TASK_ID.fullmatch(task_id) and SEMVER.fullmatch(version))


def version_key(version: str) -> tuple[int, int, int]:
    """Sort key of a semantic version ``MAJOR.MINOR.PATCH``."""
    match = SEMVER.fullmatch(version)
    if match is None:
        raise ValueError(f"not a semantic version MAJOR.MINOR.PATCH: {version!r}")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


class SourceSpec(StrictModel):
    """A registered data source (see :data:`benchmark.tasks.sources.SOURCES`) and its parameters."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class SurvivalHorizonRule(StrictModel):
    """Binary label from survival data at a horizon H (``time`` in ``unit``).

    positive: the event happened at ``time <= H``; negative: followed up to ``time >= H``
    without the event by H; dropped: censored before H (outcome at H unknown).
    """

    kind: Literal["survival_horizon"]
    event: str
    time: str
    horizon: float = Field(gt=0)
    unit: Literal["days", "months", "years"]


class ColumnRule(StrictModel):
    """Label read from a column; ``mapping`` sends each raw value (compared as text) to a class.

    Rows whose value is missing or not in ``mapping`` are dropped and counted.
    """

    kind: Literal["column"]
    column: str
    mapping: dict[str, str]


LabelRule = Annotated[SurvivalHorizonRule | ColumnRule, Field(discriminator="kind")]


class LabelSpec(StrictModel):
    """The prediction target. ``classes`` gives the column order of ``predict_proba``."""

    name: str
    description: str
    classes: list[str] = Field(min_length=2)
    positive: str | None = None
    rule: LabelRule

    @model_validator(mode="after")
    def _check_classes(self) -> LabelSpec:
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be distinct, got {self.classes}")
        if len(self.classes) == 2:
            if self.positive is None:
                raise ValueError("a binary label must name its positive class")
            if self.positive != self.classes[1]:
                raise ValueError(
                    f"positive class {self.positive!r} must be classes[1] (column 1 of "
                    f"predict_proba), got classes={self.classes}"
                )
        elif self.positive is not None and self.positive not in self.classes:
            raise ValueError(f"positive {self.positive!r} is not one of {self.classes}")
        if isinstance(self.rule, SurvivalHorizonRule) and len(self.classes) != 2:
            raise ValueError("a survival_horizon rule makes a binary label: give two classes")
        if isinstance(self.rule, ColumnRule):
            unknown = sorted(set(self.rule.mapping.values()) - set(self.classes))
            if unknown:
                raise ValueError(f"rule.mapping sends values to unknown classes {unknown}")
        return self


class AttributeSpec(StrictModel):
    """A group attribute for fairness: a column, optionally binned or relabelled.

    ``bins`` are right-open edges ``[b0, b1), [b1, b2), ...`` with one label per interval;
    ``mapping`` relabels raw values (compared as text). ``reference`` is the group every
    gap is measured against.
    """

    column: str
    description: str = ""
    bins: list[float] | None = None
    labels: list[str] | None = None
    mapping: dict[str, str] | None = None
    reference: str

    @model_validator(mode="after")
    def _check_binning(self) -> AttributeSpec:
        if self.bins is not None:
            if self.mapping is not None:
                raise ValueError("give either bins or mapping, not both")
            edges = self.bins
            if len(edges) < 2 or any(a >= b for a, b in pairwise(edges)):
                raise ValueError(f"bins must be at least two increasing edges, got {self.bins}")
            if self.labels is None or len(self.labels) != len(self.bins) - 1:
                raise ValueError("bins need labels, one per interval (len(bins) - 1)")
            if len(set(self.labels)) != len(self.labels):
                raise ValueError(f"bin labels must be distinct, got {self.labels}")
        elif self.labels is not None:
            raise ValueError("labels are only used with bins")
        groups = self.labels or (sorted(set(self.mapping.values())) if self.mapping else None)
        if groups is not None and self.reference not in groups:
            raise ValueError(f"reference {self.reference!r} is not one of the groups {groups}")
        return self


class ArraySpec(StrictModel):
    """Array inputs of an image or telemetry task, stored beside each split's table.

    ``image``: ``(n, C, H, W)`` uint8 on disk, handed to models as float32 in [0, 1].
    ``series``: ``(n, C, T)`` float32 in each channel's physical unit, NaN = missing.
    ``masks``: the source gives a ground-truth region per sample (``(n, H, W)``, 1 = ROI);
    ``rater_masks``: it also gives one mask per rater (``(n, R, H, W)``);
    ``shortcut_masks``: the pixels of a known shortcut (a burned-in marker) per sample
    (``(n, H, W)``, all zero where the image has none).
    """

    kind: Literal["image", "series"]
    channels: list[str] = Field(min_length=1)
    masks: bool = False
    rater_masks: bool = False
    shortcut_masks: bool = False

    @model_validator(mode="after")
    def _check(self) -> ArraySpec:
        if len(set(self.channels)) != len(self.channels):
            raise ValueError(f"channels must be distinct, got {self.channels}")
        if self.kind == "series" and (self.masks or self.rater_masks or self.shortcut_masks):
            raise ValueError("masks are regions of images; a series task has none")
        if self.rater_masks and not self.masks:
            raise ValueError("rater_masks need masks (the consensus region)")
        return self

    @property
    def names(self) -> list[str]:
        """The arrays a split carries, in file order."""
        flags = {"masks": self.masks, "rater_masks": self.rater_masks}
        flags["shortcut_masks"] = self.shortcut_masks
        return ["inputs", *(name for name, on in flags.items() if on)]


class FeaturesSpec(StrictModel):
    """Model inputs: tabular columns (numeric float64, categorical text), or one array.

    An array task (``array`` set) has no tabular features: the array is the whole input.
    """

    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    array: ArraySpec | None = None

    @model_validator(mode="after")
    def _check_names(self) -> FeaturesSpec:
        names = [*self.numeric, *self.categorical]
        if self.array is not None:
            if names:
                raise ValueError("an array task takes the array alone: drop numeric/categorical")
            return self
        if not names:
            raise ValueError("a task needs at least one feature")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"features listed twice: {dup}")
        bad = sorted(n for n in names if n in RESERVED_COLUMNS or n.startswith(GROUP_PREFIX))
        if bad:
            raise ValueError(
                f"feature names {bad} clash with reserved columns "
                f"{sorted(RESERVED_COLUMNS)} or the {GROUP_PREFIX!r} prefix"
            )
        return self

    @property
    def names(self) -> list[str]:
        return [*self.numeric, *self.categorical]


class DomainSpec(StrictModel):
    """The rows of one domain: those whose ``column`` (compared as text) is in ``values``."""

    column: str | None = None
    values: list[Scalar] | None = None
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> DomainSpec:
        if (self.column is None) != (self.values is None):
            raise ValueError("give column and values together, or neither (all rows)")
        if self.values is not None and not self.values:
            raise ValueError("values must not be empty")
        return self


class SplitSpec(StrictModel):
    """Part of one domain: a share of its patients (``fraction``), or the rows whose
    ``column`` (compared as text) is in ``values``, e.g. a data set's official split."""

    domain: str
    fraction: float | None = Field(default=None, gt=0, le=1)
    column: str | None = None
    values: list[Scalar] | None = None

    @model_validator(mode="after")
    def _check(self) -> SplitSpec:
        if (self.column is None) != (self.values is None):
            raise ValueError("give column and values together")
        if (self.fraction is None) == (self.column is None):
            raise ValueError("give either fraction or column/values")
        if self.values is not None and not self.values:
            raise ValueError("values must not be empty")
        return self

    @property
    def by_fraction(self) -> bool:
        return self.fraction is not None


class SplitsSpec(StrictModel):
    """How rows become splits.

    Rows are first sorted into ``domains`` (rows in no domain are dropped and counted);
    each domain's *patients* are then shuffled with the task seed (stratified by label
    when ``stratify``) and cut into its splits by ``fraction``, so no patient can cross
    splits within a domain; the build also refuses a patient found in two domains.
    A domain may instead take its splits from a column (an official split file): each
    split names its ``column`` and ``values``, and a patient whose rows land in two
    splits is refused.
    """

    domains: dict[str, DomainSpec] = Field(min_length=1)
    stratify: bool = True
    train: SplitSpec
    val: SplitSpec
    id_test: SplitSpec | None = None
    ood_val: SplitSpec | None = None
    ood_test: SplitSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> SplitsSpec:
        used = self.present()
        for name, split in used.items():
            if split.domain not in self.domains:
                raise ValueError(
                    f"{name}.domain {split.domain!r} is not one of the domains "
                    f"{sorted(self.domains)}"
                )
        if self.id_test is None and self.ood_test is None:
            raise ValueError("give at least one test split (id_test or ood_test)")
        id_domain = self.train.domain
        for name in ID_SPLITS:
            split = used.get(name)
            if split is not None and split.domain != id_domain:
                raise ValueError(f"{name} must share train's domain {id_domain!r}")
        for name in OOD_SPLITS:
            split = used.get(name)
            if split is not None and split.domain == id_domain:
                raise ValueError(f"{name} must not use train's domain {id_domain!r}")
        for domain in {s.domain for s in used.values()}:
            mine = {n: s for n, s in used.items() if s.domain == domain}
            modes = {s.by_fraction for s in mine.values()}
            if len(modes) > 1:
                raise ValueError(
                    f"splits of domain {domain!r} mix fraction and column/values; use one"
                )
            if modes == {True}:
                total = sum(s.fraction or 0.0 for s in mine.values())
                if abs(total - 1.0) > 1e-9:
                    raise ValueError(f"fractions of domain {domain!r} sum to {total:g}, not 1")
                continue
            seen: dict[str, str] = {}
            for name, split in mine.items():
                key = (split.column, [str(v) for v in split.values or []])
                for value in key[1]:
                    owner = seen.setdefault(f"{key[0]}={value}", name)
                    if owner != name:
                        raise ValueError(
                            f"{name} and {owner} both take {key[0]} = {value!r} in domain "
                            f"{domain!r}"
                        )
        unused = sorted(set(self.domains) - {s.domain for s in used.values()})
        if unused:
            raise ValueError(f"domains {unused} are declared but no split uses them")
        return self

    def present(self) -> dict[str, SplitSpec]:
        """The splits this task has, in canonical order."""
        return {n: s for n in SPLIT_NAMES if (s := getattr(self, n)) is not None}


class ThresholdSpec(StrictModel):
    """The operating-threshold rule, applied on ``val`` and then frozen."""

    rule: Literal["youden", "fixed_specificity", "fixed"] = "youden"
    specificity: float | None = Field(default=None, gt=0, lt=1)
    value: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> ThresholdSpec:
        if (self.rule == "fixed_specificity") != (self.specificity is not None):
            raise ValueError("specificity is required by, and only by, rule fixed_specificity")
        if (self.rule == "fixed") != (self.value is not None):
            raise ValueError("value is required by, and only by, rule fixed")
        return self

    def describe(self) -> str:
        text = THRESHOLD_RULES[self.rule]
        if self.rule == "fixed_specificity":
            text += f" (target specificity {self.specificity:g})"
        if self.rule == "fixed":
            text += f" (threshold {self.value:g})"
        return text


class ValidityClaim(StrictModel):
    """The failure an ERM baseline must show before the task is released.

    The report metric named by ``probe``/``metric``/``split`` (and ``attribute``/``group``
    for fairness gaps) must have a ``level`` bootstrap CI entirely on the ``direction``
    side of zero, e.g. ``shift``/``ood_minus_id_auroc`` negative (an ID->OOD drop) or
    ``fairness``/``auroc_gap`` negative for the disadvantaged group. ``baseline`` names
    the ``medfail baselines`` method and model family; ``seeds`` are its training seeds.
    """

    probe: str
    metric: str
    split: str = "ood_test"
    attribute: str | None = None
    group: str | None = None
    direction: Literal["negative", "positive"]
    baseline: str = "erm"
    family: str
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    level: float = Field(default=0.95, gt=0, lt=1)

    def describe(self) -> str:
        where = f"`{self.metric}` ({self.probe}) on `{self.split}`"
        if self.attribute is not None:
            where += f" for `{self.attribute}={self.group}`"
        side = "below" if self.direction == "negative" else "above"
        return f"{where}: the {self.level:.0%} CI lies {side} 0"


class Citation(StrictModel):
    text: str
    doi: str | None = None
    url: str | None = None


class LicenseSpec(StrictModel):
    """``data`` is the licence of the underlying data (SPDX id or a short name)."""

    data: str
    url: str | None = None
    note: str = ""


class ChangelogEntry(StrictModel):
    version: str
    date: dt.date
    changes: str

    @field_validator("version")
    @classmethod
    def _semver(cls, v: str) -> str:
        version_key(v)
        return v


class TaskSpec(StrictModel):
    """One immutable task version. See the module docstring and docs/tasks-and-data.md."""

    id: str
    version: str
    title: str
    summary: str
    failure: str = Field(description="The failure this task reproduces, in one paragraph.")
    modality: Modality
    taxonomy: list[str] = Field(min_length=1)
    source: SourceSpec
    seed: int = Field(ge=0, lt=2**32)
    label: LabelSpec
    features: FeaturesSpec
    attributes: dict[str, AttributeSpec] = Field(
        default_factory=dict,
        description="Group attributes (the fairness probe needs at least one).",
    )
    annotations: list[str] = Field(
        default_factory=list,
        description="Source columns kept as text for analysis (never model inputs).",
    )
    sample_id: str | None = None
    patient_id: str | None = None
    site: str | None = None
    splits: SplitsSpec
    probes: list[str] = Field(min_length=1)
    threshold: ThresholdSpec = Field(default_factory=ThresholdSpec)
    validity: ValidityClaim | None = None
    min_group_size: int = Field(default=30, ge=1)
    shard_rows: int = Field(default=100_000, ge=1)
    license: LicenseSpec
    citations: list[Citation] = Field(min_length=1)
    changelog: list[ChangelogEntry] = Field(min_length=1)
    manifest_sha256: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not TASK_ID.fullmatch(v):
            raise ValueError(f"task id {v!r} must be lowercase letters, digits and '-' (3-64)")
        return v

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        version_key(v)
        return v

    @field_validator("taxonomy")
    @classmethod
    def _taxonomy(cls, paths: list[str]) -> list[str]:
        for p in paths:
            check_path(p)
        return paths

    @field_validator("probes")
    @classmethod
    def _probes(cls, names: list[str]) -> list[str]:
        unknown = sorted(set(names) - set(PROBE_NAMES))
        if unknown:
            raise ValueError(f"unknown probes {unknown}; known: {', '.join(PROBE_NAMES)}")
        return names

    @field_validator("attributes")
    @classmethod
    def _attribute_names(cls, attrs: dict[str, AttributeSpec]) -> dict[str, AttributeSpec]:
        bad = [a for a in attrs if not re.match(r"^[a-z][a-z0-9_]*$", a)]
        if bad:
            raise ValueError(f"attribute names {bad} must be lowercase snake_case")
        return attrs

    @field_validator("manifest_sha256")
    @classmethod
    def _sha(cls, v: str | None) -> str | None:
        if v is not None and not SHA256.fullmatch(v):
            raise ValueError("manifest_sha256 must be 64 lowercase hex digits")
        return v

    @field_validator("annotations")
    @classmethod
    def _annotation_names(cls, names: list[str]) -> list[str]:
        bad = sorted(n for n in names if n in RESERVED_COLUMNS or n.startswith(GROUP_PREFIX))
        if bad or len(set(names)) != len(names):
            raise ValueError(
                f"annotations must be distinct and avoid reserved columns "
                f"{sorted(RESERVED_COLUMNS)} and the {GROUP_PREFIX!r} prefix (got {names})"
            )
        return names

    @model_validator(mode="after")
    def _check_fairness_groups(self) -> TaskSpec:
        if "fairness" in self.probes and not self.attributes:
            raise ValueError(
                "the fairness probe needs group attributes: add some, or drop the probe "
                "(some sources, e.g. MedMNIST, carry no demographics)"
            )
        return self

    @model_validator(mode="after")
    def _check_leakage(self) -> TaskSpec:
        rule = self.label.rule
        outcome = (
            {rule.event, rule.time} if isinstance(rule, SurvivalHorizonRule) else {rule.column}
        )
        leaks = sorted(set(self.features.names) & outcome)
        if leaks:
            raise ValueError(f"features {leaks} are outcome columns of the label rule (leakage)")
        both = sorted(set(self.features.names) & set(self.annotations))
        if both:
            raise ValueError(f"columns {both} are both features and annotations")
        return self

    @model_validator(mode="after")
    def _check_validity(self) -> TaskSpec:
        claim = self.validity
        if claim is None:
            return self
        if claim.probe not in self.probes:
            raise ValueError(f"validity.probe {claim.probe!r} is not one of the task's probes")
        if claim.split not in self.splits.present():
            raise ValueError(f"validity.split {claim.split!r} is not a split of this task")
        if (claim.attribute is None) != (claim.group is None):
            raise ValueError("validity: give attribute and group together, or neither")
        if claim.attribute is not None:
            if claim.attribute not in self.attributes:
                raise ValueError(f"validity.attribute {claim.attribute!r} is not an attribute")
            if claim.group == self.attributes[claim.attribute].reference:
                raise ValueError(
                    f"validity.group {claim.group!r} is the reference group of "
                    f"{claim.attribute!r}: its gap is 0 by definition"
                )
        return self

    @model_validator(mode="after")
    def _check_changelog(self) -> TaskSpec:
        versions = [c.version for c in self.changelog]
        if self.version not in versions:
            raise ValueError(f"changelog has no entry for this version {self.version}")
        if any(version_key(v) > version_key(self.version) for v in versions):
            raise ValueError("changelog mentions a version newer than this spec")
        return self

    @property
    def ref(self) -> str:
        """``id@version``."""
        return f"{self.id}@{self.version}"

    @property
    def released(self) -> bool:
        return self.manifest_sha256 is not None

    @property
    def group_columns(self) -> dict[str, str]:
        """Attribute name -> the column that holds it in the built data."""
        return {name: GROUP_PREFIX + name for name in self.attributes}

    def sha256(self) -> str:
        """Digest of the spec's content (canonical JSON, defaults and the pin left out).

        Comments and key order in the YAML do not change it; any change of meaning does.
        """
        return sha256_json(
            self.model_dump(mode="json", exclude={"manifest_sha256"}, exclude_defaults=True)
        )


def format_validation_error(where: str, err: ValidationError) -> str:
    """One line per problem: ``file: field.path: message``."""
    lines = []
    for item in err.errors():
        loc = ".".join(str(p) for p in item["loc"] if not str(p).startswith("function-"))
        msg = item["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {loc or '(top level)'}: {msg}")
    return "\n".join(lines)


def spec_from_text(text: str | bytes, where: str = "<spec>") -> TaskSpec:
    """Validate spec YAML text into a :class:`TaskSpec`."""
    return spec_from_data(load_yaml(text, where, SpecError), where)


def spec_from_data(data: Any, where: str) -> TaskSpec:
    """Validate parsed YAML (``where`` names its file in errors) into a :class:`TaskSpec`."""
    if not isinstance(data, dict):
        raise SpecError(f"{where}: a task spec must be a YAML mapping, got {type(data).__name__}")
    try:
        return TaskSpec.model_validate(data)
    except ValidationError as e:
        raise SpecError(format_validation_error(where, e)) from e


def load_spec(path: str | Path) -> TaskSpec:
    """Load ``tasks/<id>/<version>.yaml``; the file's folder and name must match id and version."""
    path = Path(path)
    spec = spec_from_data(read_yaml(path, SpecError), str(path))
    if path.stem != spec.version:
        raise SpecError(f"{path}: version: {spec.version!r} does not match the file name")
    if path.parent.name != spec.id:
        raise SpecError(f"{path}: id: {spec.id!r} does not match the folder {path.parent.name!r}")
    return spec
