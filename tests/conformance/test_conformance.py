"""The conformance kits pass every built-in probe, source and model family, and fail on
deliberately broken ones, each with the broken rule named."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from baselines.tabular import GBMConfig, train_gbm
from benchmark.conformance import ConformanceError, check_model, check_probe, check_source
from benchmark.conformance.probes import scoring_context
from benchmark.models import architectures
from benchmark.models.adapters import as_model
from benchmark.models.loading import input_encoder, load_model
from benchmark.results.report import MetricResult, ProbeResult
from benchmark.scoring.predictions import predict_split, to_frame
from benchmark.scoring.probes import PROBES, Probe, ScoringContext
from benchmark.tasks.build import build_task
from benchmark.tasks.cache import ENV_CACHE
from benchmark.tasks.registry import BUILTIN_TASKS, ENV_TASKS_PATH
from benchmark.tasks.sources import SOURCES, plugin_names, source_class
from benchmark.tasks.sources.base import Source, SourceContext, SourceData, SourceParams
from benchmark.tasks.spec import load_spec
from benchmark.tasks.task import Task

# -- probes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PROBES))
def test_every_builtin_probe_conforms(name: str) -> None:
    result = check_probe(PROBES[name]())
    assert result.metrics or result.warnings


@dataclass
class Honest(Probe):
    """A minimal probe that keeps every rule: mean score per test split."""

    name: ClassVar[str] = "honest"

    def run(self, ctx: ScoringContext) -> ProbeResult:
        rows = [
            MetricResult(
                probe=self.name, metric="mean_score", split=s, value=ctx.predictions[s].score.mean()
            )
            for s in ctx.test_splits
        ]
        return ProbeResult(name=self.name, config=self.config(), metrics=rows)


@dataclass
class Misnamed(Honest):
    def run(self, ctx: ScoringContext) -> ProbeResult:
        return super().run(ctx).model_copy(update={"name": "other"})


@dataclass
class Unseeded(Honest):
    def run(self, ctx: ScoringContext) -> ProbeResult:
        noise = float(np.random.default_rng().random())  # not from ctx.seed
        row = MetricResult(probe=self.name, metric="noise", split="id_test", value=noise)
        return ProbeResult(name=self.name, config=self.config(), metrics=[row])


@dataclass
class OnValidation(Honest):
    def run(self, ctx: ScoringContext) -> ProbeResult:
        row = MetricResult(probe=self.name, metric="mean_score", split="val", value=0.5)
        return ProbeResult(name=self.name, config=self.config(), metrics=[row])


@dataclass
class Silent(Honest):
    def run(self, ctx: ScoringContext) -> ProbeResult:
        return ProbeResult(name=self.name, config=self.config(), metrics=[])


class NotADataclass(Probe):  # without @dataclass
    name: ClassVar[str] = "plain"

    def run(self, ctx: ScoringContext) -> ProbeResult:
        return ProbeResult(name=self.name, config={}, metrics=[])


def test_a_minimal_probe_conforms() -> None:
    assert len(check_probe(Honest()).metrics) == 2


@pytest.mark.parametrize(
    ("probe", "rule"),
    [
        (Misnamed(), "its result is named 'other'"),
        (Unseeded(), "two runs on the same context differ"),
        (OnValidation(), "not a test split"),
        (Silent(), "must say why"),
        (NotADataclass(), "must be a dataclass"),
    ],
    ids=["misnamed", "unseeded", "on-val", "silent", "not-dataclass"],
)
def test_broken_probes_fail_with_the_rule_named(probe: Probe, rule: str) -> None:
    with pytest.raises(ConformanceError, match=rule):
        check_probe(probe)


def test_the_kit_context_is_seeded() -> None:
    a, b = scoring_context(3), scoring_context(3)
    assert np.array_equal(a.predictions["ood_test"].proba, b.predictions["ood_test"].proba)
    assert dataclasses.is_dataclass(Honest())


# -- sources --------------------------------------------------------------------------------


def builtin_params(source: str) -> tuple[dict[str, Any], Path]:
    """The params of the first built-in spec using ``source``, and that spec's folder."""
    for path in sorted(BUILTIN_TASKS.glob("*/*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(raw, dict) and raw.get("source", {}).get("name") == source:
            return copy.deepcopy(raw["source"].get("params", {})), path.parent
    raise LookupError(source)


def small(params: dict[str, Any]) -> dict[str, Any]:
    """A synthetic source's params with 40 patients per cohort (the same generator)."""
    for cohort in params["config"]["cohorts"]:
        cohort["n"] = 40
    return params


def loadable(name: str, tmp_path: Path) -> dict[str, Any]:
    """How the kit can load each built-in source here: data present, or data absent."""
    if name == "local_table":
        pd.DataFrame({"Sample ID": ["a", "b"], "y": ["0", "1"]}).to_csv(tmp_path / "t.csv")
        return {"params": {"path": "t.csv"}, "spec_dir": tmp_path}
    params, folder = builtin_params(name)
    if name in ("sksurv", "lifelines"):
        return {"params": params, "spec_dir": folder}
    if name == "synthetic":
        return {"params": small(params), "spec_dir": folder}
    if name == "medmnist":
        return {"missing": params | {"path": str(tmp_path / "absent.npz")}, "spec_dir": folder}
    if name == "adversarial-transfer":
        return {"missing": params | {"surrogate": "absent.safetensors"}, "spec_dir": folder}
    return {"missing": params | {"root": str(tmp_path / "absent")}, "spec_dir": folder}


@pytest.mark.parametrize("name", sorted({*SOURCES, *plugin_names()}))
def test_every_builtin_source_conforms(name: str, tmp_path: Path) -> None:
    how = loadable(name, tmp_path)
    data = check_source(source_class(name)(), **how)
    assert (data is not None) == ("params" in how)


def test_every_synthetic_generator_loads_reproducibly() -> None:
    for task_id in ("synth-icu-sensor-drift", "synth-derm-skin-tone", "synth-path-stain-shift"):
        spec = load_spec(BUILTIN_TASKS / task_id / "1.0.0.yaml")
        params = small(copy.deepcopy(spec.source.params))
        data = check_source(source_class("synthetic")(), params, spec_dir=BUILTIN_TASKS)
        assert data is not None and data.arrays


class LaxParams(SourceParams):
    model_config = SourceParams.model_config | {"extra": "ignore"}


class Lax(Source):
    name = "local_table"  # pretends to be the built-in one
    Params = LaxParams

    def load(self, params: Any, ctx: SourceContext) -> SourceData:
        return SourceData(pd.DataFrame({"a": [1]}), "made up")


class Drifting(Source):
    name = "drifting"
    Params = SourceParams

    def load(self, params: Any, ctx: SourceContext) -> SourceData:
        values = np.random.default_rng().random(5)  # not from ctx.rng
        return SourceData(pd.DataFrame({"value": values}), "a random table")


class Shouting(Drifting):
    def load(self, params: Any, ctx: SourceContext) -> SourceData:
        return SourceData(pd.DataFrame({"Sample ID": ["a"]}), "raw columns")


@pytest.mark.parametrize(
    ("source", "kwargs", "rule"),
    [
        (Lax(), {}, "an unknown parameter must be refused"),
        (Drifting(), {"registered": False, "params": {}}, "two loads with the same seed differ"),
        (Shouting(), {"registered": False, "params": {}}, "columns must be snake_case"),
        (Drifting(), {}, "is not registered"),
    ],
    ids=["lax-params", "unseeded", "raw-columns", "unregistered"],
)
def test_broken_sources_fail_with_the_rule_named(
    source: Source, kwargs: dict[str, Any], rule: str
) -> None:
    with pytest.raises(ConformanceError, match=rule):
        check_source(source, **kwargs)


# -- models ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image_task(tmp_path_factory: pytest.TempPathFactory) -> Task:
    """synth-cxr-site-shift as a small draft (40 patients per site), built once."""
    root = tmp_path_factory.mktemp("tasks")
    raw = yaml.safe_load((BUILTIN_TASKS / "synth-cxr-site-shift" / "1.0.0.yaml").read_text())
    raw["id"] = "tiny-cxr"
    raw.pop("manifest_sha256", None)
    raw.pop("validity", None)
    small(raw["source"]["params"])
    (root / "tiny-cxr").mkdir()
    path = root / "tiny-cxr" / "1.0.0.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.MonkeyPatch.context() as mp:  # module-scoped: its own cache, never the user's
        mp.setenv(ENV_CACHE, str(tmp_path_factory.mktemp("cache")))
        mp.setenv(ENV_TASKS_PATH, str(root))
        build_task(load_spec(path), path)
        return Task.load("tiny-cxr")


def torch_family(name: str, task: Task, **config: Any) -> Any:
    torch.manual_seed(0)
    module = architectures.build(name, config)
    return as_model(module.eval(), encode=input_encoder(task), name=name)


def test_tabular_families_conform(tiny_task: Task, tmp_path: Path) -> None:
    enc = tiny_task.encoding()
    check_model(torch_family("tabular-mlp", tiny_task, n_in=enc.width, n_classes=2), tiny_task)
    check_model(as_model(train_gbm(tiny_task, 0, GBMConfig(max_iter=5))), tiny_task)
    X, y, meta = tiny_task.split("val")
    preds = predict_split(
        as_model(train_gbm(tiny_task, 0, GBMConfig(max_iter=5))), X, y, meta, "val", 2
    )
    path = tmp_path / "preds.parquet"
    to_frame({"val": preds}, ["neg", "pos"]).to_parquet(path)
    check_model(load_model(f"predictions:{path}", tiny_task), tiny_task)


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("image-cnn", {"in_channels": 1, "widths": [4, 8]}),
        ("densenet121", {"in_channels": 1}),
        ("wavelet-sanitised", {"inner_config": {"in_channels": 1, "widths": [4]}}),
    ],
)
def test_image_families_conform(image_task: Task, name: str, config: dict[str, Any]) -> None:
    check_model(torch_family(name, image_task, **config), image_task, n=16)


def test_the_series_family_conforms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.tasks.test_array_tasks import write_icu

    path = write_icu(tmp_path / "tasks", n_a=60)
    monkeypatch.setenv(ENV_TASKS_PATH, str(tmp_path / "tasks"))
    build_task(load_spec(path), path)
    task = Task.load("tiny-icu")
    channels = len(task.spec.features.array.channels)
    check_model(torch_family("series-transformer", task, n_channels=channels), task, n=16)


class Unnormalised:
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.full((len(X), 2), 0.6)


class BatchNormalised:
    """Ranks within the batch: each row's output depends on the others."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        x = X["x1"].to_numpy(dtype=float)
        p = (x.argsort().argsort() + 0.5) / len(x)
        return np.column_stack([1 - p, p])


class Sorted:
    """Outputs in sorted order, not in input order."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = np.sort(1 / (1 + np.exp(-X["x1"].to_numpy(dtype=float))))
        return np.column_stack([1 - p, p])


@pytest.mark.parametrize(
    ("model", "rule"),
    [
        (Unnormalised(), "do not sum to 1"),
        (BatchNormalised(), "depends on the other rows"),
        (Sorted(), "reversed inputs do not give reversed outputs"),
    ],
    ids=["unnormalised", "batch-dependent", "order-dependent"],
)
def test_broken_models_fail_with_the_rule_named(tiny_task: Task, model: Any, rule: str) -> None:
    with pytest.raises(ConformanceError, match=rule):
        check_model(model, tiny_task)
