"""Probes, one per failure dimension, behind one interface (:class:`Probe`).

``PROBES`` maps a probe name (as task specs list them) to its class; a new probe is a new
module plus one line in :data:`_MODULES`, and the scorer does not change. A probe's module
is imported when the probe is first used: the corruption and adversarial probes need torch,
and reading or recomputing a report must not load it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from importlib import import_module
from typing import Any

from benchmark.errors import MedFailError
from benchmark.scoring.probes.base import Probe, ScoringContext

#: Probe name -> (module, class), in the order reports list them.
_MODULES: dict[str, tuple[str, str]] = {
    "performance": ("benchmark.scoring.probes.performance", "PerformanceProbe"),
    "calibration": ("benchmark.scoring.probes.calibration", "CalibrationProbe"),
    "fairness": ("benchmark.scoring.probes.fairness", "FairnessProbe"),
    "shift": ("benchmark.scoring.probes.shift", "ShiftProbe"),
    "corruption": ("benchmark.scoring.probes.corruption", "CorruptionProbe"),
    "adversarial": ("benchmark.scoring.probes.adversarial", "AdversarialProbe"),
    "explanation": ("benchmark.scoring.probes.explanation", "ExplanationProbe"),
}


class _LazyProbes(Mapping[str, type[Probe]]):
    """Name -> probe class, importing each probe's module on first access."""

    def __getitem__(self, name: str) -> type[Probe]:
        module, cls = _MODULES[name]
        return getattr(import_module(module), cls)

    def __contains__(self, name: object) -> bool:  # without importing the probe's module
        return name in _MODULES

    def __iter__(self) -> Iterator[str]:
        return iter(_MODULES)

    def __len__(self) -> int:
        return len(_MODULES)


PROBES: Mapping[str, type[Probe]] = _LazyProbes()

#: Where a probe's settings live when its module needs torch (see default_config).
_TORCH_FREE_SETTINGS = {
    "adversarial": ("benchmark.scoring.probes.adversarial_settings", "AdversarialSettings")
}


def default_config(name: str) -> dict[str, Any]:
    """A probe's default config (its dataclass defaults), without importing torch."""
    if name in _TORCH_FREE_SETTINGS:
        module, cls = _TORCH_FREE_SETTINGS[name]
        return dataclasses.asdict(getattr(import_module(module), cls)())
    return PROBES[name]().config()


def make_probe(probe: str | Probe) -> Probe:
    """A probe instance from its name (default config), or the instance itself."""
    if isinstance(probe, Probe):
        return probe
    if probe not in PROBES:
        raise MedFailError(f"no probe {probe!r} is available; available: {sorted(PROBES)}")
    return PROBES[probe]()


__all__ = ["PROBES", "Probe", "ScoringContext", "default_config", "make_probe"]
