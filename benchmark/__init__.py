"""MedFail: versioned benchmark tasks for the ways deep learning fails in healthcare.

The four nouns, each behind a small contract with a conformance kit
(:mod:`benchmark.conformance`):

- a **Task**: a spec plus its built, verified data (:class:`~benchmark.tasks.task.Task`);
- a **Model**: anything with ``predict_proba`` (:class:`~benchmark.models.protocol.Model`);
- a **Probe**: one failure dimension (:class:`~benchmark.scoring.probes.base.Probe`);
- a **Report**: typed results pinned to the task and model hashes
  (:class:`~benchmark.results.report.Report`).

>>> report = benchmark.evaluate(model, "flchain-mortality-temporal")  # doctest: +SKIP

Names are imported on first use (PEP 562), so ``import benchmark`` is cheap and the
command line starts without loading torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from benchmark.errors import (
    BuildError,
    HubError,
    ManifestMismatchError,
    MedFailError,
    NotBuiltError,
    PatientLeakError,
    PredictionError,
    SpecError,
    TaskNotFoundError,
)
from benchmark.version import __version__

if TYPE_CHECKING:
    from benchmark.models.protocol import Model
    from benchmark.results.report import Report
    from benchmark.scoring.evaluate import evaluate
    from benchmark.scoring.probes import Probe
    from benchmark.tasks.spec import TaskSpec, load_spec
    from benchmark.tasks.task import Task

#: Public name -> the module that defines it, imported when the name is first used.
_LAZY = {
    "evaluate": "benchmark.scoring.evaluate",
    "Model": "benchmark.models.protocol",
    "Probe": "benchmark.scoring.probes",
    "Report": "benchmark.results.report",
    "TaskSpec": "benchmark.tasks.spec",
    "load_spec": "benchmark.tasks.spec",
    "Task": "benchmark.tasks.task",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'benchmark' has no attribute {name!r}")


def load_task(ref: str, *, build: bool = False) -> Task:
    """``Task.load(ref, build=build)``: resolve ``ID[@VERSION]`` and verify the cached build."""
    from benchmark.tasks.task import Task

    return Task.load(ref, build=build)


__all__ = [
    "BuildError",
    "HubError",
    "ManifestMismatchError",
    "MedFailError",
    "Model",
    "NotBuiltError",
    "PatientLeakError",
    "PredictionError",
    "Probe",
    "Report",
    "SpecError",
    "Task",
    "TaskNotFoundError",
    "TaskSpec",
    "__version__",
    "evaluate",
    "load_spec",
    "load_task",
]
