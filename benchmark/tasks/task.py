"""Task: a spec plus its built, verified data.

>>> task = Task.load("flchain-mortality-temporal", build=True)   # doctest: +SKIP
>>> X, y, meta = task.split("train")                             # doctest: +SKIP
>>> masks = task.masks("ood_test")   # image tasks with ROIs      # doctest: +SKIP

Loading always re-hashes the cached files against the manifest (and a released spec's
pin); there is no switch to skip it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from benchmark.errors import ManifestMismatchError, NotBuiltError
from benchmark.tasks.build import CARD, build_task
from benchmark.tasks.cache import task_dir
from benchmark.tasks.features import TabularEncoding
from benchmark.tasks.manifest import Manifest, verify_dir
from benchmark.tasks.registry import resolve
from benchmark.tasks.spec import GROUP_PREFIX, TaskSpec

META_COLUMNS = ("sample_id", "patient_id", "site", "domain")
TEST_SPLITS = ("id_test", "ood_test")


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

    def _shards(self, split: str, suffix: str) -> list[str]:
        if split not in self.splits:
            raise KeyError(f"{self.spec.ref} has no split {split!r}; splits: {self.splits}")
        return sorted(
            n for n, e in self.manifest.files.items() if e.split == split and n.endswith(suffix)
        )

    def frame(self, split: str) -> pd.DataFrame:
        """All columns of one split, rows in ``sample_id`` order."""
        tables = [pq.read_table(self.path / n).to_pandas() for n in self._shards(split, ".parquet")]
        return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]

    def array(self, split: str, name: str = "inputs") -> np.ndarray:
        """One stored array of an array task (``inputs``, ``masks``, ``rater_masks`` or
        ``shortcut_masks``), as stored (images uint8), rows in the order of :meth:`frame`."""
        spec = self.spec.features.array
        if spec is None or name not in spec.names:
            have = spec.names if spec is not None else []
            raise KeyError(f"{self.spec.ref} has no array {name!r}; arrays: {have}")
        parts = [np.load(self.path / n) for n in self._shards(split, f".{name}.npy")]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def masks(self, split: str) -> np.ndarray:
        """Ground-truth regions ``(n, H, W)`` bool (True = ROI), e.g. for explanation probes."""
        return self.array(split, "masks").astype(bool)

    def split(self, split: str) -> tuple[pd.DataFrame | np.ndarray, np.ndarray, pd.DataFrame]:
        """``(X, y, metadata)``: inputs, class indices, and ids, site, domain and
        ``group_*`` columns (default index), plus the annotations on test splits only
        (some, like a clean label, would leak into training).

        Tabular tasks: ``X`` is a feature DataFrame indexed by ``sample_id``. Image tasks:
        float32 ``(n, C, H, W)`` in [0, 1]. Series tasks: float32 ``(n, C, T)``, NaN =
        missing. Rows of ``X`` and ``metadata`` are in the same order.
        """
        df = self.frame(split)
        keep = set(META_COLUMNS)
        if split in TEST_SPLITS:  # analysis only: never handed out with training data
            keep |= set(self.spec.annotations)
        meta_cols = [c for c in df.columns if c in keep or c.startswith(GROUP_PREFIX)]
        array = self.spec.features.array
        X: pd.DataFrame | np.ndarray
        if array is None:
            X = df[self.spec.features.names].set_axis(pd.Index(df["sample_id"], name="sample_id"))
        elif array.kind == "image":
            X = self.array(split).astype(np.float32)
            X /= np.float32(255)
        else:
            X = self.array(split).astype(np.float32, copy=False)
        return X, df["label"].to_numpy(), df[meta_cols]

    def encoding(self) -> TabularEncoding:
        """The tensor contract of this tabular task (levels from ``train``); cached."""
        if self._encoding is None:
            X = self.frame("train")
            f = self.spec.features
            object.__setattr__(self, "_encoding", TabularEncoding.fit(X, f.numeric, f.categorical))
        assert self._encoding is not None
        return self._encoding
