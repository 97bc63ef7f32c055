"""The scorer: ``evaluate(model, task, probes=...) -> Report``, one obvious call.

>>> report = benchmark.evaluate("model.safetensors", "flchain-mortality-temporal")  # doctest: +SKIP

Steps: load the task (verified) and the model; predict ``val`` and every test split and
check the outputs; freeze the threshold on ``val`` by the card's rule; run each probe
(each statistic bootstrapped by patient, within sites); assemble a Report pinned to the
task's content digest and the model's hash.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from benchmark.common.conventions import DEFAULT_LEVEL, DEFAULT_N_BOOT
from benchmark.errors import MedFailError
from benchmark.models.adapters import as_model
from benchmark.models.loading import input_encoder, load_model
from benchmark.models.protocol import Model, model_info
from benchmark.results.report import (
    BootstrapInfo,
    IntervalMethod,
    Report,
    TaskInfo,
    ThresholdInfo,
)
from benchmark.scoring.predictions import SplitPredictions, predict_split, to_frame
from benchmark.scoring.probes import PROBES, Probe, ScoringContext, check_preset, make_probe
from benchmark.stats.metrics import choose_threshold
from benchmark.tasks.task import Task
from benchmark.version import __version__

TEST_SPLITS = ("id_test", "ood_test")
THRESHOLD_SPLIT = "val"


def _task(task: Task | str) -> Task:
    return task if isinstance(task, Task) else Task.load(task, build=True)


def _model(model: Any, task: Task) -> Model:
    if isinstance(model, str):
        return load_model(model, task)
    return as_model(model, encode=input_encoder(task))


def _predictions_sha256(preds: dict[str, SplitPredictions]) -> str:
    h = hashlib.sha256()
    for split in sorted(preds):
        h.update(split.encode())
        h.update(np.ascontiguousarray(preds[split].proba).tobytes())
    return h.hexdigest()


def predict(model: Model, task: Task, splits: Sequence[str]) -> dict[str, SplitPredictions]:
    """Checked predictions of ``model`` on ``splits`` of ``task``."""
    out = {}
    for split in splits:
        X, y, meta = task.split(split)
        out[split] = predict_split(model, X, y, meta, split, len(task.spec.label.classes))
    return out


def evaluate(
    model: Any,
    task: Task | str,
    probes: Sequence[str | Probe] | None = None,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int | None = None,
    seeds: dict[str, int] | None = None,
    name: str | None = None,
    step: Callable[[str], None] | None = None,
    detail: Callable[[str, int, int], None] | None = None,
    interval_method: IntervalMethod = "bca",
    preset: str = "full",
) -> Report:
    """Score ``model`` on ``task`` with ``probes`` (default: those the task lists).

    ``model``: a Model, a torch module (logits), a fitted estimator, or a ``--model`` SPEC
    string. ``seed``: the bootstrap seed (default: the task seed). ``seeds``: other seeds
    to record (e.g. ``{"train": 0}``). ``step(what)`` is called after each stage;
    ``detail(what, done, total)`` reports progress within a long probe (the attacks).
    ``interval_method``: ``"bca"`` (the scorer's) or ``"percentile"`` (to reproduce a
    record scored before issue 26; :mod:`benchmark.scoring.probes.base`).
    ``preset``: the settings of probes named rather than given, where a probe has presets
    (``"fast"``: the adversarial probe's sweep preset; ``"full"``: every probe's defaults).
    The report keeps the per-sample predictions (:attr:`Report.predictions`).
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    task = _task(task)
    spec = task.spec
    if len(spec.label.classes) != 2:
        raise MedFailError(
            f"{spec.ref} has {len(spec.label.classes)} classes; the scorer's probes are "
            "binary for now"
        )
    check_bootstrap(n_boot, level, seed)
    check_preset(preset)
    notes = []
    if probes is None:  # the task's probes; those a later MedFail brings are noted, not run
        probes = [p for p in spec.probes if p in PROBES]
        notes = [
            f"the task lists probe {p!r}, which this MedFail version does not have; not run"
            for p in spec.probes
            if p not in PROBES
        ]
    chosen: list[Probe] = []
    for probe in (make_probe(p, preset) for p in probes):  # a probe named twice runs once
        if probe.name not in {c.name for c in chosen}:
            chosen.append(probe)
    model = _model(model, task)
    info = model_info(model, name or type(model).__name__)
    if name is not None:
        info = info.model_copy(update={"name": name})
    missing = [(p.name, c) for p in chosen for c in p.requires if c not in info.capabilities]
    if missing:
        raise MedFailError(
            "the model lacks what these probes need: "
            + ", ".join(f"{p} needs {c}" for p, c in missing)
        )
    test_splits = tuple(s for s in TEST_SPLITS if s in task.splits)
    if THRESHOLD_SPLIT not in task.splits or not test_splits:
        raise MedFailError(f"{spec.ref} needs a val split and a test split to be scored")
    timings["load"] = time.perf_counter() - t0
    _done(step, "loaded")

    t0 = time.perf_counter()
    preds = predict(model, task, (THRESHOLD_SPLIT, *test_splits))
    timings["predict"] = time.perf_counter() - t0
    _done(step, "predicted")
    val = preds[THRESHOLD_SPLIT]
    threshold = choose_threshold(
        spec.threshold.rule,
        val.y,
        val.score,
        specificity=spec.threshold.specificity,
        value=spec.threshold.value,
    )
    boot_seed = spec.seed if seed is None else seed
    ctx = ScoringContext(
        spec,
        model,
        preds,
        test_splits,
        threshold,
        n_boot,
        level,
        boot_seed,
        task,
        detail,
        interval_method=interval_method,
    )
    results = []
    for probe in chosen:
        t0 = time.perf_counter()
        results.append(probe.run(ctx))
        timings[f"probe.{probe.name}"] = time.perf_counter() - t0
        _done(step, probe.name)
    if info.sha256 is None:
        info = info.model_copy(update={"sha256": _predictions_sha256(preds)})
    unit = "patient" if spec.patient_id else "row"
    report = Report(
        medfail_version=__version__,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        task=TaskInfo(
            id=spec.id,
            version=spec.version,
            content_sha256=task.manifest.content_sha256,
            spec_sha256=task.manifest.spec_sha256,
            classes=list(spec.label.classes),
            released=spec.released,
        ),
        model=info,
        seeds={"task": spec.seed, "bootstrap": boot_seed, **(seeds or {})},
        bootstrap=BootstrapInfo(
            n_boot=n_boot,
            level=level,
            seed=boot_seed,
            unit=unit,
            strata="site" if spec.site else None,
            method=ctx.interval_method,
        ),
        threshold=ThresholdInfo(rule=spec.threshold.rule, value=threshold),
        splits={s: len(p) for s, p in preds.items()},
        probes=results,
        warnings=notes + [w for r in results for w in r.warnings],
        timings=timings,
        environment=environment(),
    )
    derived = {k: v for r in results for k, v in r.predictions.items()}  # e.g. under attack
    return report.with_predictions(to_frame(preds | derived, list(spec.label.classes)))


def min_replicates(level: float) -> int:
    """The fewest bootstrap replicates whose percentile interval at ``level`` has at least
    one replicate in each tail: ``ceil(2 / (1 - level))``, 40 at 95%. Fewer give an
    interval that is one or two replicates wide and may exclude its own point."""
    return math.ceil(2 / (1 - level) - 1e-9)


def check_bootstrap(n_boot: int, level: float, seed: int | None) -> None:
    """One-line errors for bootstrap settings that cannot give an interval."""
    if not 0 < level < 1:
        raise MedFailError(f"the CI level must lie strictly between 0 and 1, got {level}")
    if n_boot < min_replicates(level):
        raise MedFailError(
            f"--n-boot {n_boot} is too few: a {level:.0%} percentile interval needs at least "
            f"{min_replicates(level)} replicates (one in each tail); 1,000 is the default"
        )
    if seed is not None and not 0 <= seed < 2**63:
        raise MedFailError(f"--seed {seed}: a bootstrap seed is an integer in [0, 2^63)")


def _done(step: Callable[[str], None] | None, what: str) -> None:
    if step is not None:
        step(what)


def environment() -> dict[str, str]:
    """Python and the versions of the packages that shape the numbers."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    env = {"python": platform.python_version()}
    for pkg in ("medfail", "numpy", "scipy", "scikit-learn", "torch", "pandas", "pyarrow"):
        try:
            env[pkg] = version(pkg)
        except PackageNotFoundError:
            env[pkg] = "not installed"
    return env
