"""Task: a spec plus its built, verified data.

>>> task = Task.load("flchain-mortality-temporal", build=True)   # doctest: +SKIP
>>> X, y, meta = task.split("train")                             # doctest: +SKIP

Loading always re-hashes the cached files against the manifest (and a released spec's
pin); there is no switch to skip it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from benchmark.build import CARD, build_task
from benchmark.cache import task_dir
from benchmark.errors import ManifestMismatchError, NotBuiltError
from benchmark.features import TabularEncoding
from benchmark.manifest import Manifest, verify_dir
from benchmark.registry import resolve
from benchmark.spec import GROUP_PREFIX, TaskSpec

META_COLUMNS = ("sample_id", "patient_id", "site", "domain")


@dataclass(frozen=True)
class Task:
    spec: TaskSpec
    path: Path
    manifest: Manifest
    _encoding: TabularEncoding | None = field(default=None, repr=False, compare=False)

    @classmethod
    def load(cls, ref: str, *, build: bool = False, root: Path | None = None) -> Task:
        """Resolve ``ID[@VERSION]``, then verify (building first if asked and needed)."""
        resolved = resolve(ref, root)
        spec = resolved.spec
        path = task_dir(spec.id, spec.version, root)
        if build:
            build_task(spec, resolved.spec_path, root=root)
        elif not (path / "manifest.json").is_file():
            raise NotBuiltError(f"{spec.ref} is not built; run: medfail tasks build {spec.ref}")
        manifest = verify_dir(path, spec.manifest_sha256)
        if manifest.spec_sha256 != spec.sha256():
            raise ManifestMismatchError(
                f"{spec.ref}: the cached build came from other spec content; "
                f"run: medfail tasks build {spec.ref} --force",
                {"manifest.json": "spec_sha256 differs from the spec"},
            )
        return cls(spec, path, manifest)

    @property
    def splits(self) -> list[str]:
        return list(self.spec.splits.present())

    @property
    def card(self) -> str:
        return (self.path / CARD).read_text(encoding="utf-8")

    def frame(self, split: str) -> pd.DataFrame:
        """All columns of one split, rows in ``sample_id`` order."""
        if split not in self.splits:
            raise KeyError(f"{self.spec.ref} has no split {split!r}; splits: {self.splits}")
        shards = sorted(n for n, e in self.manifest.files.items() if e.split == split)
        tables = [pq.read_table(self.path / n).to_pandas() for n in shards]
        return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]

    def split(self, split: str) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
        """``(X, y, metadata)``: features indexed by ``sample_id``, class indices, and ids,
        site, domain and ``group_*`` columns (default index)."""
        df = self.frame(split)
        meta_cols = [c for c in df.columns if c in META_COLUMNS or c.startswith(GROUP_PREFIX)]
        X = df[self.spec.features.names].set_axis(pd.Index(df["sample_id"], name="sample_id"))
        return X, df["label"].to_numpy(), df[meta_cols]

    def encoding(self) -> TabularEncoding:
        """The tensor contract of this tabular task (levels from ``train``); cached."""
        if self._encoding is None:
            X = self.frame("train")
            f = self.spec.features
            object.__setattr__(self, "_encoding", TabularEncoding.fit(X, f.numeric, f.categorical))
        assert self._encoding is not None
        return self._encoding
