"""``check_probe``: the Probe contract (:class:`benchmark.scoring.probes.base.Probe`).

A probe is a dataclass whose fields are its config, with a lower-case ``name``, the model
capabilities it ``requires``, and ``run(ctx) -> ProbeResult``. The kit runs it twice on a
scoring context (by default :func:`scoring_context`: 300 seeded patients per test split,
two sites, a two-group attribute, predictions only) and checks the result: the probe's own
name on every row, a JSON-able config that keeps every key of the probe's (a ``None``
default may be resolved), rows only on the context's
test splits, a reason when it produced no number, and the same result both times.
"""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np

from benchmark.conformance.errors import require
from benchmark.results.report import ProbeResult
from benchmark.scoring.predictions import SplitPredictions
from benchmark.scoring.probes.base import Probe, ScoringContext
from benchmark.stats.metrics import choose_threshold
from benchmark.tasks.spec import TaskSpec, spec_from_data

#: Capabilities a probe may require of a model (see benchmark.models.protocol).
CAPABILITIES = frozenset({"differentiable", "embed"})

_SPEC = {
    "id": "conformance-task",
    "version": "1.0.0",
    "title": "Conformance task",
    "summary": "Seeded predictions the conformance kits score.",
    "failure": "None: a fixture.",
    "modality": "clinical-decision-support",
    "taxonomy": ["data/distribution-shift/site"],
    "source": {"name": "local_table", "params": {"path": "never-read.csv"}},
    "seed": 7,
    "label": {
        "name": "outcome",
        "description": "Outcome flag.",
        "classes": ["neg", "pos"],
        "positive": "pos",
        "rule": {"kind": "column", "column": "y", "mapping": {"0": "neg", "1": "pos"}},
    },
    "features": {"numeric": ["x1"]},
    "attributes": {"sex": {"column": "sex", "reference": "F"}},
    "sample_id": "sid",
    "patient_id": "pid",
    "site": "hospital",
    "splits": {
        "domains": {
            "home": {"column": "hospital", "values": ["A"]},
            "away": {"column": "hospital", "values": ["B"]},
        },
        "train": {"domain": "home", "fraction": 0.5},
        "val": {"domain": "home", "fraction": 0.25},
        "id_test": {"domain": "home", "fraction": 0.25},
        "ood_test": {"domain": "away", "fraction": 1.0},
    },
    "probes": ["performance"],
    "license": {"data": "CC0-1.0"},
    "citations": [{"text": "MedFail conformance kit."}],
    "changelog": [{"version": "1.0.0", "date": "2026-12-04", "changes": "First."}],
}


def _split(name: str, rng: np.random.Generator, shift: float) -> SplitPredictions:
    patients = np.repeat(np.arange(300), rng.integers(1, 3, 300))
    n = len(patients)
    y = rng.binomial(1, 0.35, n)
    z = 1.5 * (y - 0.5) + shift + rng.normal(0, 1, n)
    p = 1 / (1 + np.exp(-z))
    return SplitPredictions(
        split=name,
        sample_id=np.array([f"{name}-{i}" for i in range(n)]),
        patient_id=np.array([f"{name}-p{k}" for k in patients]),
        site=np.where(patients % 2 == 0, "A", "B"),
        y=y.astype(np.int64),
        proba=np.column_stack([1 - p, p]),
        groups={"sex": np.where(patients % 3 == 0, "M", "F")},
    )


def scoring_context(seed: int = 0, n_boot: int = 40) -> ScoringContext:
    """A small, seeded, predictions-only scoring context on a binary task (val, id_test,
    ood_test; the OOD scores are shifted), with the threshold frozen on val by Youden's J."""
    rng = np.random.default_rng(seed)
    spec: TaskSpec = spec_from_data(_SPEC, "conformance-task")
    preds = {
        s: _split(s, rng, shift) for s, shift in [("val", 0), ("id_test", 0), ("ood_test", -0.8)]
    }
    val = preds["val"]
    threshold = choose_threshold("youden", val.y, val.score, specificity=None, value=None)
    return ScoringContext(
        spec,
        None,  # type: ignore[arg-type]  # predictions only: a probe that needs a model skips
        preds,
        ("id_test", "ood_test"),
        threshold,
        n_boot=n_boot,
        seed=seed,
    )


def check_probe(probe: Probe, ctx: ScoringContext | None = None) -> ProbeResult:
    """Check ``probe`` against the Probe contract on ``ctx`` (default: :func:`scoring_context`);
    return its result. Raises :class:`~benchmark.conformance.ConformanceError`."""
    what = f"probe {type(probe).__name__}"
    require(isinstance(probe, Probe), what, "must subclass benchmark.scoring.probes.Probe")
    require(
        dataclasses.is_dataclass(probe), what, "must be a dataclass (its fields are its config)"
    )
    name = getattr(probe, "name", None)
    require(
        isinstance(name, str) and re.fullmatch(r"[a-z][a-z0-9_]*", name) is not None,
        what,
        f"name must be a lower-case identifier, got {name!r}",
    )
    require(
        set(probe.requires) <= CAPABILITIES,
        what,
        f"requires {sorted(set(probe.requires) - CAPABILITIES)}, not model capabilities "
        f"({sorted(CAPABILITIES)})",
    )
    config = probe.config()
    try:
        json.dumps(config)
    except TypeError as e:
        require(False, what, f"config() must be JSON-serialisable: {e}")
    ctx = ctx or scoring_context()
    first, second = probe.run(ctx), probe.run(ctx)
    require(isinstance(first, ProbeResult), what, "run() must return a ProbeResult")
    require(first.name == name, what, f"its result is named {first.name!r}, not {name!r}")
    missing = {  # a None default may be resolved (e.g. from the task spec), never dropped
        k: v
        for k, v in config.items()
        if k not in first.config or (v is not None and first.config[k] != v)
    }
    require(not missing, what, f"the result's config must include the probe's: {missing}")
    for m in first.metrics:
        require(m.probe == name, what, f"row {m.metric} carries probe {m.probe!r}")
        require(
            m.split in ctx.test_splits,
            what,
            f"row {m.metric} is on split {m.split!r}, not a test split {ctx.test_splits}",
        )
        require(
            m.value is not None or bool(m.reason),
            what,
            f"row {m.metric} on {m.split} is undefined without a reason",
        )
    require(
        bool(first.metrics) or bool(first.warnings),
        what,
        "a run with no number must say why in its warnings",
    )
    require(
        first.model_dump() == second.model_dump(),
        what,
        "two runs on the same context differ (randomness must come from ctx.seed)",
    )
    return first
