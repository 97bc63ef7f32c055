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
import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.nn.modules.module import (
    register_module_buffer_registration_hook,
    register_module_parameter_registration_hook,
)

from benchmark.common.hashing import sha256_file
from benchmark.common.optional import heavy
from benchmark.errors import MedFailError, ModelLoadError, one_line
from benchmark.models import architectures
from benchmark.models.adapters import TorchClassifier, as_model
from benchmark.models.protocol import Batch, Model, frame_index
from benchmark.models.sandbox import SandboxedClassifier
from benchmark.results.report import ModelInfo
from benchmark.tasks.registry import discover, read_spec
from benchmark.tasks.task import Task

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
#: A ``score`` column may differ from the positive probability by float rounding only.
PREDICTION_ATOL = 1e-6
#: Most layers a config may declare (no registered architecture uses more than 121 blocks).
MAX_LAYERS = 256
#: Most tensors a weights file may hold (DenseNet-121 holds 727).
MAX_TENSORS = 20_000
#: Most values a weights file may hold (1 GB as float32; DenseNet-121 holds 7 million).
MAX_PARAMETERS = 250_000_000


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


#: File stems that say nothing about the model (the baselines save ``seed-N/model.*``).
GENERIC_STEMS = frozenset({"model", "best", "last", "checkpoint", "weights"})


def model_name(path: Path) -> str:
    """A report's model name for a file: its stem, or where the stem is generic, the
    folders above it (``erm-mlp/seed-0/model.skops`` -> ``erm-mlp/seed-0``)."""
    if path.stem not in GENERIC_STEMS:
        return path.stem
    parts = path.resolve().parent.parts[-2:]
    keep = parts if parts and parts[-1].startswith("seed-") else parts[-1:]
    return "/".join(keep) or path.stem


def load_model(spec: str, task: Task) -> Model:
    """Load ``spec`` for ``task``; the model carries a :class:`ModelInfo` with its hash."""
    kind, target, arch = parse_spec(spec)
    if kind == "python":
        return _load_python(target, task)
    path = Path(target)
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    info = {
        "name": model_name(path),
        "adapter": kind,
        "sha256": sha256_file(path),
        "hash_of": "file",
    }
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
    config = getattr(module, "config", None)
    if isinstance(config, dict):  # a registered architecture states what it takes
        _check_fits(config, task, info["name"])
    return TorchClassifier.with_info(module, input_encoder(task), **info)


#: Registered architecture -> the input kind it takes.
_KIND = {"n_in": "tabular", "in_channels": "image", "n_channels": "series"}


def _inputs(config: dict[str, Any]) -> tuple[str, int | None]:
    """(input kind, features or channels) a registered architecture's config declares."""
    config = config.get("inner_config", config)  # the wavelet sanitiser wraps an image net
    for key, kind in _KIND.items():
        if key in config:
            return kind, config[key]
    return "unknown", None


def _task_inputs(task: Task) -> tuple[str, int]:
    array = task.spec.features.array
    if array is None:
        return "tabular", task.encoding().width
    return array.kind, len(array.channels)


def _check_fits(config: dict[str, Any], task: Task, name: str) -> None:
    """A model trained for another task fails here, naming what it expects and the tasks
    it fits, instead of as a tensor-size error deep inside torch."""
    kind, size = _inputs(config)
    classes = config.get("inner_config", config).get("n_classes")
    want_kind, want_size = _task_inputs(task)
    want_classes = len(task.spec.label.classes)
    if kind == "unknown" or (kind, size, classes) == (want_kind, want_size, want_classes):
        return
    what = "features" if kind == "tabular" else f"{kind} channels"
    fits = _tasks_fitting(kind, size, classes)
    raise ModelLoadError(
        f"{name}: the model takes {size} {what} and gives {classes} classes; "
        f"{task.spec.ref} has {want_size} "
        f"{'features' if want_kind == 'tabular' else want_kind + ' channels'} and "
        f"{want_classes} classes. It seems to belong to "
        + (", ".join(fits) if fits else "no task built here")
    )


def _tasks_fitting(kind: str, size: int | None, classes: int | None) -> list[str]:
    """Built-in or cached tasks whose inputs and classes the model fits (array tasks by
    their spec, tabular tasks only when built, since their width needs the data)."""
    found = []
    for versions in discover().values():
        for path in versions.values():
            try:
                spec = read_spec(path)
                array = spec.features.array
                if len(spec.label.classes) != classes:
                    continue
                if array is not None:
                    if (array.kind, len(array.channels)) == (kind, size):
                        found.append(spec.ref)
                elif kind == "tabular" and Task.load(spec.ref).encoding().width == size:
                    found.append(spec.ref)
            except MedFailError:
                continue
    return found


def _load_torchscript(path: Path, arch: str | None, task: Task, info: dict) -> Model:
    if not zipfile.is_zipfile(path):
        raise ModelLoadError(f"{path}: not a TorchScript archive (expected a zip file)")
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as e:
        raise ModelLoadError(f"{path}: not a loadable TorchScript archive: {one_line(e)}") from e
    return _torch_model(module, task, info)


def _load_safetensors(path: Path, arch: str | None, task: Task, info: dict) -> Model:
    SafetensorError, safe_open = heavy("safetensors", "SafetensorError", "safe_open")

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
        config = _config_json(meta.get("medfail.config"), path)
    except (SafetensorError, OSError, ValueError) as e:  # JSONDecodeError is a ValueError
        raise ModelLoadError(f"{path}: not a valid safetensors file: {one_line(e)}") from e
    _check_count(state, path)
    name = arch or meta.get("medfail.arch")
    if not name:
        raise ModelLoadError(
            f"{path}: no architecture named; write safetensors:{path}#ARCH with ARCH one of "
            f"{sorted(architectures.ARCHITECTURES)}"
        )
    if config is None:
        config = _config_from_weights(name, state, path)
    if not isinstance(config, dict):
        raise ModelLoadError(f"{path}: medfail.config must be a JSON object, got {config!r}")
    return _torch_model(_build_for(name, config, state, path), task, info)


def _config_json(text: str | None, path: Path) -> Any:
    """The ``medfail.config`` metadata, parsed; at most 64 KiB and 32 levels of JSON."""
    if text is None:
        return None
    if len(text) > 64 * 1024 or text.count("[") + text.count("{") > 4096:
        raise ModelLoadError(f"{path}: medfail.config is too large or too deeply nested")
    try:
        return json.loads(text)
    except RecursionError as e:
        raise ModelLoadError(f"{path}: medfail.config is too deeply nested") from e


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
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ModelLoadError(f"{path}: expected a dict of tensors by name (a state dict)")
    _check_count(state, path)
    config = _config_from_weights(arch, state, path)
    return _torch_model(_build_for(arch, config, state, path), task, info)


def _check_count(state: dict, path: Path) -> None:
    if len(state) > MAX_TENSORS:
        raise ModelLoadError(f"{path}: {len(state):,} tensors, over the limit of {MAX_TENSORS:,}")


def _config_from_weights(arch: str, state: dict, path: Path) -> dict[str, Any]:
    read = architectures.config_from_weights(arch)
    try:
        return read(state)
    except (KeyError, IndexError, ValueError) as e:
        raise ModelLoadError(
            f"{path}: the weights are not a {arch} state dict (cannot read its config: "
            f"{type(e).__name__}: {one_line(e)})"
        ) from e


class _TooManyTensors(Exception):
    """Raised from a registration hook: the config declares more tensors than the file has."""


def _declared_shapes(name: str, config: dict[str, Any], limit: int) -> dict[str, tuple]:
    """The state-dict shapes ``config`` declares, from a build on the meta device (nothing
    is allocated). Building stops once it registers more than ``limit`` tensors, so a config
    asking for millions of layers costs no more than the file's own tensor count."""
    registered = 0

    def count(*_: object) -> None:
        nonlocal registered
        registered += 1
        if registered > limit:
            raise _TooManyTensors

    hooks = [
        register_module_parameter_registration_hook(count),
        register_module_buffer_registration_hook(count),
    ]
    try:
        with torch.device("meta"):
            module = architectures.build(name, config)
    finally:
        for hook in hooks:
            hook.remove()
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _check_scale(
    config: Any, name: str, elements: int, tensors: int, path: Path, where: str = "config"
) -> None:
    """A config cannot be larger than its weights: every integer (a size or a count) is
    between 0 and the number of values stored, every list at most as long as the number of
    tensors stored, every layer count the architecture names (``COUNTS``: tensors per layer)
    at most the tensors stored over the tensors a layer needs, and at most
    :data:`MAX_LAYERS`; every float is finite.
    Checked before building, since building copies layers before any hook can stop it."""
    counts = getattr(architectures.ARCHITECTURES.get(name), "COUNTS", {})
    items = config.items() if isinstance(config, dict) else enumerate(config)
    if isinstance(config, list) and len(config) > tensors:
        raise ModelLoadError(f"{path}: {where} lists {len(config)} items for {tensors} tensors")
    for key, value in items:
        at = f"{where}.{key}"
        if isinstance(value, bool) or value is None or isinstance(value, str):
            continue
        if isinstance(value, int):
            limit = min(tensors // counts[key], MAX_LAYERS) if key in counts else elements
            if not 0 <= value <= limit:
                raise ModelLoadError(
                    f"{path}: {at} = {value} is impossible for a file of {tensors} tensors "
                    f"holding {elements:,} values; refused before building"
                )
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ModelLoadError(f"{path}: {at} = {value} is not a finite number")
        elif isinstance(value, dict | list):
            _check_scale(value, name, elements, tensors, path, at)


def _build_for(name: str, config: dict[str, Any], state: dict, path: Path) -> torch.nn.Module:
    """Build ``name`` from ``config`` and load ``state`` into it, but only after the declared
    configuration matches the stored tensors' shapes and the size limit: a small file whose
    config asks for a huge network is refused before anything is allocated."""
    elements = sum(math.prod(t.shape) for t in state.values())
    if elements > MAX_PARAMETERS:
        raise ModelLoadError(
            f"{path}: {elements:,} stored values, over the limit of {MAX_PARAMETERS:,}"
        )
    stored = {k: tuple(t.shape) for k, t in state.items()}
    _check_scale(config, name, elements, len(stored), path)
    try:
        declared = _declared_shapes(name, config, 2 * len(stored) + 16)
    except _TooManyTensors:
        raise ModelLoadError(
            f"{path}: the config of {name} declares more tensors than the file's "
            f"{len(stored)}; refused before building"
        ) from None
    except MedFailError as e:  # an unknown architecture, or a config it refuses
        raise ModelLoadError(f"{path}: {e}") from e
    except (RuntimeError, ArithmeticError, TypeError, ValueError) as e:
        raise ModelLoadError(
            f"{path}: architecture {name!r}: bad config {str(config)[:200]}: {one_line(e)}"
        ) from e
    if declared != stored:
        differ = sorted(set(declared) ^ set(stored)) or sorted(
            k for k in declared if declared[k] != stored[k]
        )
        k = differ[0]
        raise ModelLoadError(
            f"{path}: weights do not fit the declared {name} config: {k} is "
            f"{stored.get(k, 'missing')} in the file, {declared.get(k, 'absent')} in the config "
            f"({len(differ)} tensor(s) differ)"
        )
    module = architectures.build(name, config)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelLoadError(f"{path}: weights do not fit the architecture: {one_line(e)}") from e
    return module


def _load_skops(path: Path, arch: str | None, task: Task, info: dict) -> Model:
    """A scikit-learn estimator from a skops file, checked, loaded and run in a sandboxed
    child process (:mod:`benchmark.models.sandbox`)."""
    return SandboxedClassifier.open(path, ModelInfo(**info))


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
        raise ModelLoadError(f"{path}: cannot read the predictions table: {one_line(e)}") from e
    if "sample_id" not in df.columns:
        raise ModelLoadError(f"{path}: no sample_id column; columns: {list(df.columns)}")
    classes = task.spec.label.classes
    wanted = [f"proba_{c}" for c in classes]
    binary_score = "score" in df.columns and len(classes) == 2
    if all(c in df.columns for c in wanted):
        table = pd.DataFrame({c: _numeric(df, f"proba_{c}", path) for c in classes})
        if binary_score:
            _agrees(df, table[classes[1]], path, wanted[1])
    elif binary_score:
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
    known = pd.Index(
        np.concatenate(
            [task.frame(split)["sample_id"].to_numpy(dtype=str) for split in task.splits]
        )
    )
    unknown = ids[~ids.isin(known)]
    if len(unknown):
        raise ModelLoadError(
            f"{path}: sample {unknown.iloc[0]!r} is not in {task.spec.ref} "
            f"({len(unknown)} of {len(ids)} rows name unknown samples); is it another task's file?"
        )
    table.index = pd.Index(ids, name="sample_id")
    return PredictionsFile(table, info=ModelInfo(**info))


def _agrees(df: pd.DataFrame, positive: pd.Series, path: Path, column: str) -> None:
    """A ``score`` column given beside the probabilities must equal the positive one."""
    score = _numeric(df, "score", path)
    differ = ~np.isclose(score, positive, rtol=0, atol=PREDICTION_ATOL) & score.notna()
    if differ.any():
        i = int(np.argmax(differ.to_numpy()))
        raise ModelLoadError(
            f"{path}: sample {str(df['sample_id'].iloc[i])!r} has score {score.iloc[i]!r} but "
            f"{column} {positive.iloc[i]!r}; the score must be P(positive class)"
        )


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
        raise ModelLoadError(f"cannot load {target}: {type(e).__name__}: {one_line(e)}") from e
    encode = input_encoder(task) if isinstance(obj, torch.nn.Module) else None
    return as_model(obj, encode=encode, name=target)
