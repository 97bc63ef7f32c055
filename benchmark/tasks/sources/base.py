"""The data-source contract: a registered name, a params schema, and ``load``.

A source turns its validated params into one raw table (one row per sample, columns in
snake_case) plus a provenance line for the card. Randomness, where a source has any,
comes only from the generator it is given, which the build derives from the task seed.
"""

from __future__ import annotations

import abc
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import ValidationError

from benchmark.common.schema import StrictModel
from benchmark.errors import SpecError
from benchmark.tasks.spec import format_validation_error


class SourceParams(StrictModel):
    """Base of every source's params schema (strict: an unknown parameter is an error)."""


@dataclass(frozen=True)
class SourceContext:
    """What a source may use: the spec's folder (for relative paths), a seeded generator,
    whether it may download (``offline``: never; ``$MEDFAIL_OFFLINE=1`` also forbids it),
    and ``detail(what, done, total)``, which reports work inside the build's first step
    (a parent task being built first)."""

    spec_dir: Path
    rng: np.random.Generator
    offline: bool = False
    detail: Callable[[str, int, int], None] | None = None


@dataclass(frozen=True)
class SourceData:
    """The raw table, its provenance line, and arrays aligned with the table's rows
    (image or series inputs, masks: see :class:`benchmark.tasks.spec.ArraySpec`).

    ``notes`` is markdown for the card's Source data section: the files read, how ids and
    demographics were joined, and anything the source dropped before the recipe.
    """

    frame: pd.DataFrame
    provenance: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    notes: str = ""


class Source(abc.ABC):
    """Base class of data sources; subclasses set ``name``, ``Params`` and ``load``."""

    name: ClassVar[str]
    Params: ClassVar[type[SourceParams]]

    def parse_params(self, params: dict[str, Any], where: str) -> SourceParams:
        try:
            return self.Params.model_validate(params)
        except ValidationError as e:
            raise SpecError(format_validation_error(f"{where}: source.params", e)) from e

    @abc.abstractmethod
    def load(self, params: Any, ctx: SourceContext) -> SourceData:
        """Return the raw table; ``params`` is an instance of ``Params``."""


def snake_case(name: str) -> str:
    """``sample.yr`` -> ``sample_yr``; ``flc.grp`` -> ``flc_grp``; ``ID`` -> ``id``."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", str(name)).strip("_").lower()


def normalise_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Snake-case column names and turn categoricals into plain text (missing stays missing)."""
    renamed = {c: snake_case(c) for c in frame.columns}
    if len(set(renamed.values())) != len(renamed):
        raise SpecError(f"source columns collide after snake_case: {renamed}")
    out = frame.rename(columns=renamed)
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            values = out[col].astype(object)
            out[col] = values.where(values.isna(), values.astype(str))
    return out.reset_index(drop=True)


def frame_sha256(frame: pd.DataFrame, arrays: dict[str, np.ndarray] | None = None) -> str:
    """Fingerprint of a table's content (values, column names, row order) and of any
    arrays beside it (name, dtype, shape, bytes)."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    for name, arr in sorted((arrays or {}).items()):
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}".encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()
