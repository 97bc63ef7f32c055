"""``check_source``: the data-source contract (:class:`benchmark.tasks.sources.base.Source`).

A source has a registered ``name``, a strict pydantic ``Params`` schema, and
``load(params, ctx) -> SourceData``. The kit checks the schema without any data (unknown
parameters are a SpecError naming the field) and, given ``params`` whose data are on the
machine, loads twice from identically seeded contexts: a non-empty table with unique
snake_case columns, arrays aligned with its rows, a provenance line, and the same bytes
both times (builds must be reproducible). With ``missing`` params (data that are not on
the machine) it checks that the source says so with a DataUnavailableError or BuildError,
never another exception.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.conformance.errors import ConformanceError, require
from benchmark.errors import BuildError, SpecError
from benchmark.tasks.sources import plugin_names, source_class
from benchmark.tasks.sources.base import (
    Source,
    SourceContext,
    SourceData,
    SourceParams,
    frame_sha256,
)


def _context(spec_dir: Path, seed: int) -> SourceContext:
    return SourceContext(spec_dir=spec_dir, rng=np.random.default_rng(seed), offline=True)


def _check_schema(source: Source, what: str) -> None:
    name = getattr(source, "name", None)
    require(
        isinstance(name, str) and re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name) is not None,
        what,
        f"name must be lower-case letters, digits, '_' or '-', got {name!r}",
    )
    params = getattr(source, "Params", None)
    require(
        isinstance(params, type) and issubclass(params, SourceParams),
        what,
        "Params must subclass benchmark.tasks.sources.base.SourceParams",
    )
    try:
        source.parse_params({"no_such_parameter": 1}, "conformance.yaml")
    except SpecError as e:
        require(
            "no_such_parameter" in str(e), what, f"an unknown parameter's error must name it: {e}"
        )
    else:
        require(False, what, "an unknown parameter must be refused (extra='forbid')")


def _check_data(data: object, what: str) -> SourceData:
    require(isinstance(data, SourceData), what, "load() must return a SourceData")
    assert isinstance(data, SourceData)
    frame = data.frame
    require(isinstance(frame, pd.DataFrame) and len(frame) > 0, what, "the table is empty")
    cols = [str(c) for c in frame.columns]
    require(len(set(cols)) == len(cols), what, f"duplicate columns: {cols}")
    bad = [c for c in cols if not re.fullmatch(r"[a-z0-9_]+", c)]
    require(not bad, what, f"columns must be snake_case (normalise_columns): {bad}")
    for key, arr in data.arrays.items():
        require(
            isinstance(arr, np.ndarray) and len(arr) == len(frame),
            what,
            f"array {key!r} must have one entry per table row ({len(frame)})",
        )
    require(
        isinstance(data.provenance, str) and bool(data.provenance.strip()), what, "no provenance"
    )
    return data


def check_source(
    source: Source,
    params: dict[str, Any] | None = None,
    *,
    spec_dir: Path = Path("."),
    missing: dict[str, Any] | None = None,
    registered: bool = True,
) -> SourceData | None:
    """Check ``source`` against the Source contract; with ``params``, load its data (from
    ``spec_dir``) and return them. ``registered``: its name must resolve to its class
    (built in, or through the ``medfail.sources`` entry points)."""
    what = f"source {type(source).__name__}"
    require(isinstance(source, Source), what, "must subclass benchmark.tasks.sources.base.Source")
    _check_schema(source, what)
    if registered:
        try:
            cls = source_class(source.name)
        except SpecError as e:
            raise ConformanceError(
                f"{what}: name {source.name!r} is not registered (built in, or under the "
                f"medfail.sources entry points: {plugin_names()})"
            ) from e
        require(cls is type(source), what, f"{source.name!r} resolves to {cls.__name__}")
    if missing is not None:
        try:
            source.load(source.parse_params(missing, "conformance.yaml"), _context(spec_dir, 0))
        except BuildError:  # DataUnavailableError is a BuildError
            pass
        except Exception as e:
            raise ConformanceError(
                f"{what}: absent data must raise DataUnavailableError or BuildError, not "
                f"{type(e).__name__}: {e}"
            ) from e
        else:
            require(False, what, f"loaded data that should be absent ({missing})")
    if params is None:
        return None
    parsed = source.parse_params(params, "conformance.yaml")
    first = _check_data(source.load(parsed, _context(spec_dir, 0)), what)
    second = _check_data(source.load(parsed, _context(spec_dir, 0)), what)
    require(
        frame_sha256(first.frame, first.arrays) == frame_sha256(second.frame, second.arrays),
        what,
        "two loads with the same seed differ (randomness must come from ctx.rng)",
    )
    return first
