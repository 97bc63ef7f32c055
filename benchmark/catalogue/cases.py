"""The failure-case catalogue: documented real-world failures as validated YAML.

Each case is one file ``cases/<domain>/<id>.yaml`` checked by :class:`Case`. A case records
what failed (with the published figures, quoted exactly), why, at which deployment stage,
what mitigation was reported, the sources it rests on, and the MedFail tasks that
reproduce its mechanism (``reproduced_by``). :func:`load_cases` reads a whole catalogue
and raises :class:`~benchmark.errors.CaseError` naming the file and the field of the
first problem: a missing source, an unknown taxonomy path, a duplicate id, a file name
that is not its id, text that narrates how a source was read (:data:`PROCESS_WORDS`)
instead of stating the evidence, a source whose only link is a mirror
(:data:`MIRROR_HOSTS`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

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

#: Hosts that copy, scrape or aggregate other publishers' pages. A link there is not a
#: citable record: it may change or vanish, and it is not what a reader can cite. A source
#: needs a DOI, an arXiv id, a PubMed/PMC page or the publisher's or regulator's own page; a
#: mirror may stand beside a DOI or arXiv id but never as a source's only link. A host
#: matches itself and its subdomains (``cord.distantreader.org``).
MIRROR_HOSTS: frozenset[str] = frozenset(
    {
        "alphaxiv.org",
        "ar5iv.org",
        "ar5iv.labs.arxiv.org",
        "arxiv-vanity.com",
        "arxivlens.com",
        "coek.info",
        "deepai.org",
        "distantreader.org",
        "docslib.org",
        "emergentmind.com",
        "folu.me",
        "globalauthorid.com",
        "issuhub.com",
        "medluna.com",
        "nukepass.com",
        "paperexplained.cn",
        "paperswithcode.com",
        "readkong.com",
        "researchgate.net",
        "researchtrend.ai",
        "scholar.google.com",
        "scribd.com",
        "semanticscholar.org",
        "technologymag.org",
        "tomesphere.com",
        "truthrx.org",
        "vdocuments.mx",
        "vdocuments.net",
        "vnexplorer.net",
    }
)

#: Patterns (case-insensitive regular expressions) of words that narrate how a source was
#: read (the program or site it was read through, the part of a page that was "seen" or
#: "cut off", an internal brief called "the lead") instead of stating the evidence. A case
#: says which source supports it, by its canonical identity (journal article, DOI, PMID,
#: regulatory record, report), which figures were checked against it, and any limitation
#: as a fact about the evidence ("the abstract gives no per-group rates"; "the full text
#: was not checked"). The patterns are narrow enough to leave clinical wording alone:
#: "not seen on CT", "27 radiologists read 50 mammograms", "payment was cut off for",
#: "devices were not shown to perform equally", "median lead time", "mirrors a bias".
PROCESS_WORDS: tuple[str, ...] = (
    r"\bsearch (?:tool|service|engine|results?)\b",
    r"\b(?:read|seen) (?:through|via)\b",
    r"\bread on (?:PMC|PubMed|arXiv|(?:a|an|the) (?:[\w.-]+ ){0,3}(?:page|record|portal|repository)"
    r"|[\w-]+\.(?:com|org|net|gov|edu|cn|ai|me|info|uk)\b)",
    r"\bseen quoted\b",
    r"\b(?:text|page|pages|abstract|excerpts?|cop(?:y|ies)|material) (?:seen|shown|read)\b",
    r"\b(?:visible|shown) (?:abstract|text|excerpts?|page)\b",
    r"\bnot (?:seen|shown|visible)\b(?! (?:on|in|at|by|to|during)\b)",
    r"\bnot (?:seen|shown|visible) in (?:any|the) "
    r"(?:results?|text|excerpts?|pages?|cop(?:y|ies))\b",
    r"\bcut off (?:in|before|after) (?:the|its)\b",
    r"\b(?:sentence|text|excerpts?|abstract) (?:was|were) (?:cut off|truncated)\b",
    r"\btruncated (?:after|before|at)\b",
    r"\bfetch(?:ed|es|ing)?\b",
    r"\bbrows(?:ed|ing|er)\b",
    r"\bsnippets?\b",
    r"\bexcerpts?\b",
    r"\brepost(?:ed|s)?\b",
    r"\bmirror (?:of|page|site|copy)\b",
    r"\b(?:a|an|the|PubMed|PMC|PLOS|arXiv) mirror\b",
    r"\bmirrored by\b",
    r"\bcould not (?:be )?(?:open|read|access)",
    r"(?-i:(?<!type )(?<!types )\bI (?:could|read|saw|found|opened)\b)",
    r"\bgenerated summary\b",
    r"\bthe lead(?:'s)?\b(?! (?:author|investigator))",
    r"\bcord-19 cop(?:y|ies)\b",
    r"\b(?:alphaxiv|ar5iv|arxiv-vanity|arxivlens|citegraph|alethograph|deepai|distantreader"
    r"|docslib|emergentmind|globalauthorid|issuhub|medluna|metajournal|nukepass|openalex"
    r"|paperexplained|paperswithcode|readkong|researchgate|researchtrend|scribd|silverchair"
    r"|synapsesocial|technologymag|tomesphere|truthrx|vdocuments|vnexplorer|aminer|mendeley"
    r"|scite)\b",
    r"\bfolu\.me\b|\bcoek\.info\b",
    r"\b(?:google|semantic) scholar\b",
    r"\bhugging ?face papers\b",
)
_PROCESS = re.compile("|".join(f"(?:{p})" for p in PROCESS_WORDS), re.IGNORECASE)


def process_words(text: str) -> list[str]:
    """The phrases in ``text`` that narrate how a source was read (:data:`PROCESS_WORDS`)."""
    return [m.group(0) for m in _PROCESS.finditer(text)]


def is_mirror(url: str) -> bool:
    """Whether ``url`` is on a mirror or aggregator host (:data:`MIRROR_HOSTS`)."""
    host = (urlsplit(url).hostname or "").lower().removeprefix("www.")
    return any(host == h or host.endswith(f".{h}") for h in MIRROR_HOSTS)


def _states_evidence(value: str | list[str] | None) -> str | list[str] | None:
    """Field check: text states the evidence, never how a source was read."""
    texts = [value] if isinstance(value, str) else value or []
    found = [w for text in texts for w in process_words(text)]
    if found:
        raise ValueError(
            f"describes how a source was read ({', '.join(repr(w) for w in found)}); "
            "state the evidence instead: which source, which figures match, what it does "
            "not report"
        )
    return value


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

    _text = field_validator("authors", "title", "venue")(_states_evidence)

    @model_validator(mode="after")
    def _linkable(self) -> Source:
        if not (self.doi or self.arxiv or self.url):
            raise ValueError("a source needs at least one of doi, arxiv or url")
        if self.url and is_mirror(self.url) and not (self.doi or self.arxiv):
            raise ValueError(
                f"the only link is a mirror ({self.url}); cite the DOI, the PubMed page "
                "(https://pubmed.ncbi.nlm.nih.gov/<PMID>/) or the publisher's own page"
            )
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

    _text = field_validator("reported", "medfail")(_states_evidence)


class Reproduction(StrictModel):
    """A MedFail task that reproduces the case's mechanism, and how closely."""

    task: str
    closeness: Closeness
    note: str = Field(min_length=10)

    _text = field_validator("note")(_states_evidence)


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

    _text = field_validator(
        "title",
        "modality",
        "clinical_task",
        "what_failed",
        "figures",
        "root_cause",
        "verification",
    )(_states_evidence)

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
