"""The shared vocabulary of tasks and failure cases: the five-layer failure taxonomy of
MISSION.md, as slash-separated paths, and the clinical domains (:data:`Modality`).

Every task and failure case is tagged with one or more paths such as
``data/distribution-shift/temporal``. A prefix of a valid path is itself valid
(``data/distribution-shift`` tags a task that mixes several kinds of shift).
"""

from __future__ import annotations

from typing import Literal

#: The clinical domains a task or a failure case belongs to.
Modality = Literal[
    "radiology",
    "pathology",
    "dermatology",
    "ophthalmology",
    "remote-monitoring",
    "clinical-decision-support",
    "ehr",
]

TAXONOMY: dict[str, dict[str, dict[str, str]]] = {
    "data": {
        "distribution-shift": {
            "site": "Train at one hospital, deploy at another.",
            "scanner": "Scanner, resolution or device style differs.",
            "temporal": "The population or practice drifts over time.",
            "population": "The case mix or demographics differ.",
        },
        "underrepresentation": {},
        "sensor-drift": {},
        "label-noise": {},
        "modality-dropout": {},
    },
    "model": {
        "underspecification": {},
        "adversarial-brittleness": {},
        "shortcut": {},
        "miscalibration": {},
    },
    "ethical-social": {
        "subgroup-bias": {},
        "opaque-decisions": {},
    },
    "deployment-workflow": {
        "workflow-misalignment": {},
        "error-rates-erode-trust": {},
        "override-behaviour": {},
    },
    "regulatory-legal": {
        "retrospective-validation-gap": {},
        "data-protection": {},
    },
}

LAYERS: tuple[str, ...] = tuple(TAXONOMY)


def all_paths() -> list[str]:
    """Every valid taxonomy path, prefixes included, sorted."""
    paths: list[str] = []
    for layer, kinds in TAXONOMY.items():
        paths.append(layer)
        for kind, subkinds in kinds.items():
            paths.append(f"{layer}/{kind}")
            paths.extend(f"{layer}/{kind}/{sub}" for sub in subkinds)
    return sorted(paths)


_VALID = frozenset(all_paths())


def check_path(path: str) -> str:
    """Return ``path`` if it is in the taxonomy, else raise ``ValueError`` naming close matches."""
    if path in _VALID:
        return path
    head = path.split("/")[0]
    near = sorted(p for p in _VALID if p.startswith(head)) or list(LAYERS)
    raise ValueError(f"unknown taxonomy path {path!r}; valid paths include: {', '.join(near)}")
