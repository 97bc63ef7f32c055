"""Registered data sources, by the name a spec's ``source.name`` uses.

The built-in sources are listed in :data:`SOURCES`. Any installed package can add one
under the ``medfail.sources`` entry-point group (``name = "module:SourceClass"``); MedFail
registers its own derived sources that way (the adversarial transfer set, which needs
models and attacks from layers above this one), so sources never import upward.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from benchmark.errors import SpecError
from benchmark.tasks.sources.base import Source, SourceContext, SourceData
from benchmark.tasks.sources.camelyon17 import Camelyon17Source
from benchmark.tasks.sources.chexpert import CheXpertSource
from benchmark.tasks.sources.fitzpatrick17k import Fitzpatrick17kSource
from benchmark.tasks.sources.ham10000 import Ham10000Source
from benchmark.tasks.sources.local import LocalTableSource
from benchmark.tasks.sources.medmnist import MedMNISTSource
from benchmark.tasks.sources.mimic_cxr import MimicCxrSource
from benchmark.tasks.sources.nih_cxr14 import NihCxr14Source
from benchmark.tasks.sources.packaged import LifelinesSource, SksurvSource
from benchmark.tasks.sources.synthetic import SyntheticSource

#: The entry-point group through which packages register sources.
ENTRY_POINT_GROUP = "medfail.sources"

SOURCES: dict[str, type[Source]] = {
    cls.name: cls
    for cls in (
        SksurvSource,
        LifelinesSource,
        LocalTableSource,
        SyntheticSource,
        MedMNISTSource,
        Ham10000Source,
        Fitzpatrick17kSource,
        Camelyon17Source,
        CheXpertSource,
        MimicCxrSource,
        NihCxr14Source,
    )
}


def plugin_names() -> list[str]:
    """Names registered under :data:`ENTRY_POINT_GROUP` (nothing is imported)."""
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def source_class(name: str, where: str = "<spec>") -> type[Source]:
    """The class registered as ``name``: built in, else loaded from its entry point."""
    if name in SOURCES:
        return SOURCES[name]
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        known = ", ".join(sorted({*SOURCES, *plugin_names()}))
        raise SpecError(f"{where}: source.name: unknown source {name!r}; known: {known}")
    cls = found[0].load()
    if not (isinstance(cls, type) and issubclass(cls, Source)) or cls.name != name:
        raise SpecError(
            f"{where}: source.name: the entry point {name!r} ({found[0].value}) is not a "
            f"Source named {name!r}"
        )
    return cls


def get_source(name: str, where: str = "<spec>") -> Source:
    """An instance of the source registered as ``name``; an unknown name lists the known."""
    return source_class(name, where)()


__all__ = [
    "ENTRY_POINT_GROUP",
    "SOURCES",
    "Source",
    "SourceContext",
    "SourceData",
    "get_source",
    "plugin_names",
    "source_class",
]
