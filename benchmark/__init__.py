"""MedFail: versioned benchmark tasks for the ways deep learning fails in healthcare.

The four nouns: a **Task** (spec + built data, :class:`~benchmark.task.Task`), a **Model**
(anything with ``predict_proba``, :class:`~benchmark.model.Model`), a **Probe** (one per
failure dimension, :class:`~benchmark.probes.Probe`) and a **Report** (typed results pinned
to the task and model hashes, :class:`~benchmark.report.Report`).

>>> report = benchmark.evaluate(model, "flchain-mortality-temporal")  # doctest: +SKIP
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

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
from benchmark.evaluate import evaluate
from benchmark.model import Model
from benchmark.probes import Probe
from benchmark.report import Report
from benchmark.spec import TaskSpec, load_spec
from benchmark.task import Task

try:
    __version__ = version("medfail")
except PackageNotFoundError:  # running from a checkout that is not installed
    __version__ = "0+unknown"


def load_task(ref: str, *, build: bool = False) -> Task:
    """``Task.load(ref, build=build)``: resolve ``ID[@VERSION]`` and verify the cached build."""
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
