"""Probes, one per failure dimension, behind one interface (:class:`Probe`).

``PROBES`` maps a probe name (as task specs list them) to its class; a new probe is a new
module plus one line here, and the scorer does not change.
"""

from __future__ import annotations

from benchmark.errors import MedFailError
from benchmark.probes.adversarial import AdversarialProbe
from benchmark.probes.base import Probe, ScoringContext
from benchmark.probes.calibration import CalibrationProbe
from benchmark.probes.corruption import CorruptionProbe
from benchmark.probes.fairness import FairnessProbe
from benchmark.probes.performance import PerformanceProbe
from benchmark.probes.shift import ShiftProbe

PROBES: dict[str, type[Probe]] = {
    p.name: p
    for p in (
        PerformanceProbe,
        CalibrationProbe,
        FairnessProbe,
        ShiftProbe,
        CorruptionProbe,
        AdversarialProbe,
    )
}


def make_probe(probe: str | Probe) -> Probe:
    """A probe instance from its name (default config), or the instance itself."""
    if isinstance(probe, Probe):
        return probe
    if probe not in PROBES:
        raise MedFailError(f"no probe {probe!r} is available; available: {sorted(PROBES)}")
    return PROBES[probe]()


__all__ = ["PROBES", "Probe", "ScoringContext", "make_probe"]
