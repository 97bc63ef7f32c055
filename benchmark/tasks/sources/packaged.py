"""Real clinical tables shipped inside PyPI packages; they load fully offline.

``sksurv``: scikit-survival's bundled data sets. Survival targets become two columns,
the event indicator and the follow-up time, named as in the package (snake_case).

``lifelines``: lifelines' bundled data sets, one table each, columns snake-cased
(``ph.ecog`` -> ``ph_ecog``); values are kept exactly as the package ships them.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Literal

import pandas as pd

from benchmark.common.optional import heavy
from benchmark.tasks.sources.base import (
    Source,
    SourceContext,
    SourceData,
    SourceParams,
    normalise_columns,
)


class SksurvParams(SourceParams):
    dataset: Literal["flchain", "aids", "whas500"]


class SksurvSource(Source):
    """``sksurv.datasets.load_<dataset>()``: features joined with the survival target."""

    name = "sksurv"
    Params = SksurvParams

    def load(self, params: SksurvParams, ctx: SourceContext) -> SourceData:
        datasets = heavy("sksurv", "datasets")

        loader = getattr(datasets, f"load_{params.dataset}")
        features, target = loader()
        frame = features.reset_index(drop=True).copy()
        for field in target.dtype.names:
            frame[field] = pd.Series(target[field]).to_numpy()
        provenance = (
            f"scikit-survival {version('scikit-survival')}, "
            f"sksurv.datasets.load_{params.dataset}() (shipped with the package, offline)"
        )
        return SourceData(frame=normalise_columns(frame), provenance=provenance)


class LifelinesParams(SourceParams):
    dataset: Literal["lung"]


class LifelinesSource(Source):
    """``lifelines.datasets.load_<dataset>()``: the table as shipped, columns snake-cased."""

    name = "lifelines"
    Params = LifelinesParams

    def load(self, params: LifelinesParams, ctx: SourceContext) -> SourceData:
        datasets = heavy("lifelines", "datasets")

        frame = getattr(datasets, f"load_{params.dataset}")()
        provenance = (
            f"lifelines {version('lifelines')}, "
            f"lifelines.datasets.load_{params.dataset}() (shipped with the package, offline)"
        )
        return SourceData(frame=normalise_columns(frame), provenance=provenance)
