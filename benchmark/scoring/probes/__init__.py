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
    "shift_diagnostics": (
        "benchmark.scoring.probes.shift_diagnostics",
        "ShiftDiagnosticsProbe",
    ),
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


def _presets(name: str) -> dict[str, Any]:
    """A probe's named presets (name -> settings), empty for a probe without any."""
    if name not in _TORCH_FREE_SETTINGS:
        return {}
    return dict(getattr(import_module(_TORCH_FREE_SETTINGS[name][0]), "PRESETS", {}))


#: The probes with named presets, and every preset name ("full" is each probe's defaults),
#: read off their settings modules.
PRESET_PROBES = tuple(name for name in _TORCH_FREE_SETTINGS if _presets(name))
PRESET_NAMES = tuple(dict.fromkeys(k for name in PRESET_PROBES for k in _presets(name)))


def default_configs(name: str) -> list[dict[str, Any]]:
    """Every config a board ranks as the probe's default protocol: its defaults, and for
    a probe with named presets (the adversarial probe's ``fast``, which sweeps use) each
    preset's."""
    presets = _presets(name)
    if presets:
        return [dataclasses.asdict(settings) for settings in presets.values()]
    return [default_config(name)]


def check_preset(preset: str) -> None:
    """A one-line error for a preset no probe has (:data:`PRESET_NAMES`)."""
    if preset not in PRESET_NAMES:
        raise MedFailError(f"unknown probe preset {preset!r}; presets: {', '.join(PRESET_NAMES)}")


def make_probe(probe: str | Probe, preset: str = "full") -> Probe:
    """A probe instance from its name (its ``preset``'s settings where it has presets, its
    defaults otherwise), or the instance itself."""
    if isinstance(probe, Probe):
        return probe
    if probe not in PROBES:
        raise MedFailError(f"no probe {probe!r} is available; available: {sorted(PROBES)}")
    check_preset(preset)
    presets = _presets(probe)
    if preset in presets:
        return PROBES[probe](**dataclasses.asdict(presets[preset]))
    return PROBES[probe]()


__all__ = [
    "PRESET_NAMES",
    "PRESET_PROBES",
    "PROBES",
    "Probe",
    "ScoringContext",
    "check_preset",
    "default_config",
    "default_configs",
    "make_probe",
]
