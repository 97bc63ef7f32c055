"""MedFail: versioned benchmark tasks for the ways deep learning fails in healthcare.

The four nouns: a **Task** (spec + built data, :class:`~benchmark.task.Task`), a **Model**
(anything with ``predict_proba``, :class:`~benchmark.model.Model`), a **Probe** (one per
failure dimension, :class:`~benchmark.probes.Probe`) and a **Report** (typed results pinned
to the task and model hashes, :class:`~benchmark.report.Report`).

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
    from benchmark.evaluate import evaluate
    from benchmark.model import Model
    from benchmark.probes import Probe
    from benchmark.report import Report
    from benchmark.spec import TaskSpec, load_spec
    from benchmark.task import Task

#: Public name -> the module that defines it, imported when the name is first used.
_LAZY = {
    "evaluate": "benchmark.evaluate",
    "Model": "benchmark.model",
    "Probe": "benchmark.probes",
    "Report": "benchmark.report",
    "TaskSpec": "benchmark.spec",
    "load_spec": "benchmark.spec",
    "Task": "benchmark.task",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'benchmark' has no attribute {name!r}")


def load_task(ref: str, *, build: bool = False) -> Task:
    """``Task.load(ref, build=build)``: resolve ``ID[@VERSION]`` and verify the cached build."""
    from benchmark.task import Task

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
