"""The failure-case catalogue as a whole: queries, statistics, links and the published table.

The catalogue is ``cases/catalogue.yaml`` (id, semantic version, licence, changelog and,
once released, the ``manifest_sha256`` pin) plus one YAML file per case
(:mod:`benchmark.catalogue.cases`).
:func:`export` builds it like a task: ``data/cases-00000-of-00001.parquet`` (one row per
case; list and struct columns for taxonomy, figures, sources and reproducing tasks), a
dataset card ``README.md``, the catalogue spec as ``spec.yaml`` and a sha256
``manifest.json``, into the cache folder of ``medfail-cases@<version>``. The build is
byte-identical on every run, ``datasets.load_dataset("parquet", data_files=...)`` reads it,
and it is published and pulled by the same code as tasks (:mod:`benchmark.hub.transport`).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import yaml
from pydantic import Field, ValidationError

from benchmark.catalogue.browse import stats
from benchmark.catalogue.cases import CASES_ROOT, Case, load_cases
from benchmark.common.files import replace_dir, staging
from benchmark.common.hashing import sha256_json
from benchmark.common.safe_yaml import load_yaml
from benchmark.common.schema import StrictModel
from benchmark.errors import CaseError, ManifestMismatchError
from benchmark.tasks.build import CARD, SPEC_COPY, write_parquet
from benchmark.tasks.cache import task_dir
from benchmark.tasks.manifest import MANIFEST, Manifest, file_entry
from benchmark.tasks.spec import SEMVER, ChangelogEntry
from benchmark.version import __version__

CATALOGUE_ID = "medfail-cases"  # published and pulled like a task; spec.yaml is a CatalogueSpec
DATA_FILE = "data/cases-00000-of-00001.parquet"


class CatalogueSpec(StrictModel):
    """``cases/catalogue.yaml``: what the published catalogue is and which version."""

    id: str = CATALOGUE_ID
    version: str = Field(pattern=SEMVER.pattern)
    title: str
    description: str
    license: str
    changelog: list[ChangelogEntry] = Field(min_length=1)
    manifest_sha256: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def sha256(self) -> str:
        """Digest of the content, without the pin (as :meth:`TaskSpec.sha256`)."""
        return sha256_json(self.model_dump(mode="json", exclude={"manifest_sha256"}))


def catalogue_spec_from_text(text: str | bytes, where: str) -> CatalogueSpec:
    """Parse and validate a catalogue spec (``cases/catalogue.yaml`` or a build's spec.yaml)."""
    data = load_yaml(text, where, CaseError)
    try:
        return CatalogueSpec.model_validate(data)
    except ValidationError as e:
        raise CaseError(f"{where}: not a valid catalogue spec: {e}") from e


def load_catalogue_spec(root: Path = CASES_ROOT) -> CatalogueSpec:
    path = root / "catalogue.yaml"
    if not path.is_file():
        raise CaseError(f"no catalogue spec at {path}")
    return catalogue_spec_from_text(path.read_bytes(), str(path))


_SOURCE = pa.struct(
    [(k, pa.string()) for k in ("authors", "title", "venue")]
    + [("year", pa.int32())]
    + [(k, pa.string()) for k in ("doi", "arxiv", "url", "link")]
)
_REPRO = pa.struct([(k, pa.string()) for k in ("task", "closeness", "note")])
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("title", pa.string()),
        ("year", pa.int32()),
        ("domain", pa.string()),
        ("modality", pa.string()),
        ("clinical_task", pa.string()),
        ("taxonomy", pa.list_(pa.string())),
        ("layers", pa.list_(pa.string())),
        ("dimensions", pa.list_(pa.string())),
        ("what_failed", pa.string()),
        ("figures", pa.list_(pa.string())),
        ("root_cause", pa.string()),
        ("stage", pa.string()),
        ("mitigation_reported", pa.string()),
        ("mitigation_medfail", pa.string()),
        ("sources", pa.list_(_SOURCE)),
        ("evidence", pa.string()),
        ("confirmed", pa.bool_()),
        ("verification", pa.string()),
        ("reproduced_by", pa.list_(_REPRO)),
    ]
)


def to_table(cases: list[Case]) -> pa.Table:
    """One row per case, sorted by id, with :data:`SCHEMA`."""
    rows = []
    for c in sorted(cases, key=lambda c: c.id):
        row = c.model_dump(mode="json", exclude={"mitigation", "sources", "reproduced_by"})
        row |= {
            "layers": c.layers,
            "mitigation_reported": c.mitigation.reported,
            "mitigation_medfail": c.mitigation.medfail,
            "sources": [s.model_dump(mode="json") | {"link": s.link} for s in c.sources],
            "reproduced_by": [r.model_dump(mode="json") for r in c.reproduced_by],
        }
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def render_card(spec: CatalogueSpec, cases: list[Case], digest: str) -> str:
    """The dataset card: front matter for the Hub, then counts, fields and the changelog."""
    s = stats(cases)
    meta = {
        "pretty_name": spec.title,
        "license": "other",
        "license_name": spec.license,
        "tags": ["medfail", "failure-cases", *s.by_domain],
        "configs": [{"config_name": "default", "data_files": [DATA_FILE]}],
    }
    domains = list(s.by_domain)
    lines = [
        "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---",
        f"# {spec.title} ({spec.id} {spec.version})",
        "",
        spec.description.strip(),
        "",
        f"Content sha256: `{digest}`. {s.n} cases; "
        f"{sum(c.confirmed for c in cases)} with a source read by the maintainers; "
        f"{s.n - len(s.unreproduced)} reproduced by at least one MedFail task.",
        "",
        "## Cases by taxonomy layer and domain",
        "",
        "| layer | " + " | ".join(domains) + " |",
        "|---|" + "---|" * len(domains),
        *(
            f"| {layer} | " + " | ".join(str(row[d]) for d in domains) + " |"
            for layer, row in s.by_layer_domain.items()
        ),
        "",
        "## Fields",
        "",
        "One row per case: `id`, `title`, `year`, `domain`, `modality`, `clinical_task`, "
        "`taxonomy` (paths in MedFail's five-layer taxonomy) and `layers`, `dimensions`, "
        "`what_failed` and `figures` (quoted exactly as the sources give them), `root_cause`, "
        "`stage`, `mitigation_reported`, `mitigation_medfail`, `sources` (authors, title, "
        "venue, year, doi, arxiv, url, link), `evidence`, `confirmed` and `verification` (what "
        "was read, where), and `reproduced_by` (MedFail task, closeness, note).",
        "",
        "## Changelog",
        "",
        *(f"- {e.version} ({e.date}): {e.changes}" for e in spec.changelog),
        "",
    ]
    return "\n".join(lines)


def export(
    root: Path = CASES_ROOT, *, out: Path | None = None, cache_root: Path | None = None
) -> Manifest:
    """Build the catalogue into ``out`` (default: the cache folder of medfail-cases@VERSION),
    atomically; a released catalogue must reproduce its pin."""
    spec = load_catalogue_spec(root)
    cases = load_cases(root)
    final = out or task_dir(spec.id, spec.version, cache_root)
    with staging(final) as tmp:
        (tmp / "data").mkdir(parents=True)
        write_parquet(to_table(cases), tmp / DATA_FILE)
        files = {DATA_FILE: file_entry(tmp / DATA_FILE, rows=len(cases))}
        digest = Manifest.digest(spec.id, spec.version, spec.sha256(), files)
        if spec.manifest_sha256 is not None and digest != spec.manifest_sha256:
            raise ManifestMismatchError(
                f"{spec.id}@{spec.version}: the cases do not reproduce the released catalogue "
                f"(content {digest}, pinned {spec.manifest_sha256}); a released version is "
                "immutable: add a new version to cases/catalogue.yaml",
                {DATA_FILE: "content differs from the pin"},
            )
        (tmp / SPEC_COPY).write_bytes((root / "catalogue.yaml").read_bytes())
        (tmp / CARD).write_text(render_card(spec, cases, digest), encoding="utf-8")
        manifest = Manifest(
            task=spec.id,
            version=spec.version,
            spec_sha256=spec.sha256(),
            content_sha256=digest,
            files=files,
            extras={name: file_entry(tmp / name) for name in (CARD, SPEC_COPY)},
            medfail_version=__version__,
            pyarrow_version=pa.__version__,
        )
        (tmp / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        replace_dir(tmp, final)
    return manifest
