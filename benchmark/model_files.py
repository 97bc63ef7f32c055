"""Load a model from ``--model SPEC``, safely: nothing a user submits is unpickled.

SPEC forms (the kind may be left out when the file extension says it):

- ``torchscript:PATH`` (``.ts``, ``.torchscript``): a TorchScript archive returning logits;
- ``safetensors:PATH[#ARCH]`` (``.safetensors``): weights of a registered architecture,
  named by ``#ARCH`` or by the file's ``medfail.arch`` metadata (config in ``medfail.config``);
- ``torch:PATH#ARCH`` (``.pt``, ``.pth``): a state dict read with
  ``torch.load(weights_only=True)``, its config read off the weight shapes;
- ``skops:PATH`` (``.skops``): a scikit-learn estimator; only trusted types are loaded;
- ``predictions:PATH`` (``.parquet``, ``.csv``): probabilities keyed by ``sample_id``,
  one ``proba_<class>`` column per class (or ``score`` = P(positive) for binary tasks);
- ``python:MODULE:ATTR``: your own code, imported (a Model, a torch module or a factory).

Pickle files (``.pkl``, ``.pickle``, ``.joblib``) are refused outright.
"""

from __future__ import annotations

import importlib
import inspect
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from benchmark import architectures
from benchmark.errors import MedFailError
from benchmark.hashing import sha256_file
from benchmark.model import (
    Batch,
    Model,
    ModelInfo,
    SklearnClassifier,
    TorchClassifier,
    as_model,
    frame_index,
)

if TYPE_CHECKING:
    from benchmark.task import Task

KINDS = ("torchscript", "safetensors", "torch", "skops", "predictions", "python")
_BY_SUFFIX = {
    ".ts": "torchscript",
    ".torchscript": "torchscript",
    ".safetensors": "safetensors",
    ".pt": "torch",
    ".pth": "torch",
    ".skops": "skops",
    ".parquet": "predictions",
    ".csv": "predictions",
}
_PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib"}
#: skops may construct these beyond its own defaults (plain scikit-learn internals).
#: Classes only: a function is a call gadget (``partial(numpy.savetxt, PATH)`` as a
#: FunctionTransformer writes a file at predict time), so functions must be named here.
TRUSTED_SKOPS_PREFIXES = ("sklearn.", "numpy.", "scipy.")
TRUSTED_SKOPS_NAMES = frozenset({"functools.partial", "sklearn.utils.validation.check_array"})


class ModelLoadError(MedFailError):
    """A model file could not be loaded, or was refused as unsafe."""


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """``(kind, target, arch)`` from ``[KIND:]TARGET[#ARCH]``."""
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in KINDS:
        kind, rest = "", spec
    target, _, arch = rest.partition("#")
    if kind == "":
        suffix = Path(target).suffix.lower()
        if suffix in _PICKLE_SUFFIXES:
            raise ModelLoadError(
                f"{target}: pickle files are refused (they can run code when loaded); save "
                "scikit-learn models with skops, torch weights as safetensors or TorchScript"
            )
        if suffix not in _BY_SUFFIX:
            raise ModelLoadError(
                f"cannot tell the model kind of {spec!r}; write KIND:PATH with KIND one of "
                f"{', '.join(KINDS)}"
            )
        kind = _BY_SUFFIX[suffix]
    return kind, target, arch or None


def load_model(spec: str, task: Task) -> Model:
    """Load ``spec`` for ``task``; the model carries a :class:`ModelInfo` with its hash."""
    kind, target, arch = parse_spec(spec)
    if kind == "python":
        return _load_python(target, task)
    path = Path(target)
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    info = {"name": path.stem, "adapter": kind, "sha256": sha256_file(path), "hash_of": "file"}
    loader = {
        "torchscript": _load_torchscript,
        "safetensors": _load_safetensors,
        "torch": _load_state_dict,
        "skops": _load_skops,
        "predictions": _load_predictions,
    }[kind]
    return loader(path, arch, task, info)


def input_encoder(task: Task) -> Any:
    """What turns a batch into a torch model's input: the tabular tensor contract, or None."""
    return task.encoding() if task.spec.features.names else None


def _torch_model(module: torch.nn.Module, task: Task, info: dict[str, Any]) -> TorchClassifier:
    return TorchClassifier.with_info(module, input_encoder(task), **info)


def _load_torchscript(path: Path, arch: str | None, task: Task, info: dict) -> Model:
    if not zipfile.is_zipfile(path):
        raise ModelLoadError(f"{path}: not a TorchScript archive (expected a zip file)")
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as e:
        raise ModelLoadError(f"{path}: not a loadable TorchScript archive: {e}") from e
    return _torch_model(module, task, info)


def _load_safetensors(path: Path, arch: str | None, task: Task, info: dict) -> Model:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
        config = json.loads(meta["medfail.config"]) if "medfail.config" in meta else None
    except (SafetensorError, OSError, ValueError) as e:  # JSONDecodeError is a ValueError
        raise ModelLoadError(f"{path}: not a valid safetensors file: {e}") from e
    name = arch or meta.get("medfail.arch")
    if not name:
        raise ModelLoadError(
            f"{path}: no architecture named; write safetensors:{path}#ARCH with ARCH one of "
            f"{sorted(architectures.ARCHITECTURES)}"
        )
    if config is None:
        config = _config_from_weights(name, state, path)
    return _torch_model(_with_weights(architectures.build(name, config), state, path), task, info)


def _load_state_dict(path: Path, arch: str | None, task: Task, info: dict) -> Model:
    if not arch:
        raise ModelLoadError(f"{path}: a state dict needs its architecture: torch:{path}#ARCH")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a refused or corrupt file
        raise ModelLoadError(
            f"{path}: refused: not a plain tensor state dict (only weights are loaded, "
            f"never arbitrary pickled objects): {(str(e).splitlines() or [type(e).__name__])[0]}"
        ) from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path}: expected a dict of tensors (a state dict)")
    config = _config_from_weights(arch, state, path)
    return _torch_model(_with_weights(architectures.build(arch, config), state, path), task, info)


def _config_from_weights(arch: str, state: dict, path: Path) -> dict[str, Any]:
    read = architectures.config_from_weights(arch)
    try:
        return read(state)
    except (KeyError, IndexError, ValueError) as e:
        raise ModelLoadError(
            f"{path}: the weights are not a {arch} state dict (cannot read its config: "
            f"{type(e).__name__}: {e})"
        ) from e


def _with_weights(module: torch.nn.Module, state: dict, path: Path) -> torch.nn.Module:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelLoadError(f"{path}: weights do not fit the architecture: {e}") from e
    return module


def _load_skops(path: Path, arch: str | None, task: Task, info: dict) -> Model:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as e:  # skops raises several types for a corrupt archive
        raise ModelLoadError(f"{path}: not a valid skops file: {e}") from e
    refused = [t for t in untrusted if not _trusted_skops_type(t)]
    if refused:
        raise ModelLoadError(
            f"{path}: refused: the file asks to construct types or call functions that are "
            f"not trusted (only scikit-learn/numpy/scipy classes, and "
            f"{', '.join(sorted(TRUSTED_SKOPS_NAMES))}): {', '.join(refused)}"
        )
    estimator = sio.load(path, trusted=untrusted)
    if not hasattr(estimator, "predict_proba"):
        raise ModelLoadError(f"{path}: the estimator has no predict_proba")
    return SklearnClassifier(estimator, info=ModelInfo(**info))


def _trusted_skops_type(name: str) -> bool:
    """A listed name, or a class (not a function) of scikit-learn, numpy or scipy."""
    if name in TRUSTED_SKOPS_NAMES:
        return True
    if not name.startswith(TRUSTED_SKOPS_PREFIXES):
        return False
    module, _, attr = name.rpartition(".")
    try:
        return inspect.isclass(getattr(importlib.import_module(module), attr))
    except Exception:  # not importable as MODULE.ATTR: not trusted
        return False


@dataclass
class PredictionsFile:
    """Precomputed probabilities keyed by sample id (for probes that need only predictions)."""

    table: pd.DataFrame  # index sample_id, one column per class, in class order
    info: ModelInfo | None = field(default=None, repr=False)

    def predict_proba(self, batch: Batch) -> np.ndarray:
        ids = frame_index(batch)
        if ids is None:
            raise MedFailError("a predictions file needs batches that carry sample ids")
        return self.predict_ids(ids)

    def predict_ids(self, ids: Sequence[str]) -> np.ndarray:
        """The stored rows of ``ids``, in that order (used for every task kind)."""
        ids = pd.Index(ids)
        missing = ids[~ids.isin(self.table.index)]
        if len(missing):
            raise MedFailError(
                f"the predictions file has no row for sample {missing[0]!r} "
                f"({len(missing)} of {len(ids)} samples missing)"
            )
        return self.table.loc[ids].to_numpy(dtype=np.float64)


def _load_predictions(path: Path, arch: str | None, task: Task, info: dict) -> Model:
    try:
        df = (
            pd.read_csv(path, dtype={"sample_id": str})
            if path.suffix.lower() == ".csv"
            else (pd.read_parquet(path))
        )
    except Exception as e:  # pandas/pyarrow raise many types for a corrupt file
        raise ModelLoadError(f"{path}: cannot read the predictions table: {e}") from e
    if "sample_id" not in df.columns:
        raise ModelLoadError(f"{path}: no sample_id column; columns: {list(df.columns)}")
    classes = task.spec.label.classes
    wanted = [f"proba_{c}" for c in classes]
    if all(c in df.columns for c in wanted):
        table = pd.DataFrame({c: _numeric(df, f"proba_{c}", path) for c in classes})
    elif "score" in df.columns and len(classes) == 2:
        score = _numeric(df, "score", path)  # P(classes[1]), the positive class
        table = pd.DataFrame({classes[0]: 1 - score, classes[1]: score})
    else:
        raise ModelLoadError(
            f"{path}: expected columns {wanted} (or score, for a binary task); "
            f"found {list(df.columns)}"
        )
    ids = df["sample_id"].astype(str)
    dup = ids[ids.duplicated()]
    if len(dup):
        raise ModelLoadError(f"{path}: sample {dup.iloc[0]!r} appears more than once")
    table.index = pd.Index(ids, name="sample_id")
    return PredictionsFile(table, info=ModelInfo(**info))


def _numeric(df: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """A column as float64; a value that is not a number is an error naming its sample."""
    values = pd.to_numeric(df[column], errors="coerce").astype(np.float64)
    bad = values.isna() & df[column].notna()
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise ModelLoadError(
            f"{path}: column {column} of sample {str(df['sample_id'].iloc[i])!r} is "
            f"{df[column].iloc[i]!r}, not a number"
        )
    return values


def _load_python(target: str, task: Task) -> Model:
    module_name, _, attr = target.partition(":")
    if not attr:
        raise ModelLoadError(f"python model spec needs MODULE:ATTR, got {target!r}")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            obj = obj()  # a factory, called without arguments
    except Exception as e:  # user code: any error it raises is reported, not a crash
        raise ModelLoadError(f"cannot load {target}: {type(e).__name__}: {e}") from e
    encode = input_encoder(task) if isinstance(obj, torch.nn.Module) else None
    return as_model(obj, encode=encode, name=target)
