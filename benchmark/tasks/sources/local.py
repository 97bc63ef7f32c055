"""``local_table``: a CSV or Parquet file on disk, optionally pinned by sha256.

CSV cells are read as text (ids like ``01`` and ``1`` stay distinct); the recipe converts
numeric features, bins and survival times itself.

The path is relative to the spec's folder unless absolute; ``~`` and ``$VARS`` expand,
so a spec can point at data a user keeps elsewhere (``$MEDFAIL_DATA/x.csv``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import Field

from benchmark.common.hashing import sha256_file
from benchmark.errors import BuildError
from benchmark.tasks.sources.base import (
    Source,
    SourceContext,
    SourceData,
    SourceParams,
    normalise_columns,
)


class LocalTableParams(SourceParams):
    path: str
    format: Literal["csv", "parquet"] | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class LocalTableSource(Source):
    name = "local_table"
    Params = LocalTableParams

    def load(self, params: LocalTableParams, ctx: SourceContext) -> SourceData:
        path = Path(os.path.expandvars(os.path.expanduser(params.path)))
        if not path.is_absolute():
            path = ctx.spec_dir / path
        if not path.is_file():
            raise BuildError(f"local_table: file not found: {path}")
        digest = sha256_file(path)
        if params.sha256 is not None and digest != params.sha256:
            raise BuildError(
                f"local_table: {path} has sha256 {digest}, but the spec pins {params.sha256}"
            )
        fmt = params.format or ("parquet" if path.suffix == ".parquet" else "csv")
        try:
            frame = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path, dtype=str)
        except Exception as e:  # pandas raises many types for malformed files
            raise BuildError(f"local_table: cannot read {path} as {fmt}: {e}") from e
        return SourceData(
            frame=normalise_columns(frame), provenance=f"local file {path.name} (sha256 {digest})"
        )
