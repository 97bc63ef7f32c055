"""MedFail: versioned benchmark tasks for the ways deep learning fails in healthcare.

The four nouns: a **Task** (spec + built data, :class:`benchmark.task.Task`), a
**Model**, a **Probe** and a **Report** (the last three arrive with the scorer).
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
    SpecError,
    TaskNotFoundError,
)
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
    "NotBuiltError",
    "PatientLeakError",
    "SpecError",
    "Task",
    "TaskNotFoundError",
    "TaskSpec",
    "__version__",
    "load_spec",
    "load_task",
]
