"""Turn a source's raw table into the task's splits, exactly as the spec says.

Order of operations (the card repeats it): label rule -> group attributes -> site ->
domains -> patient-level, label-stratified split assignment within each domain. Every
dropped row is counted under the first reason that applies. Splits are assigned by
patient, and the result is checked: a patient found in two splits raises
:class:`~benchmark.errors.PatientLeakError`.

Column conventions of the output (one DataFrame per split, sorted by ``sample_id``):
``sample_id``, ``patient_id`` (text), ``site`` (text, if the task has sites), ``domain``
(text), ``label`` (int64 class index into ``spec.label.classes``), ``group_<attribute>``
(text), then the numeric features (float64, NaN = missing) and the categorical ones
(text, None = missing), then the ``annotations`` (text).

Array tasks also carry, per split, the source's arrays (``inputs``, ``masks``, ...) with
their rows in the same order as the split's table (:attr:`RecipeResult.arrays`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark.errors import BuildError, PatientLeakError
from benchmark.tasks.sources import SourceContext, get_source
from benchmark.tasks.sources.base import frame_sha256
from benchmark.tasks.spec import AttributeSpec, ColumnRule, SurvivalHorizonRule, TaskSpec

TRUE_TEXT = frozenset({"true", "1", "yes", "y", "t"})
FALSE_TEXT = frozenset({"false", "0", "no", "n", "f"})


@dataclass(frozen=True)
class GroupCount:
    rows: int
    positives: int

    @property
    def prevalence(self) -> float:
        return self.positives / self.rows if self.rows else float("nan")


@dataclass(frozen=True)
class SplitStats:
    rows: int
    patients: int
    class_counts: dict[str, int]
    positives: int
    groups: dict[str, dict[str, GroupCount]]

    @property
    def prevalence(self) -> float:
        return self.positives / self.rows if self.rows else float("nan")


@dataclass
class RecipeResult:
    splits: dict[str, pd.DataFrame]
    source_rows: int
    dropped: dict[str, int]
    provenance: str
    input_sha256: str
    stats: dict[str, SplitStats] = field(default_factory=dict)
    missing: dict[str, float] = field(default_factory=dict)
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # split -> name -> rows
    source_notes: str = ""


def _text(series: pd.Series) -> pd.Series:
    """Values as text, missing kept as None. Integral floats print without '.0'."""

    def one(v: object) -> object:
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return None
        if isinstance(v, float | np.floating) and float(v).is_integer():
            return str(int(v))
        return str(v)

    return series.astype(object).map(one)


def _as_bool(series: pd.Series, column: str) -> pd.Series:
    """Event indicator as a nullable boolean: bool, 0/1 or true/false text."""
    if series.dtype == bool:
        return series.astype("boolean")
    text = _text(series).map(lambda v: v.strip().lower() if isinstance(v, str) else None)
    bad = sorted({v for v in text if isinstance(v, str) and v not in TRUE_TEXT | FALSE_TEXT})
    if bad:
        raise BuildError(f"column {column!r} is not an event indicator: values {bad[:5]}")
    return text.map(lambda v: v in TRUE_TEXT if isinstance(v, str) else pd.NA).astype("boolean")


def _label(spec: TaskSpec, frame: pd.DataFrame) -> tuple[pd.Series, pd.Series, str]:
    """Class index per row (or NA) and the reason used for the rows it drops."""
    rule = spec.label.rule
    if isinstance(rule, SurvivalHorizonRule):
        event = _as_bool(frame[rule.event], rule.event)
        time = pd.to_numeric(frame[rule.time], errors="coerce")
        known = event.notna() & time.notna()
        positive = known & event.fillna(False) & (time <= rule.horizon)
        negative = known & ~positive & (time >= rule.horizon)
        label = pd.Series(pd.NA, index=frame.index, dtype="Int64")
        label[positive] = 1
        label[negative] = 0
        reason = f"censored before the {rule.horizon:g}-{rule.unit} horizon, or event/time missing"
        return label, label.notna(), reason
    return _column_label(spec, rule, frame)


def _column_label(
    spec: TaskSpec, rule: ColumnRule, frame: pd.DataFrame
) -> tuple[pd.Series, pd.Series, str]:
    index = {name: i for i, name in enumerate(spec.label.classes)}
    mapped = _text(frame[rule.column]).map(
        lambda v: index[rule.mapping[v]] if v in rule.mapping else pd.NA
    )
    label = mapped.astype("Int64")
    return label, label.notna(), f"label column {rule.column!r} missing or not in the mapping"


def _attribute(attr: AttributeSpec, frame: pd.DataFrame) -> pd.Series:
    """Group label per row, None where missing, outside the bins or unmapped."""
    raw = frame[attr.column]
    if attr.bins is not None:
        values = pd.to_numeric(raw, errors="coerce")
        cut = pd.cut(values, bins=attr.bins, labels=attr.labels, right=False)
        return _text(cut)
    text = _text(raw)
    if attr.mapping is not None:
        return text.map(lambda v: attr.mapping.get(v) if v is not None else None)
    return text


def _check_columns(spec: TaskSpec, frame: pd.DataFrame) -> None:
    rule = spec.label.rule
    needed: dict[str, str] = {}
    if isinstance(rule, SurvivalHorizonRule):
        needed |= {rule.event: "label.rule.event", rule.time: "label.rule.time"}
    else:
        needed[rule.column] = "label.rule.column"
    needed |= {c: f"features ({c})" for c in spec.features.names}
    needed |= {a.column: f"attributes.{n}.column" for n, a in spec.attributes.items()}
    needed |= {c: f"annotations ({c})" for c in spec.annotations}
    for name, dom in spec.splits.domains.items():
        if dom.column is not None:
            needed[dom.column] = f"splits.domains.{name}.column"
    for name, split in spec.splits.present().items():
        if split.column is not None:
            needed[split.column] = f"splits.{name}.column"
    for key in ("sample_id", "patient_id", "site"):
        if (col := getattr(spec, key)) is not None:
            needed[col] = key
    missing = {col: where for col, where in needed.items() if col not in frame.columns}
    if missing:
        named = ", ".join(f"{where} -> {col!r}" for col, where in missing.items())
        raise BuildError(
            f"{spec.ref}: the source has no column for {named}; "
            f"its columns are {sorted(frame.columns)}"
        )


def _largest_remainder(n: int, fractions: list[float]) -> list[int]:
    """Split ``n`` items into counts proportional to ``fractions`` that sum exactly to n."""
    raw = [n * f for f in fractions]
    counts = [int(np.floor(r)) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def _domain_rng(seed: int, domain: str) -> np.random.Generator:
    """The generator for one domain's shuffle, derived from the task seed and its name."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(domain.encode())]))


def _assign_splits(spec: TaskSpec, table: pd.DataFrame, frame: pd.DataFrame) -> pd.Series:
    """Split name per row (None: the row's domain gives it no split); by fraction, every
    patient's rows go to one split; by column, the caller checks that they did."""
    split_of_row = pd.Series(None, index=table.index, dtype=object)
    present = spec.splits.present()
    for domain in sorted({s.domain for s in present.values()}):
        names = [n for n, s in present.items() if s.domain == domain]
        rows = table[table["domain"] == domain]
        if not present[names[0]].by_fraction:  # official splits, read from a column
            for name in names:
                split = present[name]
                assert split.column is not None and split.values is not None
                member = _text(frame.loc[rows.index, split.column]).isin(
                    list(_text(pd.Series(split.values)))
                )
                split_of_row[member[member].index] = name
            continue
        fractions = [present[n].fraction or 0.0 for n in names]
        per_patient = rows.groupby("patient_id", sort=True)["label"].max()
        strata = per_patient if spec.splits.stratify else per_patient * 0
        rng = _domain_rng(spec.seed, domain)
        assignment: dict[str, str] = {}
        for stratum in sorted(strata.unique()):
            patients = np.asarray(strata.index[strata == stratum])
            shuffled = patients[rng.permutation(len(patients))]
            start = 0
            counts = _largest_remainder(len(shuffled), fractions)
            for name, count in zip(names, counts, strict=True):
                assignment.update(dict.fromkeys(shuffled[start : start + count], name))
                start += count
        split_of_row[rows.index] = rows["patient_id"].map(assignment)
    return split_of_row


def check_patient_disjoint(splits: dict[str, pd.DataFrame]) -> None:
    """Raise :class:`PatientLeakError` if any patient id appears in two splits."""
    owner: dict[str, str] = {}
    clashes: list[str] = []
    for name, frame in splits.items():
        for pid in pd.unique(frame["patient_id"]):
            if pid in owner and owner[pid] != name:
                clashes.append(f"{pid!r} in {owner[pid]} and {name}")
            owner.setdefault(pid, name)
    if clashes:
        raise PatientLeakError(
            f"{len(clashes)} patient(s) appear in more than one split, "
            f"e.g. {'; '.join(clashes[:3])}"
        )


def _stats(spec: TaskSpec, frame: pd.DataFrame) -> SplitStats:
    positive = spec.label.classes.index(spec.label.positive) if spec.label.positive else None
    is_pos = frame["label"] == positive if positive is not None else frame["label"] < 0
    groups: dict[str, dict[str, GroupCount]] = {}
    for name, col in spec.group_columns.items():
        by = frame.groupby(col, sort=True)
        groups[name] = {
            str(g): GroupCount(rows=len(idx), positives=int(is_pos[idx].sum()))
            for g, idx in by.groups.items()
        }
    counts = frame["label"].value_counts()
    return SplitStats(
        rows=len(frame),
        patients=int(frame["patient_id"].nunique()),
        class_counts={c: int(counts.get(i, 0)) for i, c in enumerate(spec.label.classes)},
        positives=int(is_pos.sum()),
        groups=groups,
    )


def _check_arrays(spec: TaskSpec, arrays: dict[str, np.ndarray], n: int) -> None:
    """The source's arrays match ``features.array``: present, one row per table row,
    the right rank and channel count, masks the inputs' spatial shape."""
    array = spec.features.array
    where = spec.ref
    if array is None:
        if arrays:
            raise BuildError(
                f"{where}: the source gives arrays {sorted(arrays)}; declare features.array"
            )
        return
    missing = [a for a in array.names if a not in arrays]
    if missing:
        raise BuildError(
            f"{where}: features.array needs arrays {missing}; the source gives {sorted(arrays)}"
        )
    inputs = arrays["inputs"]
    for name in array.names:
        if len(arrays[name]) != n:
            raise BuildError(f"{where}: array {name!r} has {len(arrays[name])} rows, table {n}")
    rank = 4 if array.kind == "image" else 3
    dtype = np.uint8 if array.kind == "image" else np.float32
    if inputs.ndim != rank or inputs.dtype != dtype:
        raise BuildError(
            f"{where}: {array.kind} inputs must be {dtype.__name__} with {rank} axes, got "
            f"{inputs.dtype} with shape {inputs.shape}"
        )
    if inputs.shape[1] != len(array.channels):
        raise BuildError(
            f"{where}: inputs have {inputs.shape[1]} channels, features.array.channels "
            f"names {len(array.channels)}"
        )
    for name in ("masks", "shortcut_masks"):
        if name in array.names and arrays[name].shape[1:] != inputs.shape[2:]:
            raise BuildError(
                f"{where}: {name} have shape {arrays[name].shape[1:]} per sample, "
                f"images {inputs.shape[2:]}"
            )
    if array.rater_masks and (
        arrays["rater_masks"].ndim != 4 or arrays["rater_masks"].shape[2:] != inputs.shape[2:]
    ):
        raise BuildError(
            f"{where}: rater_masks must be (n, raters, H, W) with the images' H, W; got "
            f"{arrays['rater_masks'].shape}"
        )


def run_recipe(spec: TaskSpec, ctx: SourceContext) -> RecipeResult:
    """Load the source and produce the splits, their statistics and the drop counts."""
    where = spec.ref
    source = get_source(spec.source.name, where)
    data = source.load(source.parse_params(spec.source.params, where), ctx)
    frame = data.frame.reset_index(drop=True)  # row labels are positions into the arrays
    _check_columns(spec, frame)
    n = len(frame)
    if n == 0:
        raise BuildError(f"{where}: the source returned no rows")
    _check_arrays(spec, data.arrays, n)
    declared = spec.features.array.names if spec.features.array is not None else []
    arrays = {name: data.arrays[name] for name in declared}  # others are not part of the task

    keep = pd.Series(True, index=frame.index)
    dropped: dict[str, int] = {}

    def drop(mask: pd.Series, reason: str) -> None:
        newly = keep & ~mask
        if newly.any():
            dropped[reason] = dropped.get(reason, 0) + int(newly.sum())
        keep[newly] = False

    label, ok, reason = _label(spec, frame)
    drop(ok, reason)
    groups = {}
    for name, attr in spec.attributes.items():
        groups[name] = _attribute(attr, frame)
        drop(groups[name].notna(), f"attribute {name!r} missing, outside its bins or unmapped")
    site = _text(frame[spec.site]) if spec.site else None
    if site is not None:
        drop(site.notna(), f"site column {spec.site!r} missing")

    domain = pd.Series(None, index=frame.index, dtype=object)
    for name in sorted(spec.splits.domains):
        dom = spec.splits.domains[name]
        if dom.column is None:
            member = pd.Series(True, index=frame.index)
        else:
            member = _text(frame[dom.column]).isin(list(_text(pd.Series(dom.values))))
        both = member & domain.notna() & keep
        if both.any():
            row = int(np.flatnonzero(both.to_numpy())[0])
            raise BuildError(
                f"{where}: row {row} belongs to domains {domain[both].iloc[0]!r} and {name!r}; "
                "domains must not overlap"
            )
        domain[member & domain.isna()] = name
    drop(domain.notna(), "outside every domain")

    width = max(6, len(str(n - 1)))
    if spec.sample_id is not None:
        sample_id = _text(frame[spec.sample_id])
        dup = sample_id[keep][sample_id[keep].duplicated()]
        if sample_id[keep].isna().any() or len(dup):
            first = dup.iloc[0] if len(dup) else None
            raise BuildError(f"{where}: sample ids must be unique and present (e.g. {first!r})")
    else:
        sample_id = pd.Series([f"{i:0{width}d}" for i in range(n)], index=frame.index)
    if spec.patient_id is not None:
        patient_id = _text(frame[spec.patient_id])
        if patient_id[keep].isna().any():
            raise BuildError(f"{where}: patient id column {spec.patient_id!r} has missing values")
    else:
        patient_id = sample_id

    table = pd.DataFrame({"sample_id": sample_id, "patient_id": patient_id})
    if site is not None:
        table["site"] = site
    table["domain"] = domain
    table["label"] = label
    for name, col in spec.group_columns.items():
        table[col] = groups[name]
    for col in spec.features.numeric:
        try:
            table[col] = pd.to_numeric(frame[col], errors="raise").astype("float64")
        except (TypeError, ValueError) as e:
            raise BuildError(f"{where}: numeric feature {col!r} has non-numeric values") from e
    for col in spec.features.categorical:
        table[col] = _text(frame[col])
    for col in spec.annotations:
        table[col] = _text(frame[col])
    table = table[keep].copy()
    table["label"] = table["label"].astype("int64")

    cross = table.groupby("patient_id")["domain"].nunique()
    if (cross > 1).any():
        pids = list(cross.index[cross > 1][:3])
        raise PatientLeakError(
            f"{where}: {int((cross > 1).sum())} patient(s) have rows in more than one domain "
            f"(e.g. {pids}); a patient-level split is impossible"
        )

    table["split"] = _assign_splits(spec, table, frame)
    unassigned = table["split"].isna()
    if unassigned.any():
        dropped["in a domain whose split columns give it no split"] = int(unassigned.sum())
        table = table[~unassigned].copy()
    splits: dict[str, pd.DataFrame] = {}
    split_arrays: dict[str, dict[str, np.ndarray]] = {}
    for name in spec.splits.present():
        part = table[table["split"] == name].drop(columns="split")
        if part.empty:
            raise BuildError(
                f"{where}: split {name!r} is empty; check its domain values and fraction "
                f"(rows dropped so far: {dropped or 'none'})"
            )
        part = part.sort_values("sample_id", kind="stable")
        rows = part.index.to_numpy()  # source row positions, in the split's order
        split_arrays[name] = {k: np.ascontiguousarray(v[rows]) for k, v in arrays.items()}
        splits[name] = part.reset_index(drop=True)
    check_patient_disjoint(splits)

    for name, attr in spec.attributes.items():
        col = spec.group_columns[name]
        if not (table[col] == attr.reference).any():
            raise BuildError(f"{where}: reference group {attr.reference!r} of {name!r} is empty")

    result = RecipeResult(
        splits=splits,
        source_rows=n,
        dropped=dropped,
        provenance=data.provenance,
        input_sha256=frame_sha256(frame, arrays),
        arrays=split_arrays,
        source_notes=data.notes,
    )
    result.stats = {name: _stats(spec, part) for name, part in splits.items()}
    result.missing = {col: float(table[col].isna().mean()) for col in spec.features.names}
    array = spec.features.array
    if array is not None and array.kind == "series":  # share of NaN values per channel
        kept = np.concatenate([a["inputs"] for a in split_arrays.values()])
        nan = np.isnan(kept).mean(axis=(0, 2))
        result.missing = {c: float(v) for c, v in zip(array.channels, nan, strict=True)}
    return result
