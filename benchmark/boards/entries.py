"""Leaderboard entries on disk, and the ranked table of each task version.

Layout of a submissions root (the repo's ``submissions/`` or any results folder)::

    <root>/<task_id>@<version>/<entry>/metadata.yaml
    <root>/<task_id>@<version>/<entry>/seed-<k>/report.json   (plus optional files)

An entry is one method trained with several seeds and scored on one task version. A board
is one ``<task>@<version>`` folder: it never mixes task versions or task builds. An entry
whose metadata, seed folders or reports disagree with its board is excluded whole and
named in :attr:`Board.problems`; reading never writes and never crashes on a bad file.
"""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import yaml
from pydantic import Field, ValidationError, field_validator

from benchmark.common.conventions import DEFAULT_LEVEL, DEFAULT_N_BOOT
from benchmark.common.files import atomic_write_text, replace_dir, staging
from benchmark.common.safe_yaml import read_yaml
from benchmark.common.schema import StrictModel
from benchmark.errors import MedFailError
from benchmark.results.gallery import GALLERY_DIR
from benchmark.results.report import (
    EXAMPLES_FILE,
    PREDICTIONS_FILE,
    REPORT_FILE,
    MetricResult,
    Report,
)
from benchmark.scoring.probes import PROBES, default_configs
from benchmark.scoring.rescore import recheck
from benchmark.tasks.registry import resolve
from benchmark.tasks.spec import (
    SHA256,
    TaskSpec,
    format_validation_error,
    is_valid_ref,
    version_key,
)
from benchmark.tasks.task import Task

METADATA_FILE = "metadata.yaml"
#: How much of each stored report the boards recompute (see :func:`load_boards`).
Check = Literal["full", "values"]

SEED_PREFIX = "seed-"


class EntryMetadata(StrictModel):
    """What an entry states about itself; ``task`` is ``ID@VERSION``, seeds are unique."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    method: str
    model: str
    task: str
    task_content_sha256: str
    seeds: list[int] = Field(min_length=1)
    selection_rule: str
    config: dict[str, Any]
    flags: dict[str, bool]
    submitted_by: str
    medfail_version: str
    created_at: str
    notes: str = ""

    @field_validator("task")
    @classmethod
    def _task_ref(cls, v: str) -> str:
        task_id, _, version = v.partition("@")
        if not is_valid_ref(task_id, version):
            raise ValueError(f"{v!r} is not ID@VERSION (e.g. tiny-task@1.0.0)")
        return v

    @field_validator("task_content_sha256")
    @classmethod
    def _sha(cls, v: str) -> str:
        if not SHA256.fullmatch(v):
            raise ValueError("must be 64 lowercase hex digits")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v) or min(v) < 0:
            raise ValueError(f"seeds must be unique and non-negative, got {v}")
        return v


@dataclass(frozen=True)
class Entry:
    """One loaded entry: its metadata and one report per seed."""

    metadata: EntryMetadata
    reports: dict[int, Report]
    path: Path


@dataclass(frozen=True)
class Board:
    """One task version: its agreed task content digest (None if none), entries, problems."""

    task: str
    content_sha256: str | None
    entries: list[Entry]
    problems: list[str]
    path: Path
    notes: list[str] = field(default_factory=list)


#: The note of a board whose task this installation does not know.
UNCHECKED = (
    "this installation does not know the task, so its numbers were range-checked but not "
    "recomputed from the stored predictions"
)


class Headline(NamedTuple):
    """A dimension's headline: ``reduce`` picks the worst attribute summary row (min/max).

    ``split`` pins the split (shift is read on ``ood_test``); None means the board's
    headline split (:func:`headline_split`). ``attribute`` picks the row of one attribute
    (the explanation probe's attribution method).
    """

    label: str
    probe: str
    metric: str
    direction: Literal["higher", "lower"]
    reduce: Literal["min", "max"] | None
    split: str | None = None
    attribute: str | None = None


#: Dimension -> headline metric; the dimension names are the valid ``rank_by`` values.
HEADLINES: dict[str, Headline] = {
    "performance": Headline("AUROC", "performance", "auroc", "higher", None),
    "calibration": Headline("ECE (equal mass)", "calibration", "ece_equal_mass", "lower", None),
    "fairness": Headline("worst-group AUROC", "fairness", "worst_group_auroc", "higher", "min"),
    "fairness_gap": Headline("EOD sum", "fairness", "eod_sum", "lower", "max"),
    "shift": Headline(
        "AUROC relative drop ID→OOD", "shift", "shift_robustness_auroc", "lower", None, "ood_test"
    ),
    "explanation": Headline(
        "Grad-CAM Dice to lesion",
        "explanation",
        "saliency_dice",
        "higher",
        None,
        attribute="gradcam",
    ),
    # Integrated Gradients: it finds the marker on every ERM seed where Grad-CAM's coarse
    # maps barely do; it sits near the sanity check's limit, and a seed whose IG maps fail
    # it has this value withheld, so the entry shows n/a (docs/explanation.md)
    "shortcut": Headline(
        "IG mass on shortcut",
        "explanation",
        "shortcut_mass",
        "lower",
        None,
        attribute="integrated_gradients",
    ),
}

STATS = ("mean", "sd", "ci_low", "ci_high")

#: A failure case's dimension -> the board dimension that measures it (catalogue pages rank
#: a reproducing task's board by it).
CASE_DIMENSIONS = {"calibration": "calibration", "subgroup-bias": "fairness", "shift": "shift"}


def rank_for(dimensions: list[str]) -> str:
    """The :data:`HEADLINES` key a case about ``dimensions`` is ranked by: its first
    dimension a board measures, else performance."""
    return next((CASE_DIMENSIONS[d] for d in dimensions if d in CASE_DIMENSIONS), "performance")


# --- writing -------------------------------------------------------------------------


def _short(digest: str) -> str:
    return f"{digest[:12]}…"


def _report_problems(metadata: EntryMetadata, reports: dict[int, Report]) -> list[str]:
    """What keeps ``reports`` from belonging to the entry ``metadata`` describes."""
    problems = []
    missing = sorted(set(metadata.seeds) - set(reports))
    extra = sorted(set(reports) - set(metadata.seeds))
    if missing:
        problems.append(f"metadata lists seed(s) {missing} without a report")
    if extra:
        problems.append(f"report(s) for seed(s) {extra} not in the metadata seeds {metadata.seeds}")
    protocols = {protocol(r) for r in reports.values()}
    if len(protocols) > 1:
        problems.append(
            "its seeds were scored under different protocols (bootstrap settings, threshold "
            "rule or probe configs differ)"
        )
    for seed, report in sorted(reports.items()):
        trained = report.seeds.get("train")
        if trained is not None and trained != seed:
            problems.append(f"seed folder {seed} holds a report of training seed {trained}")
        if report.task.ref != metadata.task:
            problems.append(f"seed {seed}: report for task {report.task.ref}, not {metadata.task}")
        elif report.task.content_sha256 != metadata.task_content_sha256:
            problems.append(
                f"seed {seed}: report for task content sha256 "
                f"{_short(report.task.content_sha256)}, metadata says "
                f"{_short(metadata.task_content_sha256)}"
            )
    return problems


def _check_extra_files(reports: dict[int, Report], extra_files: dict[int, list[Path]]) -> None:
    reserved = {REPORT_FILE, PREDICTIONS_FILE, EXAMPLES_FILE, GALLERY_DIR}
    for seed, paths in extra_files.items():
        if seed not in reports:
            raise MedFailError(f"extra files given for seed {seed}, which has no report")
        names = [p.name for p in paths]
        for path in paths:
            if not path.is_file():
                raise MedFailError(f"seed {seed}: extra file {path} is not a file")
            if path.name in reserved or names.count(path.name) > 1:
                raise MedFailError(f"seed {seed}: extra file name {path.name!r} is taken")


def entry_dir(root: Path, task: str, name: str) -> Path:
    """Where the entry ``name`` of ``task`` (ID@VERSION) lives under ``root``."""
    return Path(root) / task / name


def write_entry(
    root: Path,
    metadata: EntryMetadata,
    reports: dict[int, Report],
    *,
    predictions: bool = False,
    extra_files: dict[int, list[Path]] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an entry to ``<root>/<task>/<name>/`` and return that folder.

    Everything is written into a staging folder and renamed into place, so the entry is
    complete or absent. An existing entry is refused unless ``overwrite``; reports must
    match the metadata's task, content digest and seeds. ``extra_files`` are copied into
    their seed's folder.
    """
    problems = _report_problems(metadata, reports)
    if problems:
        raise MedFailError(f"entry {metadata.name!r}: " + "; ".join(problems))
    extra_files = extra_files or {}
    _check_extra_files(reports, extra_files)
    final = Path(root) / metadata.task / metadata.name
    with staging(final) as tmp:
        if final.exists() and not overwrite:
            raise MedFailError(f"entry {final} exists; overwrite it explicitly (--overwrite)")
        text = yaml.safe_dump(metadata.model_dump(mode="json"), sort_keys=False)
        atomic_write_text(tmp / METADATA_FILE, text)
        for seed, report in sorted(reports.items()):
            folder = tmp / f"{SEED_PREFIX}{seed}"
            report.save(folder, predictions=predictions)
            for path in extra_files.get(seed, []):
                shutil.copy2(path, folder / path.name)
        replace_dir(tmp, final)
    return final


def write_entry_folders(root: Path, metadata: EntryMetadata, folders: dict[int, Path]) -> Path:
    """Assemble the entry ``metadata`` describes from finished seed folders (each holding a
    report saved with its predictions, and any model file), replacing the entry if it
    exists; returns its folder. The reports are checked as :func:`write_entry` checks them,
    and the entry is staged and renamed into place: complete, or left as it was."""
    reports = {seed: Report.load(folder) for seed, folder in folders.items()}
    problems = _report_problems(metadata, reports)
    if problems:
        raise MedFailError(f"entry {metadata.name!r}: " + "; ".join(problems))
    final = Path(root) / metadata.task / metadata.name
    with staging(final) as tmp:
        text = yaml.safe_dump(metadata.model_dump(mode="json"), sort_keys=False)
        atomic_write_text(tmp / METADATA_FILE, text)
        for seed, folder in sorted(folders.items()):
            shutil.copytree(folder, tmp / f"{SEED_PREFIX}{seed}")
        replace_dir(tmp, final)
    return final


# --- reading -------------------------------------------------------------------------


def read_metadata(path: Path) -> EntryMetadata:
    """Validate an entry's ``metadata.yaml``; errors name the file and field."""
    data = read_yaml(path, MedFailError, where=path.name)
    if not isinstance(data, dict):
        raise MedFailError(f"{path.name}: must be a YAML mapping, got {type(data).__name__}")
    try:
        return EntryMetadata.model_validate(data)
    except ValidationError as e:
        raise MedFailError(format_validation_error(path.name, e).replace("\n", "; ")) from e


def _seed_folders(entry: Path) -> dict[int, Path]:
    """``seed-<k>`` folders by ``k`` (a non-negative integer without leading zeros)."""
    found = {}
    for child in sorted(entry.iterdir()):
        if child.is_dir() and child.name.startswith(SEED_PREFIX):
            k = child.name.removeprefix(SEED_PREFIX)
            if not k.isdigit() or str(int(k)) != k:
                raise MedFailError(f"folder {child.name!r} is not seed-<integer>")
            found[int(k)] = child
    return found


def _load_entry(
    folder: Path, ref: str, spec: TaskSpec | None, check: Check, task: Task | None
) -> Entry:
    """One entry, checked: metadata, seeds and reports agree, and every number that its
    stored predictions can give is recomputed from them
    (:func:`benchmark.scoring.rescore.recheck`)."""
    metadata = read_metadata(folder / METADATA_FILE)
    if metadata.name != folder.name:
        raise MedFailError(f"metadata names entry {metadata.name!r}, folder is {folder.name!r}")
    if metadata.task != ref:
        raise MedFailError(f"metadata for task {metadata.task} in the {ref} board")
    reports = {seed: Report.load(path) for seed, path in _seed_folders(folder).items()}
    problems = _report_problems(metadata, reports)
    for seed, report in sorted(reports.items()) if spec is not None else ():
        if report.predictions is None:
            problems.append(
                f"seed {seed}: saved without its predictions, so its numbers cannot be checked"
            )
            continue
        if report.model.sha256 is None:
            problems.append(f"seed {seed}: its report does not record the model's sha256")
        found = recheck(report, spec, full=check == "full", task=task)
        if found:
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            problems.append(f"seed {seed}: its stored predictions contradict it: {found[0]}{more}")
    if problems:
        raise MedFailError("; ".join(problems))
    return Entry(metadata, reports, folder)


#: Probe config entries that depend on the model, not on how it was measured: the masking
#: badge is a finding, reports written before 2026-11-23 put the model's own threshold
#: in the adversarial ``goal`` text, and the explanation probe records what it measured
#: (the sanity check's verdict, the layer Grad-CAM read) under ``measured``. Also the
#: adversarial probe's descriptions of a run (sample size, threat models, units, where
#: Square ran), which a probe skipped for a model it cannot attack (a predictions file)
#: does not write.
FINDINGS = frozenset(
    {"gradient_masking", "goal", "measured", "n_used", "norm", "eps_unit", "square_on"}
)


def protocol(report: Report) -> str:
    """What must match for two reports to be ranked together: the bootstrap settings, the
    threshold rule and every probe's name and config (canonical JSON), without the config
    entries that depend on the model (:data:`FINDINGS`)."""
    return json.dumps(
        {
            "bootstrap": report.bootstrap.model_dump(),
            "threshold_rule": report.threshold.rule,
            "probes": {
                p.name: {k: v for k, v in p.config.items() if k not in FINDINGS}
                for p in report.probes
            },
        },
        sort_keys=True,
    )


def _known_spec(ref: str) -> TaskSpec | None:
    """The spec of ``ref`` when this installation knows the task, else None."""
    try:
        return resolve(ref).spec
    except MedFailError:
        return None


def load_runs(path: Path) -> tuple[str, dict[int, Report]]:
    """What ``medfail compare`` compares, by folder: an entry (``metadata.yaml`` and
    ``seed-<k>`` folders) gives its name and its reports by training seed; a report folder
    or ``report.json`` gives the model's name and ``{training seed: report}``."""
    path = Path(path)
    if path.is_dir() and (path / METADATA_FILE).is_file():
        metadata = read_metadata(path / METADATA_FILE)
        reports = {seed: Report.load(folder) for seed, folder in _seed_folders(path).items()}
        problems = _report_problems(metadata, reports)
        if problems:
            raise MedFailError(f"entry {path}: " + "; ".join(problems))
        return metadata.name, reports
    report = Report.load(path)
    return report.model.name, {report.seeds.get("train", 0): report}


def _models(entry: Entry) -> str:
    """What an entry's models are: the sorted sha256 of each seed's model (an entry whose
    reports record none, possible only on a board of an unknown task, is its own model)."""
    digests = [r.model.sha256 for r in entry.reports.values()]
    if any(d is None for d in digests):
        return f"entry:{entry.metadata.name}"
    return "|".join(sorted(str(d) for d in digests))


def _agree(
    entries: list[Entry], key: Callable[[Entry], str], what: str, reference: str | None = None
) -> tuple[str | None, list[Entry], list[str]]:
    """The value of ``key`` the board ranks under (``reference`` if given, else the one most
    *distinct models* share: copies of one model's entry count once, so duplicated entries
    cannot outvote honest ones), the entries that have it, and the exclusions."""
    votes = Counter(k for k, _ in {(key(e), _models(e)) for e in entries})
    ranked = votes.most_common()
    if not ranked:
        return reference, [], []
    if reference is None:
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            reason = f"entries disagree on the {what} ({len(ranked)} variants, no majority)"
            return None, [], [f"entry {e.metadata.name!r} excluded: {reason}" for e in entries]
        reference = ranked[0][0]
    kept = [e for e in entries if key(e) == reference]
    problems = [
        f"entry {e.metadata.name!r} excluded: its {what} differs from the board's"
        + (f" ({_short(key(e))} vs {_short(reference)})" if what == "task content sha256" else "")
        for e in entries
        if key(e) != reference
    ]
    return reference, kept, problems


def _default_protocol(entry: Entry, spec: TaskSpec) -> bool:
    """Scored as ``medfail evaluate`` scores this task by default: 1,000 replicates at 95%
    with the task seed, the task's threshold rule, the task's probes, and each probe's
    default settings or a named preset's (the adversarial probe's ``fast``; a default of
    None is the task's own setting of that name where it has one, such as
    ``min_group_size``, else free). The board of a known task ranks these, so no vote, and
    no copy of an entry, decides its protocol (entries under two presets: the vote picks
    one, see :func:`_agree`)."""
    report = next(iter(entry.reports.values()))
    boot = report.bootstrap
    if (boot.n_boot, boot.level, boot.seed) != (DEFAULT_N_BOOT, DEFAULT_LEVEL, spec.seed):
        return False
    if report.threshold.rule != spec.threshold.rule:
        return False
    if [p.name for p in report.probes] != [p for p in spec.probes if p in PROBES]:
        return False
    return all(
        any(_has_config(probe.config, config, spec) for config in default_configs(probe.name))
        for probe in report.probes
    )


def _has_config(stored: dict[str, Any], config: dict[str, Any], spec: TaskSpec) -> bool:
    """Whether a stored probe config holds every setting of ``config`` (a default of None
    is the task's own setting of that name where it has one, else free)."""
    for key, value in config.items():
        if value is None:
            value = getattr(spec, key, None)
        # a report scored before presets existed ran the full preset
        found = stored.get(key, "full" if key == "preset" else None)
        if value is not None and found != value:
            return False
    return True


def _preset(entry: Entry, probe: str) -> str | None:
    """The preset a probe of the entry's first report ran with (None: no such probe)."""
    report = next(iter(entry.reports.values()))
    found = [p.config.get("preset", "full") for p in report.probes if p.name == probe]
    return found[0] if found else None


def _entry_protocol(entry: Entry) -> str:
    return protocol(next(iter(entry.reports.values())))


#: The note of a board whose adversarial numbers come from the probe's fast preset.
FAST_ADVERSARIAL = (
    "adversarial numbers from the probe's fast preset (the sweep's): no APGD, Square only on "
    "PGD's survivors, so robust accuracy is an upper bound of the full preset's "
    "(medfail evaluate --preset full for final numbers)"
)


def _load_board(folder: Path, check: Check) -> Board:
    ref = folder.name
    task_id, _, version = ref.partition("@")
    if not is_valid_ref(task_id, version):
        return Board(ref, None, [], [f"folder {ref!r} is not named <task>@<version>"], folder)
    spec = _known_spec(ref)
    task = _built_task(spec) if spec is not None and check == "full" else None
    entries, problems = [], []
    for child in sorted(folder.iterdir()):
        if not child.is_dir() or child.name.startswith("."):
            continue
        try:
            entries.append(_load_entry(child, ref, spec, check, task))
        except MedFailError as e:
            problems.append(f"entry {child.name!r} excluded: {e}")
        except Exception as e:  # a hostile file must exclude its entry, never the board
            problems.append(f"entry {child.name!r} excluded: unreadable ({type(e).__name__})")
    digest, kept, excluded = _agree(
        entries,
        lambda e: e.metadata.task_content_sha256,
        "task content sha256",
        spec.manifest_sha256 if spec is not None else None,
    )
    default = {id(e): spec is not None and _default_protocol(e, spec) for e in kept}
    if spec is not None and any(default.values()):
        off = [e for e in kept if not default[id(e)]]
        kept = [e for e in kept if default[id(e)]]
        excluded += [
            f"entry {e.metadata.name!r} excluded: not scored with the task's default protocol "
            f"({DEFAULT_N_BOOT} replicates, {DEFAULT_LEVEL:.0%}, seed {spec.seed}, the task's "
            "threshold rule, probes and default probe settings)"
            for e in off
        ]
    _, kept, excluded_protocol = _agree(kept, _entry_protocol, "scoring protocol")
    notes = [FAST_ADVERSARIAL] if kept and _preset(kept[0], "adversarial") == "fast" else []
    if spec is None and kept:
        notes.append(UNCHECKED)
    elif check == "full" and task is None and kept:
        notes.append(
            "the task is not built here, so the entries' sample ids and labels were not "
            f"checked against it (medfail tasks build {ref})"
        )
    return Board(ref, digest, kept, problems + excluded + excluded_protocol, folder, notes)


def _built_task(spec: TaskSpec) -> Task | None:
    """The verified build of ``spec`` when it is in the cache (nothing is built here)."""
    try:
        return Task.load(spec.ref)
    except MedFailError:
        return None


def board_order(ref: str) -> tuple[int, str, tuple[int, ...]]:
    """The sort key of a board folder named ``ref``: task id, then version; folders that
    are not ``<task>@<version>`` last."""
    task_id, _, version = ref.partition("@")
    if not is_valid_ref(task_id, version):
        return 1, ref, ()
    return 0, task_id, version_key(version)


def _board_key(board: Board) -> tuple[int, str, tuple[int, ...]]:
    return board_order(board.task)


def load_boards(root: Path, check: Check = "full") -> list[Board]:
    """One board per ``<task>@<version>`` folder of ``root``, by task id then version.

    Where this installation knows the task, every entry must carry its predictions, and
    every number they can give is recomputed from them: with ``check="full"`` (the
    default) the bootstrap intervals too, and the sample ids and labels against the task's
    build when it is in the cache; ``"values"`` recomputes point values only (fast).
    Hidden names (staging and lock files) are skipped; a missing root has no boards.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted((load_board(f, check) for f in folders), key=_board_key)


def load_board(folder: Path, check: Check = "full") -> Board:
    """One ``<task>@<version>`` folder as :func:`load_boards` reads it; a folder that
    cannot even be listed is a board with that problem."""
    try:
        return _load_board(folder, check)
    except Exception as e:  # one unreadable board must not take the others down
        return Board(folder.name, None, [], [f"board unreadable ({type(e).__name__})"], folder)


# --- ranking -------------------------------------------------------------------------


#: Largest gallery image the leaderboard shows, in bytes (MedFail's are about 10 KB).
MAX_GALLERY_BYTES = 1_000_000
#: Most gallery images shown per entry.
MAX_GALLERY_IMAGES = 12


def gallery_images(entry: Entry) -> list[Path]:
    """The explanation overlays of the entry's first seed (``seed-<k>/gallery/*.png``):
    regular files (no links) of at most :data:`MAX_GALLERY_BYTES`, by name, at most
    :data:`MAX_GALLERY_IMAGES`."""
    if not entry.reports:
        return []
    folder = entry.path / f"{SEED_PREFIX}{min(entry.reports)}" / GALLERY_DIR
    if folder.is_symlink() or not folder.is_dir():
        return []
    found = [
        p
        for p in sorted(folder.glob("*.png"))
        if not p.is_symlink() and p.is_file() and p.stat().st_size <= MAX_GALLERY_BYTES
    ]
    return found[:MAX_GALLERY_IMAGES]


def headline_split(board: Board) -> str:
    """``ood_test`` when the board's reports scored it, else ``id_test``."""
    scored = any("ood_test" in r.splits for e in board.entries for r in e.reports.values())
    return "ood_test" if scored else "id_test"


def _headline_result(report: Report, headline: Headline, split: str) -> MetricResult | None:
    """The headline row of one report; with ``reduce``, the worst attribute summary row."""
    split = headline.split or split
    if headline.reduce is None:
        try:
            return report.metric(
                headline.metric, split, probe=headline.probe, attribute=headline.attribute
            )
        except KeyError:
            return None
    try:
        probe = report.probe(headline.probe)
    except KeyError:
        return None
    rows = [
        m
        for m in probe.metrics
        if (m.metric, m.split) == (headline.metric, split)
        and m.attribute is not None
        and m.group is None
        and m.value is not None
    ]
    pick = min if headline.reduce == "min" else max
    return pick(rows, key=lambda m: m.value) if rows else None


def _as_float(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _aggregate(results: list[MetricResult | None]) -> tuple[float, float, float, float]:
    """Mean, sample SD (NaN with one seed), mean CI low, mean CI high; NaN if a seed lacks it."""
    values = np.array(
        [
            (math.nan,) * 3 if r is None else tuple(map(_as_float, (r.value, r.ci_low, r.ci_high)))
            for r in results
        ]
    )
    sd = float(np.std(values[:, 0], ddof=1)) if len(values) > 1 else math.nan
    return float(values[:, 0].mean()), sd, float(values[:, 1].mean()), float(values[:, 2].mean())


def _entry_row(entry: Entry, split: str) -> dict[str, Any]:
    m = entry.metadata
    row: dict[str, Any] = {
        "entry": m.name,
        "method": m.method,
        "model": m.model,
        "seeds": len(entry.reports),
        "flags": ", ".join(sorted(k for k, on in m.flags.items() if on)),
    }
    notes = []
    for dim, headline in HEADLINES.items():
        results = [_headline_result(r, headline, split) for _, r in sorted(entry.reports.items())]
        row.update(zip((f"{dim}_{s}" for s in STATS), _aggregate(results), strict=True))
        notes += [
            f"{headline.label}, seed {seed}: {r.reason}"
            for seed, r in zip(sorted(entry.reports), results, strict=True)
            if r is not None and r.value is not None and r.ci_low is None and r.reason
        ]
    row["ci_notes"] = "; ".join(notes)
    return row


#: Flags of entries whose model selection looked at OOD data or at test labels: ranked
#: apart from the entries selected on ID validation only.
RANKED_APART = ("uses_ood_val", "oracle_selection")


def board_table(board: Board, rank_by: str = "performance") -> pd.DataFrame:
    """One row per entry, best first by ``rank_by`` (a :data:`HEADLINES` key).

    Per dimension: ``<dim>_mean`` over seeds, ``<dim>_sd`` (sample SD over seeds, NaN with
    one seed), ``<dim>_ci_low`` / ``<dim>_ci_high`` (the mean over seeds of the per-seed
    bootstrap interval bounds, not an interval of the mean). A seed without the value makes
    that dimension NaN (a seed whose interval was withheld makes the CI NaN; ``ci_notes``
    says which and why). ``rank`` is 1 for the best (ties share the lower rank) honouring the
    headline's direction; entries without a value have no rank and come last. Entries whose
    model was selected on OOD data or by an oracle (a flag in :data:`RANKED_APART`) are
    ranked among themselves, after the others; ``apart`` is True for them.
    """
    if rank_by not in HEADLINES:
        raise MedFailError(f"cannot rank by {rank_by!r}; choose one of {list(HEADLINES)}")
    split = headline_split(board)
    columns = ["entry", "method", "model", "seeds", "flags"]
    columns += [f"{dim}_{s}" for dim in HEADLINES for s in STATS]
    columns.append("ci_notes")
    table = pd.DataFrame([_entry_row(e, split) for e in board.entries], columns=columns)
    apart = [any(e.metadata.flags.get(f, False) for f in RANKED_APART) for e in board.entries]
    table.insert(0, "apart", pd.Series(apart, dtype=bool))
    key = table[f"{rank_by}_mean"].astype(float)
    ascending = HEADLINES[rank_by].direction == "lower"
    rank = key.groupby(table["apart"]).rank(method="min", ascending=ascending)
    table.insert(0, "rank", rank.astype("Int64"))
    return table.sort_values(["apart", "rank", "entry"], na_position="last", ignore_index=True)


def format_cell(mean: float, sd: float, lo: float, hi: float, digits: int = 3) -> str:
    """``mean ± sd [lo, hi]``; NaN parts are left out, and a NaN mean is ``—``."""
    if not math.isfinite(mean):
        return "—"
    text = f"{mean:.{digits}f}"
    if math.isfinite(sd):
        text += f" ± {sd:.{digits}f}"
    if math.isfinite(lo) and math.isfinite(hi):
        text += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return text


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """A :func:`board_table` for display: one text cell per dimension, headed by its label.

    Labels carry the direction: ``↑`` higher is better, ``↓`` lower is better.
    """
    shown = table[["rank", "entry", "method", "model", "seeds", "flags"]].copy()
    shown["rank"] = [
        "" if pd.isna(r) else f"{r} (apart)" if apart else str(r)
        for r, apart in zip(table["rank"], table["apart"], strict=True)
    ]
    for dim, h in HEADLINES.items():
        label = f"{h.label} {'↑' if h.direction == 'higher' else '↓'}"
        cells = table[[f"{dim}_{s}" for s in STATS]].astype(float).itertuples(index=False)
        shown[label] = [format_cell(*c) for c in cells]
    shown["intervals withheld"] = table["ci_notes"]
    return shown
