"""Registered data sources, by the name a spec's ``source.name`` uses."""

from __future__ import annotations

from benchmark.errors import SpecError
from benchmark.sources.base import Source, SourceContext, SourceData
from benchmark.sources.local import LocalTableSource
from benchmark.sources.packaged import SksurvSource
from benchmark.sources.synthetic import SyntheticSource

SOURCES: dict[str, type[Source]] = {
    cls.name: cls for cls in (SksurvSource, LocalTableSource, SyntheticSource)
}


def get_source(name: str, where: str = "<spec>") -> Source:
    """The source registered as ``name``; an unknown name lists the known ones."""
    try:
        return SOURCES[name]()
    except KeyError as e:
        raise SpecError(
            f"{where}: source.name: unknown source {name!r}; known: {', '.join(sorted(SOURCES))}"
        ) from e


__all__ = ["SOURCES", "Source", "SourceContext", "SourceData", "get_source"]
