"""``synthetic``: a MedFail generator (:mod:`benchmark.tasks.synth`) run with the task seed.

``params.generator`` names the generator and ``params.config`` holds its parameters,
validated by that generator's ``Params`` model (cohorts with their site, size,
prevalence, demographics, style, shortcuts and label noise). The generator's seed is
drawn from the build's seeded generator, so the task seed fixes every byte.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal

from pydantic import Field, ValidationError

from benchmark.errors import BuildError, SpecError
from benchmark.tasks.sources.base import (
    Source,
    SourceContext,
    SourceData,
    SourceParams,
    normalise_columns,
)
from benchmark.tasks.spec import format_validation_error
from benchmark.version import __version__

Generator = Literal["cxr", "pathology", "derm", "icu"]  # modules under ``benchmark.tasks.synth``


class SyntheticParams(SourceParams):
    generator: Generator
    config: dict[str, Any] = Field(default_factory=dict)


class SyntheticSource(Source):
    name = "synthetic"
    Params = SyntheticParams

    def parse_params(self, params: dict[str, Any], where: str) -> SyntheticParams:
        parsed = super().parse_params(params, where)
        assert isinstance(parsed, SyntheticParams)
        module = generator_module(parsed.generator)
        try:
            module.Params.model_validate(parsed.config)
        except ValidationError as e:
            raise SpecError(format_validation_error(f"{where}: source.params.config", e)) from e
        return parsed

    def load(self, params: SyntheticParams, ctx: SourceContext) -> SourceData:
        module = generator_module(params.generator)
        config = module.Params.model_validate(params.config)
        seed = int(ctx.rng.integers(2**63))
        try:
            batch = module.generate(config, seed)
        except ValueError as e:  # a config the schema allows but the data contradict
            raise BuildError(f"synthetic generator {params.generator!r}: {e}") from e
        provenance = (
            f"MedFail synthetic generator `{params.generator}` "
            f"(benchmark.tasks.synth.{params.generator}, medfail {__version__}), "
            f"generator seed {seed} drawn from the task seed"
        )
        return SourceData(normalise_columns(batch.frame), provenance, arrays=batch.arrays())


def generator_module(name: str) -> Any:
    """The generator's module (it defines ``Params``, ``CLASSES`` and ``generate``)."""
    return importlib.import_module(f"benchmark.tasks.synth.{name}")
