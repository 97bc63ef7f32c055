"""The failure-case catalogue: documented real-world failures as validated YAML.

Each case is one file ``cases/<domain>/<id>.yaml`` checked by :class:`Case`. A case records
what failed (with the published figures, quoted exactly), why, at which deployment stage,
what mitigation was reported, the sources it rests on, and the MedFail tasks that
reproduce its mechanism (``reproduced_by``). :func:`load_cases` reads a whole catalogue
and raises :class:`~benchmark.errors.CaseError` naming the file and the field of the
first problem: a missing source, an unknown taxonomy path, a duplicate id, a file name
that is not its id.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from benchmark.bundled import bundled
from benchmark.catalogue.taxonomy import Modality, check_path
from benchmark.common.safe_yaml import read_yaml
from benchmark.common.schema import StrictModel
from benchmark.errors import CaseError

#: The catalogue shipped with MedFail (``cases/`` beside the packages).
CASES_ROOT = bundled("cases")
CASE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,78}[a-z0-9]$")
DOI = re.compile(r"^10\.\d{4,9}/\S+$")
ARXIV = re.compile(r"^(\d{4}\.\d{4,5}|[a-z-]+(\.[A-Z]{2})?/\d{7})(v\d+)?$")

#: The seven clinical domains (the task modalities).
Domain = Modality
#: Where in a model's life the failure was observed.
Stage = Literal[
    "retrospective-study",
    "prospective-study",
    "deployed-product",
    "audit",
    "regulator-action",
]
#: How strong the evidence is: the kind of source the figures come from.
Evidence = Literal[
    "peer-reviewed",
    "preprint",
    "regulatory-record",
    "institutional-report",
    "news-report",
]
#: The failure dimensions MedFail measures or documents.
Dimension = Literal[
    "shift",
    "subgroup-bias",
    "shortcut",
    "adversarial",
    "calibration",
    "explanation",
    "workflow",
    "regulatory",
    "label-noise",
    "underspecification",
]
#: How closely a task reproduces a case: the same data, the same mechanism on other data,
#: or an analogue of one part of it.
Closeness = Literal["same-data", "same-mechanism", "analogue"]


class Source(StrictModel):
    """A publication or record the case rests on; at least one of doi, arxiv or url."""

    authors: str = Field(min_length=2)
    title: str = Field(min_length=3)
    venue: str = Field(min_length=2)
    year: int = Field(ge=1950, le=2100)
    doi: str | None = None
    arxiv: str | None = None
    url: str | None = None

    @field_validator("doi")
    @classmethod
    def _doi(cls, doi: str | None) -> str | None:
        if doi is not None and not DOI.match(doi):
            raise ValueError(f"not a DOI (10.<registrant>/<suffix>, no https:// prefix): {doi!r}")
        return doi

    @field_validator("arxiv")
    @classmethod
    def _arxiv(cls, arxiv: str | None) -> str | None:
        if arxiv is not None and not ARXIV.match(arxiv):
            raise ValueError(f"not an arXiv id (e.g. 1807.00431): {arxiv!r}")
        return arxiv

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"^https?://\S+$", url):
            raise ValueError(f"not an http(s) URL: {url!r}")
        return url

    @model_validator(mode="after")
    def _linkable(self) -> Source:
        if not (self.doi or self.arxiv or self.url):
            raise ValueError("a source needs at least one of doi, arxiv or url")
        return self

    @property
    def link(self) -> str:
        """The URL a reader opens: the DOI resolver, else arXiv, else the URL."""
        if self.doi:
            return f"https://doi.org/{self.doi}"
        if self.arxiv:
            return f"https://arxiv.org/abs/{self.arxiv}"
        assert self.url is not None
        return self.url


class Mitigation(StrictModel):
    """The mitigation the sources report, and what MedFail's own results say about it."""

    reported: str | None = None
    medfail: str | None = None


class Reproduction(StrictModel):
    """A MedFail task that reproduces the case's mechanism, and how closely."""

    task: str
    closeness: Closeness
    note: str = Field(min_length=10)


class Case(StrictModel):
    """One documented failure. Figures are quoted exactly as the source gives them."""

    id: str
    title: str = Field(min_length=5)
    year: int = Field(ge=1950, le=2100)
    domain: Domain
    modality: str = Field(min_length=2)
    clinical_task: str = Field(min_length=3)
    taxonomy: list[str] = Field(min_length=1)
    dimensions: list[Dimension] = Field(min_length=1)
    what_failed: str = Field(min_length=20)
    figures: list[str] = Field(default_factory=list)
    root_cause: str = Field(min_length=10)
    stage: Stage
    mitigation: Mitigation = Field(default_factory=Mitigation)
    sources: list[Source] = Field(min_length=1)
    evidence: Evidence
    confirmed: bool
    verification: str = Field(min_length=10)
    reproduced_by: list[Reproduction] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id(cls, case_id: str) -> str:
        if not CASE_ID.match(case_id):
            raise ValueError(f"case id must be lowercase letters, digits and '-': {case_id!r}")
        return case_id

    @field_validator("taxonomy")
    @classmethod
    def _taxonomy(cls, paths: list[str]) -> list[str]:
        for path in paths:
            check_path(path)
        if len(set(paths)) != len(paths):
            raise ValueError("taxonomy paths repeat")
        return paths

    @field_validator("dimensions")
    @classmethod
    def _unique_dimensions(cls, dims: list[str]) -> list[str]:
        if len(set(dims)) != len(dims):
            raise ValueError("dimensions repeat")
        return dims

    @model_validator(mode="after")
    def _unique_tasks(self) -> Case:
        tasks = [r.task for r in self.reproduced_by]
        if len(set(tasks)) != len(tasks):
            raise ValueError("reproduced_by names a task twice")
        return self

    @property
    def layers(self) -> list[str]:
        """The taxonomy layers the case touches, in first-seen order."""
        return list(dict.fromkeys(path.split("/")[0] for path in self.taxonomy))


def _location(err: dict) -> str:
    return ".".join(str(part) for part in err["loc"]) or "<case>"


def load_case(path: Path) -> Case:
    """Parse and validate one case file; its name must be ``<id>.yaml`` under ``<domain>/``."""
    raw = read_yaml(path, CaseError)
    if not isinstance(raw, dict):
        raise CaseError(f"{path}: a case file must hold a mapping, got {type(raw).__name__}")
    try:
        case = Case.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{_location(e)}: {e['msg']}" for e in exc.errors())
        raise CaseError(f"{path}: {problems}") from exc
    if path.stem != case.id:
        raise CaseError(f"{path}: file name must be the case id, {case.id}.yaml")
    if path.parent.name != case.domain:
        raise CaseError(f"{path}: a {case.domain} case belongs in cases/{case.domain}/")
    return case


def load_cases(root: Path) -> list[Case]:
    """Every case under ``root`` (``<domain>/<id>.yaml``), sorted by id; ids must be unique."""
    if not root.is_dir():
        raise CaseError(f"no case catalogue at {root}")
    seen: dict[str, Path] = {}
    cases: list[Case] = []
    for path in sorted(root.glob("*/*.yaml")):
        case = load_case(path)
        if case.id in seen:
            raise CaseError(f"duplicate case id {case.id!r}: {seen[case.id]} and {path}")
        seen[case.id] = path
        cases.append(case)
    return sorted(cases, key=lambda c: c.id)


def cases_reproduced_by(task_id: str, root: Path = CASES_ROOT) -> list[tuple[Case, Reproduction]]:
    """The catalogue's cases that name ``task_id`` in ``reproduced_by``, with that link
    (empty when no catalogue ships with this installation)."""
    if not root.is_dir():
        return []
    return [(c, r) for c in load_cases(root) for r in c.reproduced_by if r.task == task_id]
