"""Registered data sources, by the name a spec's ``source.name`` uses."""

from __future__ import annotations

from benchmark.errors import SpecError
from benchmark.sources.adversarial import AdversarialTransferSource
from benchmark.sources.base import Source, SourceContext, SourceData
from benchmark.sources.camelyon17 import Camelyon17Source
from benchmark.sources.chexpert import CheXpertSource
from benchmark.sources.fitzpatrick17k import Fitzpatrick17kSource
from benchmark.sources.ham10000 import Ham10000Source
from benchmark.sources.local import LocalTableSource
from benchmark.sources.medmnist import MedMNISTSource
from benchmark.sources.mimic_cxr import MimicCxrSource
from benchmark.sources.nih_cxr14 import NihCxr14Source
from benchmark.sources.packaged import LifelinesSource, SksurvSource
from benchmark.sources.synthetic import SyntheticSource

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
        AdversarialTransferSource,
    )
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
