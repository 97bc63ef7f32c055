"""The task card: markdown with Hugging Face front matter, made from the spec and the build.

Sections follow the HF dataset-card template, with a Protocol section that states the
splits (sizes and prevalence per group), the label rule with dropped-row counts, the
threshold rule, the metric definitions and the seeds, so a result can be reproduced
from the card alone. No section is ever left empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

from benchmark.common.conventions import CI_PROTOCOL, METRIC_DEFINITIONS
from benchmark.tasks.spec import SurvivalHorizonRule, TaskSpec
from benchmark.tasks.validity import render_validity

if TYPE_CHECKING:
    from benchmark.tasks.manifest import FileEntry
    from benchmark.tasks.recipe import RecipeResult
    from benchmark.tasks.validity import ValidityRecord

SECTIONS = (
    "Summary",
    "Failure mode",
    "Documented failures",
    "Validity",
    "Protocol",
    "Data fields",
    "Loading",
    "Source data",
    "Personal and sensitive information",
    "Known limitations",
    "Licensing",
    "Citation",
    "Changelog",
    "Files",
)


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.1f}%"


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table; ``|`` inside a cell is escaped."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *map(line, rows)])


def _front_matter(spec: TaskSpec, splits: list[str]) -> str:
    meta = {
        "pretty_name": spec.title,
        "license": "other",
        "license_name": spec.license.data,
        "tags": ["medfail", spec.modality, *spec.taxonomy],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in splits],
            }
        ],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def _label_rule(spec: TaskSpec) -> str:
    rule = spec.label.rule
    if isinstance(rule, SurvivalHorizonRule):
        h = f"{rule.horizon:g} {rule.unit}"
        return (
            f"`{spec.label.positive}` (1) if `{rule.event}` is true and `{rule.time}` <= {h}; "
            f"`{spec.label.classes[0]}` (0) if `{rule.time}` >= {h} without the event by then; "
            f"rows censored before {h} are dropped (their outcome at the horizon is unknown). "
            f"`{rule.time}` is measured in {rule.unit}."
        )
    mapping = ", ".join(f"`{k}` -> `{v}`" for k, v in rule.mapping.items())
    return f"`{rule.column}` mapped as {mapping}; other values are dropped."


def _protocol(spec: TaskSpec, result: RecipeResult) -> str:
    parts = [f"**Label** `{spec.label.name}`: {spec.label.description}", ""]
    parts.append(f"Rule: {_label_rule(spec)}")
    classes = ", ".join(f"{i} = `{c}`" for i, c in enumerate(spec.label.classes))
    parts.append(f"Classes (column order of `predict_proba`): {classes}.")
    parts.append("")
    kept = sum(s.rows for s in result.stats.values())
    drops = [[reason, str(n)] for reason, n in result.dropped.items()] or [["(none)", "0"]]
    parts.append(f"**Rows**: {result.source_rows} from the source, {kept} kept.")
    parts.append("")
    parts.append(_table(["dropped because", "rows"], drops))
    parts.append("")

    parts.append("**Splits**. Rows are sorted into domains, then each domain's patients are")
    parts.append(
        "shuffled with the task seed"
        + (
            " within label strata (a patient is positive if any row is)"
            if spec.splits.stratify
            else ""
        )
        + " and cut by fraction (largest remainder), so no patient crosses splits."
        + (
            " Splits given by a column take the rows whose value is listed (an official "
            "split); the build refuses a patient found in two splits."
            if any(not s.by_fraction for s in spec.splits.present().values())
            else ""
        )
    )
    parts.append("")
    dom_rows = []
    for name, dom in spec.splits.domains.items():
        rule = "all rows" if dom.column is None else f"`{dom.column}` in {dom.values}"
        dom_rows.append([name, rule, dom.description or "-"])
    parts.append(_table(["domain", "rows where", "meaning"], dom_rows))
    parts.append("")
    split_rows = []
    for name, split in spec.splits.present().items():
        st = result.stats[name]
        split_rows.append(
            [
                name,
                split.domain,
                f"{split.fraction:g}"
                if split.fraction is not None
                else f"`{split.column}` in {split.values}",
                str(st.rows),
                str(st.patients),
                str(st.positives),
                _pct(st.prevalence),
            ]
        )
    parts.append(
        _table(
            ["split", "domain", "fraction", "rows", "patients", "positives", "prevalence"],
            split_rows,
        )
    )
    parts.append("")

    parts.append(
        "**Groups** (rows / prevalence of the positive class, per split). "
        f"Groups under {spec.min_group_size} rows are flagged by the scorer."
        if spec.attributes
        else "**Groups**: none; the source carries no demographic attributes."
    )
    parts.append("")
    for attr_name, attr in spec.attributes.items():
        groups = sorted({g for st in result.stats.values() for g in st.groups[attr_name]})
        header = [f"{attr_name} (reference `{attr.reference}`)", *result.stats]
        rows = []
        for g in groups:
            cells = []
            for st in result.stats.values():
                c = st.groups[attr_name].get(g)
                cells.append("0" if c is None else f"{c.rows} / {_pct(c.prevalence)}")
            rows.append([g, *cells])
        source = f"`{attr.column}`"
        if attr.bins is not None:
            source += f" binned at {attr.bins} (right-open)"
        parts.append(f"`{attr_name}` from {source}. {attr.description}".strip())
        parts.append("")
        parts.append(_table(header, rows))
        parts.append("")

    parts.append(
        f"**Threshold rule**: {spec.threshold.describe()}. The threshold is chosen on "
        "`val`, frozen, and carried unchanged to every other split; it is never tuned "
        "on a test split."
    )
    parts.append("")
    parts.append("**Probes and metric definitions**")
    parts.append("")
    metric_rows = [
        [probe, f"`{metric}`", text]
        for probe in spec.probes
        for metric, text in METRIC_DEFINITIONS[probe]
    ]
    parts.append(_table(["probe", "metric", "definition"], metric_rows))
    parts.append("")
    unit = (
        ""
        if spec.patient_id
        else " This task's spec names no patient column, so each row counts as its own "
        "patient (reports say `unit: row`); were a patient to have several rows, these "
        "intervals would be too narrow (the spec says whether each row is one patient)."
    )
    parts.append(f"**Uncertainty**: {CI_PROTOCOL}{unit}")
    parts.append("")
    parts.append(
        f"**Seeds**: task seed {spec.seed} drives the split shuffle (per domain, "
        "`SeedSequence([seed, crc32(domain)])`) and any source randomness "
        "(`SeedSequence(seed, spawn_key=(0,))`)."
    )
    return "\n".join(parts)


def _fields(spec: TaskSpec, result: RecipeResult) -> str:
    rows = [
        ["`sample_id`", "text", "unique id of the row"],
        [
            "`patient_id`",
            "text",
            f"from `{spec.patient_id}`" if spec.patient_id else "one patient per row (= sample_id)",
        ],
    ]
    if spec.site:
        rows.append(["`site`", "text", f"from `{spec.site}`"])
    rows.append(["`domain`", "text", "the split domain the row belongs to"])
    rows.append(["`label`", "int64", "class index into the classes above"])
    rows += [[f"`{c}`", "text", f"group attribute `{a}`"] for a, c in spec.group_columns.items()]
    rows += [
        [f"`{c}`", "float64", f"numeric feature; missing {_pct(result.missing[c])}"]
        for c in spec.features.numeric
    ]
    rows += [
        [f"`{c}`", "text", f"categorical feature; missing {_pct(result.missing[c])}"]
        for c in spec.features.categorical
    ]
    rows += [
        [f"`{c}`", "text", "annotation for analysis (never a model input)"]
        for c in spec.annotations
    ]
    text = _table(["column", "type", "meaning"], rows)
    array = spec.features.array
    if array is None:
        return text
    first = next(iter(result.arrays.values()))
    meaning = {
        "inputs": (
            "images, uint8, handed to models as float32 in [0, 1]"
            if array.kind == "image"
            else "series, float32 in each channel's unit, NaN = missing; missing per "
            "channel: " + ", ".join(f"{c} {_pct(v)}" for c, v in result.missing.items())
        ),
        "masks": "ground-truth region per sample (1 = ROI; all zero where there is none)",
        "rater_masks": "one region per rater (inter-rater variation)",
        "shortcut_masks": "pixels of a burned-in shortcut (1 = marker; all zero if none)",
    }
    arrays = [
        [
            f"`<shard>.{name}.npy`",
            f"{first[name].dtype} ({', '.join(['n', *map(str, first[name].shape[1:])])})",
            meaning[name],
        ]
        for name in array.names
    ]
    return (
        f"{text}\n\nArrays (rows in the same order as the split's table; channels "
        f"{', '.join(f'`{c}`' for c in array.channels)}):\n\n"
        + _table(["file", "dtype and shape", "meaning"], arrays)
    )


def _documented(task_id: str) -> str:
    """The catalogue's cases whose ``reproduced_by`` names this task
    (:mod:`benchmark.catalogue.cases`)."""
    from benchmark.catalogue.cases import cases_reproduced_by

    rows = [
        f"- `{case.id}` ({case.year}, {case.domain}): {case.title}; {r.closeness}: {r.note} "
        f"<{case.sources[0].link}>"
        for case, r in cases_reproduced_by(task_id)
    ]
    if not rows:
        return "No case in MedFail's failure-case catalogue names this task yet."
    return (
        "Real-world failures in MedFail's failure-case catalogue (`medfail cases show ID`) "
        "whose mechanism this task reproduces:\n\n" + "\n".join(rows)
    )


def _loading(spec: TaskSpec, splits: list[str]) -> str:
    """The ways to load the build that keep its splits apart, and the one that does not."""
    return (
        "```python\n"
        "import benchmark\n"
        f'task = benchmark.load_task("{spec.ref}", build=True)  # verified on every load\n'
        'X, y, meta = task.split("train")\n\n'
        "from datasets import load_dataset\n"
        f"ds = load_dataset(str(task.path))  # the splits {', '.join(splits)}, as named here\n"
        "```\n\n"
        "A copy of this folder, or its Hugging Face repo at the version's tag, loads the same "
        "way (the front matter above names each split's files). Do not load it with "
        '`load_dataset("parquet", data_dir=...)`: that infers splits from file names and '
        "merges `val` with `ood_val` and `id_test` with `ood_test`. To pick files yourself, "
        'name every split: `data_files={"val": f"{task.path}/data/val-*.parquet", ...}`.'
    )


def render_card(
    spec: TaskSpec,
    result: RecipeResult,
    files: dict[str, FileEntry],
    digest: str,
    validity: ValidityRecord | None = None,
) -> str:
    """The card text for a build of ``spec``."""
    cites = "\n".join(
        f"- {c.text}" + (f" doi:{c.doi}" if c.doi else "") + (f" <{c.url}>" if c.url else "")
        for c in spec.citations
    )
    log = "\n".join(
        f"- **{c.version}** ({c.date.isoformat()}): {c.changes}" for c in spec.changelog
    )
    file_rows = [[f"`{k}`", v.split or "-", str(v.rows), f"`{v.sha256}`"] for k, v in files.items()]
    licence = spec.license.data + (f" <{spec.license.url}>" if spec.license.url else "")
    if spec.license.note:
        licence += f". {spec.license.note}"
    status = (
        f"released, `manifest_sha256` {spec.manifest_sha256}"
        if spec.released
        else "draft: not pinned, so results on it are not comparable across builds"
    )
    body = {
        "Summary": (
            f"{spec.summary}\n\n- task: `{spec.ref}` ({status})\n- modality: {spec.modality}\n"
            f"- taxonomy: {', '.join(f'`{t}`' for t in spec.taxonomy)}\n"
            f"- content digest of this build: `{digest}`"
        ),
        "Failure mode": spec.failure,
        "Documented failures": _documented(spec.id),
        "Validity": render_validity(spec, validity, digest),
        "Protocol": _protocol(spec, result),
        "Data fields": _fields(spec, result),
        "Source data": (
            f"Source `{spec.source.name}` with params `{spec.source.params}`: "
            f"{result.provenance}. Input fingerprint `{result.input_sha256}`."
            + (f"\n\n{result.source_notes}" if result.source_notes else "")
        ),
        "Personal and sensitive information": (
            (
                "Group attributes: "
                + ", ".join(f"`{a}`" for a in spec.attributes)
                + ". They are kept to measure subgroup failure."
                if spec.attributes
                else "The source carries no demographic attributes, so this task has no "
                "fairness probe."
            )
            + " Identifiers are the source's row positions or de-identified ids, never "
            "names or record numbers."
        ),
        "Known limitations": (
            "Group sizes below the minimum make per-group metrics unstable; the scorer flags "
            "them. Prevalence differs between splits where the domains differ: that shift is "
            "part of the task."
        ),
        "Licensing": licence,
        "Citation": cites,
        "Changelog": log,
        "Files": _table(["file", "split", "rows", "sha256"], file_rows),
        "Loading": _loading(spec, list(result.splits)),
    }
    text = _front_matter(spec, list(result.splits))
    text += f"\n# {spec.title}\n"
    for name in SECTIONS:
        text += f"\n## {name}\n\n{body[name].strip()}\n"
    return text
