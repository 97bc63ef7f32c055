"""The error every conformance kit raises: which rule broke, and on what."""

from __future__ import annotations

from benchmark.errors import MedFailError


class ConformanceError(MedFailError, AssertionError):
    """An extension breaks its contract; the message names the rule and the object."""


def require(ok: bool, what: object, rule: str) -> None:
    """Raise :class:`ConformanceError` ``"<what>: <rule>"`` unless ``ok``."""
    if not ok:
        raise ConformanceError(f"{what}: {rule}")
