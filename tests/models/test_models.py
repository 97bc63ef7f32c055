"""Loading models safely, adapters that round-trip, capabilities and the tabular contract."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pathlib
import pickle
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import torch
from safetensors.torch import save_file
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from baselines.tabular import GBMConfig, save_mlp, train_gbm
from benchmark.errors import MedFailError
from benchmark.models.adapters import SklearnClassifier, as_model, weights_sha256
from benchmark.models.architectures import TabularMLP
from benchmark.models.loading import ModelLoadError, load_model, model_name
from benchmark.models.protocol import capabilities
from benchmark.models.sandbox import SandboxedClassifier
from benchmark.results.report import ProbeResult
from benchmark.scoring.evaluate import evaluate
from benchmark.scoring.probes import Probe, ScoringContext
from benchmark.tasks.features import TabularEncoding
from benchmark.tasks.task import Task

SPLITS = ("train", "val", "id_test", "ood_test")
#: torch >= 2.10 deprecates torch.jit; the torchscript adapter is still supported
JIT_DEPRECATED = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated")


# -- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def task(tiny_task: Task) -> Task:
    return tiny_task


def make_mlp(task: Task, hidden: tuple[int, ...] = (8,), seed: int = 0) -> TabularMLP:
    """An untrained TabularMLP with the task's input statistics (random weights suffice)."""
    torch.manual_seed(seed)
    enc = task.encoding()
    model = TabularMLP(enc.width, len(task.spec.label.classes), hidden)
    X, _, _ = task.split("train")
    model.set_input_stats(torch.tensor(enc(X)))
    return model.eval()


@pytest.fixture
def mlp(task: Task) -> TabularMLP:
    return make_mlp(task)


def probas(model, task: Task) -> dict[str, np.ndarray]:
    return {s: np.asarray(model.predict_proba(task.split(s)[0])) for s in SPLITS}


def assert_same_probas(loaded, reference, task: Task) -> None:
    got, want = probas(loaded, task), probas(reference, task)
    for split in SPLITS:
        assert got[split].shape == (len(task.split(split)[1]), 2)
        np.testing.assert_allclose(got[split], want[split], rtol=0, atol=1e-7, err_msg=split)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_file_info(model, path: Path, adapter: str) -> None:
    assert model.info.adapter == adapter
    assert model.info.hash_of == "file"
    assert model.info.sha256 == file_sha256(path)


class TouchOnLoad:
    """Unpickling this creates ``marker`` (a stand-in for arbitrary code execution)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


class SystemOnLoad:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class Opaque:
    """A plain custom object (not a tensor)."""


def identity(x):
    return x


# -- safe loading -----------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [TouchOnLoad, SystemOnLoad])
@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_malicious_pickle_as_pt_is_refused_without_running(
    task: Task, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload, writer
) -> None:
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    evil = {"head.weight": payload(marker)}
    path = tmp_path / "evil.pt"
    if writer == "torch.save":
        torch.save(evil, path)
    else:
        path.write_bytes(pickle.dumps(evil, protocol=2))

    with pytest.raises(ModelLoadError, match="refused") as err:
        load_model("torch:evil.pt#tabular-mlp", task)
    assert isinstance(err.value, MedFailError)
    assert "evil.pt" in str(err.value)
    assert not marker.exists()

    # control: the payload is live, so the refusal above is what kept the marker away
    pickle.loads(pickle.dumps(evil, protocol=2))
    assert marker.exists()


@pytest.mark.parametrize("suffix", [".pkl", ".pickle", ".joblib"])
def test_pickle_suffix_is_refused_by_name(
    task: Task, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    (tmp_path / f"evil{suffix}").write_bytes(pickle.dumps(TouchOnLoad(marker)))
    with pytest.raises(ModelLoadError, match="pickle files are refused"):
        load_model(f"evil{suffix}", task)
    assert not marker.exists()


@pytest.mark.parametrize(
    "extra", [Opaque(), 3, "text", [1, 2]], ids=["object", "int", "str", "list"]
)
def test_state_dict_with_a_non_tensor_is_refused(
    task: Task, mlp: TabularMLP, tmp_path: Path, extra
) -> None:
    path = tmp_path / "mixed.pt"
    torch.save({**mlp.state_dict(), "extra": extra}, path)
    with pytest.raises(ModelLoadError, match=r"mixed\.pt"):
        load_model(f"torch:{path}#tabular-mlp", task)


@pytest.mark.parametrize("obj", [[torch.zeros(2)], torch.zeros(2)], ids=["list", "tensor"])
def test_torch_file_that_is_not_a_dict_is_refused(task: Task, tmp_path: Path, obj) -> None:
    path = tmp_path / "notdict.pt"
    torch.save(obj, path)
    with pytest.raises(ModelLoadError, match="dict of tensors"):
        load_model(f"{path}#tabular-mlp", task)


def skops_with(func, tmp_path: Path) -> Path:
    lr = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    pipe = Pipeline([("f", FunctionTransformer(func=func)), ("lr", lr)])
    path = tmp_path / "model.skops"
    sio.dump(pipe, path)
    return path


@pytest.mark.parametrize(
    ("func", "name"),
    [
        (os.getcwd, f"{os.getcwd.__module__}.getcwd"),
        (identity, f"{__name__}.identity"),
    ],
    ids=["os.getcwd", "test-module-function"],
)
def test_skops_untrusted_type_is_refused_by_name(
    task: Task, tmp_path: Path, func, name: str
) -> None:
    path = skops_with(func, tmp_path)
    assert name in sio.get_untrusted_types(file=path)  # the file really asks for it
    with pytest.raises(ModelLoadError, match="refused") as err:
        load_model(str(path), task)
    assert name in str(err.value)


def test_skops_function_gadget_from_a_trusted_package_is_refused(
    task: Task, tmp_path: Path
) -> None:
    """A numpy *function* is a call gadget: partial(numpy.savetxt, PATH) writes a file."""
    marker = tmp_path / "written-at-predict"
    path = skops_with(functools.partial(np.savetxt, str(marker)), tmp_path)
    with pytest.raises(ModelLoadError, match=r"numpy\.savetxt"):
        load_model(str(path), task)
    assert not marker.exists()

    # control: loaded anyway, predicting writes the file
    unsafe = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    with pytest.raises(Exception):  # noqa: B017 (whatever fails after the write)
        unsafe.predict_proba(np.array([[1.0]]))
    assert marker.exists()


def test_skops_plain_sklearn_estimator_loads(task: Task, tmp_path: Path) -> None:
    X, y, _ = task.split("train")
    enc = task.encoding()
    lr = Pipeline([("impute", SimpleImputer()), ("lr", LogisticRegression())])
    lr.fit(enc(X), y)
    path = tmp_path / "lr.skops"
    sio.dump(lr, path)
    model = load_model(str(path), task)
    Xv = enc(task.split("val")[0])
    np.testing.assert_allclose(model.predict_proba(Xv), lr.predict_proba(Xv))


def _safetensors_bytes(task: Task, tmp_path: Path) -> bytes:
    path = tmp_path / "good.safetensors"
    save_mlp(make_mlp(task), str(path))
    return path.read_bytes()


def _torch_bytes(task: Task, tmp_path: Path) -> bytes:
    path = tmp_path / "good.pt"
    torch.save(make_mlp(task).state_dict(), path)
    return path.read_bytes()


def _ts_bytes(task: Task, tmp_path: Path) -> bytes:
    path = tmp_path / "good.ts"
    torch.jit.script(make_mlp(task)).save(str(path))
    return path.read_bytes()


def _skops_bytes(task: Task, tmp_path: Path) -> bytes:
    return sio.dumps(LogisticRegression().fit([[0.0], [1.0]], [0, 1]))


def _parquet_bytes(task: Task, tmp_path: Path) -> bytes:
    path = tmp_path / "good.parquet"
    pd.DataFrame({"sample_id": ["a"], "score": [0.5]}).to_parquet(path)
    return path.read_bytes()


GOOD = {
    "safetensors": _safetensors_bytes,
    "pt": _torch_bytes,
    "ts": _ts_bytes,
    "skops": _skops_bytes,
    "parquet": _parquet_bytes,
}


@JIT_DEPRECATED
@pytest.mark.parametrize("damage", ["empty", "garbage", "truncated"])
@pytest.mark.parametrize("suffix", sorted(GOOD))
def test_corrupt_or_truncated_file_is_a_clear_load_error(
    task: Task, tmp_path: Path, suffix: str, damage: str
) -> None:
    good = GOOD[suffix](task, tmp_path)
    data = {"empty": b"", "garbage": b"not a model file " * 8, "truncated": good[: len(good) // 2]}
    path = tmp_path / f"broken.{suffix}"
    path.write_bytes(data[damage])
    arch = "#tabular-mlp" if suffix == "pt" else ""
    with pytest.raises(ModelLoadError) as err:
        load_model(f"{path}{arch}", task)
    assert "broken." in str(err.value)


@JIT_DEPRECATED
def test_state_dict_zip_given_as_torchscript_is_refused(task: Task, tmp_path: Path) -> None:
    path = tmp_path / "weights.ts"
    path.write_bytes(_torch_bytes(task, tmp_path))
    with pytest.raises(ModelLoadError, match="TorchScript"):
        load_model(str(path), task)


def test_weights_of_another_shape_or_architecture_are_refused(
    task: Task, tmp_path: Path, mlp: TabularMLP
) -> None:
    alien = tmp_path / "alien.pt"
    torch.save({"conv.weight": torch.zeros(3, 3)}, alien)
    with pytest.raises(ModelLoadError, match="not a tabular-mlp state dict"):
        load_model(f"{alien}#tabular-mlp", task)

    alien_st = tmp_path / "alien.safetensors"
    save_file({"conv.weight": torch.zeros(3, 3)}, str(alien_st))
    with pytest.raises(ModelLoadError, match="not a tabular-mlp state dict"):
        load_model(f"{alien_st}#tabular-mlp", task)

    # metadata config disagreeing with the weights
    wrong = tmp_path / "wrong.safetensors"
    config = {**mlp.config, "n_in": mlp.config["n_in"] + 1}
    meta = {"medfail.arch": "tabular-mlp", "medfail.config": json.dumps(config)}
    save_file(dict(mlp.state_dict()), str(wrong), metadata=meta)
    with pytest.raises(ModelLoadError, match="do not fit"):
        load_model(str(wrong), task)

    bad_json = tmp_path / "badjson.safetensors"
    meta = {"medfail.arch": "tabular-mlp", "medfail.config": "{not json"}
    save_file(dict(mlp.state_dict()), str(bad_json), metadata=meta)
    with pytest.raises(ModelLoadError, match="badjson"):
        load_model(str(bad_json), task)


def test_spec_errors_are_clear(task: Task, tmp_path: Path, mlp: TabularMLP) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(str(tmp_path / "nope.safetensors"), task)
    with pytest.raises(ModelLoadError, match="cannot tell the model kind"):
        load_model(str(tmp_path / "model.bin"), task)
    sd = tmp_path / "sd.pt"
    torch.save(mlp.state_dict(), sd)
    with pytest.raises(ModelLoadError, match="needs its architecture"):
        load_model(str(sd), task)
    bare = tmp_path / "bare.safetensors"
    save_file(dict(mlp.state_dict()), str(bare))
    with pytest.raises(ModelLoadError, match="no architecture named"):
        load_model(str(bare), task)
    with pytest.raises(MedFailError, match="unknown architecture"):
        load_model(f"{bare}#no-such-arch", task)


# -- adapters round-trip ----------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["{p}", "safetensors:{p}#tabular-mlp"])
def test_safetensors_round_trip(task: Task, mlp: TabularMLP, tmp_path: Path, spec: str) -> None:
    path = tmp_path / "mlp.safetensors"
    save_mlp(mlp, str(path))
    model = load_model(spec.format(p=path), task)
    reference = as_model(mlp, encode=task.encoding())
    assert_same_probas(model, reference, task)
    assert_file_info(model, path, "safetensors")
    assert capabilities(model) == ["differentiable", "embed"]
    X = task.split("ood_test")[0]
    np.testing.assert_allclose(model.embed(X), reference.embed(X), atol=1e-7)


@pytest.mark.parametrize("fmt", ["torch", "safetensors"])
def test_config_read_off_the_weights_keeps_layer_order(
    task: Task, tmp_path: Path, fmt: str
) -> None:
    """Five hidden layers of distinct widths: body.12 must come after body.3."""
    deep = make_mlp(task, hidden=(5, 6, 7, 8, 9))
    if fmt == "torch":
        path = tmp_path / "deep.pt"
        torch.save(deep.state_dict(), path)
        spec = f"torch:{path}#tabular-mlp"
    else:
        path = tmp_path / "deep.safetensors"
        save_file(dict(deep.state_dict()), str(path))  # no metadata: config from shapes
        spec = f"{path}#tabular-mlp"
    model = load_model(spec, task)
    assert model.module.config["hidden"] == [5, 6, 7, 8, 9]
    assert_same_probas(model, as_model(deep, encode=task.encoding()), task)


def test_torch_state_dict_round_trip(task: Task, mlp: TabularMLP, tmp_path: Path) -> None:
    path = tmp_path / "mlp.pt"
    torch.save(mlp.state_dict(), path)
    model = load_model(f"torch:{path}#tabular-mlp", task)
    assert_same_probas(model, as_model(mlp, encode=task.encoding()), task)
    assert_file_info(model, path, "torch")
    assert capabilities(model) == ["differentiable", "embed"]


@JIT_DEPRECATED
@pytest.mark.parametrize("how", ["script", "trace"])
def test_torchscript_round_trip(task: Task, mlp: TabularMLP, tmp_path: Path, how: str) -> None:
    enc = task.encoding()
    example = torch.tensor(enc(task.split("train")[0]))
    compiled = torch.jit.script(mlp) if how == "script" else torch.jit.trace(mlp, example)
    path = tmp_path / "mlp.pt"  # an explicit kind beats the .pt suffix
    compiled.save(str(path))
    model = load_model(f"torchscript:{path}", task)
    assert_same_probas(model, as_model(mlp, encode=enc), task)
    assert_file_info(model, path, "torchscript")
    caps = capabilities(model)
    assert "differentiable" in caps
    # scripting keeps the methods forward calls (embed); tracing keeps forward only
    assert ("embed" in caps) == (how == "script")


def test_skops_gbm_round_trip(task: Task, tmp_path: Path) -> None:
    gbm = train_gbm(task, seed=0, config=GBMConfig(max_iter=10, n_iter_no_change=3))
    path = tmp_path / "gbm.skops"
    sio.dump(gbm, path)
    model = load_model(str(path), task)
    assert isinstance(model, SandboxedClassifier)  # run in a child process
    assert_same_probas(model, SklearnClassifier(gbm), task)
    assert_file_info(model, path, "skops")
    assert capabilities(model) == []


def prediction_table(model, task: Task, form: str) -> pd.DataFrame:
    frames = []
    for split in SPLITS:
        X = task.split(split)[0]
        p = model.predict_proba(X)
        cols = {"proba_neg": p[:, 0], "proba_pos": p[:, 1]} if form == "proba" else {}
        if form == "score":
            cols = {"score": p[:, 1]}
        frames.append(pd.DataFrame({"sample_id": X.index.to_numpy(dtype=str), **cols}))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("form", ["proba", "score"])
@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_predictions_file_round_trip(
    task: Task, mlp: TabularMLP, tmp_path: Path, suffix: str, form: str
) -> None:
    reference = as_model(mlp, encode=task.encoding())
    table = prediction_table(reference, task, form).sample(frac=1.0, random_state=0)
    path = tmp_path / f"preds.{suffix}"
    if suffix == "csv":
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path, index=False)
    model = load_model(str(path), task)
    assert_same_probas(model, reference, task)
    assert_file_info(model, path, "predictions")
    assert capabilities(model) == []

    report = evaluate(str(path), task, n_boot=40)
    assert report.model.sha256 == file_sha256(path)
    assert report.model.hash_of == "file"
    direct = evaluate(reference, task, n_boot=40)
    got, want = report.predictions, direct.predictions
    np.testing.assert_allclose(got["score"], want["score"], atol=1e-7)
    assert report.model.sha256 != direct.model.sha256  # file hash vs weights hash


USER_MODULE = """
import numpy as np
import torch

class Constant:
    def predict_proba(self, X):
        return np.tile([0.25, 0.75], (len(X), 1))

constant = Constant()

def make_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear({width}, 2))

class NotAModel:
    pass
"""


@pytest.fixture
def user_module(task: Task, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"medfail_user_{uuid.uuid4().hex}"
    code = USER_MODULE.format(width=task.encoding().width)
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(code))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


@pytest.mark.parametrize("attr", ["Constant", "constant"])
def test_python_model_round_trip(task: Task, user_module: str, attr: str) -> None:
    model = load_model(f"python:{user_module}:{attr}", task)
    X = task.split("val")[0]
    np.testing.assert_allclose(model.predict_proba(X), np.tile([0.25, 0.75], (len(X), 1)))
    assert capabilities(model) == []
    report = evaluate(f"python:{user_module}:{attr}", task, n_boot=40)
    assert report.model.hash_of == "predictions"
    assert report.model.sha256 is not None


def test_python_torch_factory_gets_the_encoding(task: Task, user_module: str) -> None:
    model = load_model(f"python:{user_module}:make_net", task)
    module = sys.modules[user_module]
    reference = as_model(module.make_net(), encode=task.encoding())
    assert_same_probas(model, reference, task)
    assert capabilities(model) == ["differentiable"]
    assert model.info.hash_of == "weights"
    assert model.info.sha256 == weights_sha256(reference.module)


def test_python_spec_errors(task: Task, user_module: str) -> None:
    with pytest.raises(ModelLoadError, match="MODULE:ATTR"):
        load_model(f"python:{user_module}", task)
    with pytest.raises(ModelLoadError, match=r"cannot load .*AttributeError"):
        load_model(f"python:{user_module}:missing", task)
    with pytest.raises(ModelLoadError, match=r"cannot load .*ModuleNotFoundError"):
        load_model("python:no_such_module_medfail:x", task)
    with pytest.raises(ModelLoadError, match=r"cannot load .*TypeError"):
        load_model("python:collections:namedtuple", task)  # a factory that needs arguments
    with pytest.raises(MedFailError, match=r"not a model.*predict_proba"):
        load_model(f"python:{user_module}:NotAModel", task)


# -- model wrappers and capabilities ----------------------------------------------------------


def test_as_model_refuses_an_object_without_predict_proba() -> None:
    class Predicts:
        def predict(self, X):
            return X

    for obj in (object(), Predicts(), 3):
        with pytest.raises(MedFailError, match=r"is not a model: it needs predict_proba"):
            as_model(obj)


def test_as_model_wraps_estimators_and_keeps_models() -> None:
    class Mine:
        def predict_proba(self, X):
            return np.full((len(X), 2), 0.5)

    mine = Mine()
    assert as_model(mine) is mine
    lr = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    wrapped = as_model(lr)
    assert isinstance(wrapped, SklearnClassifier)
    assert wrapped.info.adapter == "sklearn"
    np.testing.assert_allclose(wrapped.predict_proba([[0.3]]), lr.predict_proba([[0.3]]))


def test_weights_hash_covers_scalar_buffers_and_tracks_weights() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    info = as_model(net).info  # num_batches_tracked is a 0-dim tensor
    assert info.hash_of == "weights"
    assert info.sha256 == weights_sha256(net)
    with torch.no_grad():
        net[1].num_batches_tracked += 1
    assert weights_sha256(net) != info.sha256


@dataclass
class NeedsGradients(Probe):
    name: ClassVar[str] = "needs-gradients"
    requires: ClassVar[tuple[str, ...]] = ("differentiable",)

    def run(self, ctx: ScoringContext) -> ProbeResult:
        assert capabilities(ctx.model) == ["differentiable", "embed"]
        return ProbeResult(name=self.name, config={}, metrics=[])


def test_evaluate_refuses_models_missing_a_probe_requirement(
    task: Task, mlp: TabularMLP, tmp_path: Path
) -> None:
    gbm = train_gbm(task, seed=0, config=GBMConfig(max_iter=5, n_iter_no_change=2))
    with pytest.raises(MedFailError, match="needs-gradients needs differentiable"):
        evaluate(gbm, task, probes=[NeedsGradients()], n_boot=40)
    path = tmp_path / "gbm.skops"
    sio.dump(gbm, path)
    with pytest.raises(MedFailError, match="needs-gradients needs differentiable"):
        evaluate(str(path), task, probes=[NeedsGradients()], n_boot=40)
    # a torch model has it: the probe runs
    report = evaluate(mlp, task, probes=[NeedsGradients()], n_boot=40)
    assert [p.name for p in report.probes] == ["needs-gradients"]


# -- the tabular encoding ---------------------------------------------------------------------


def test_encoding_levels_come_from_train_only() -> None:
    train = pd.DataFrame({"x": [1.0, np.nan, 3.0], "c": ["b", "a", None]})
    enc = TabularEncoding.fit(train, ["x"], ["c"])
    assert enc.levels == {"c": ("a", "b")}
    assert enc.names == ["x", "c=a", "c=b"]
    test = pd.DataFrame({"x": [np.nan, 2.0, 5.0, 4.0], "c": ["zzz", "b", None, "a"]})
    out = enc(test)
    assert out.dtype == np.float32
    assert out.shape == (4, enc.width)
    np.testing.assert_array_equal(out[:, 1:], [[0, 0], [0, 1], [0, 0], [1, 0]])  # unseen: zeros
    assert np.isnan(out[0, 0])
    np.testing.assert_array_equal(out[1:, 0], [2.0, 5.0, 4.0])


def test_task_encoding_ignores_levels_seen_outside_train(task: Task) -> None:
    enc = task.encoding()
    X = task.split("train")[0]
    assert enc.levels["sex"] == tuple(sorted(X["sex"].astype(str).unique()))
    ood = task.split("ood_test")[0].copy()
    ood["sex"] = "unknown"
    ood.iloc[0, ood.columns.get_loc("x1")] = np.nan
    out = enc(ood)
    assert (out[:, len(enc.numeric) :] == 0).all()
    assert np.isnan(out[0, 0])


def test_mlp_imputes_missing_inputs(task: Task, mlp: TabularMLP) -> None:
    X = task.split("val")[0].copy()
    X.loc[X.index[::2], "x1"] = np.nan
    X.loc[X.index[:3], ["x1", "x2"]] = np.nan
    X.loc[X.index[1], "sex"] = None
    assert X.isna().any().any()
    proba = as_model(mlp, encode=task.encoding()).predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # a missing value is imputed with the train median
    enc = task.encoding()
    x = torch.tensor(enc(X))
    filled = torch.where(torch.isnan(x), mlp.fill, x)
    with torch.no_grad():
        np.testing.assert_allclose(mlp(x).numpy(), mlp(filled).numpy())


def test_a_model_of_another_task_is_refused_naming_the_tasks_it_fits(
    task: Task, tmp_path: Path
) -> None:
    """It used to fail deep in torch ("size of tensor a (21) must match ... (18)")."""
    from benchmark.models.architectures import ImageCNN

    path = tmp_path / "cxr.safetensors"
    cnn = ImageCNN(1, 2, widths=(4,))
    save_file(
        cnn.state_dict(),
        str(path),
        metadata={"medfail.arch": "image-cnn", "medfail.config": json.dumps(cnn.config)},
    )
    with pytest.raises(ModelLoadError) as err:
        load_model(str(path), task)
    message = str(err.value)
    assert "the model takes 1 image channels and gives 2 classes" in message
    assert f"tiny-task@1.0.0 has {task.encoding().width} features" in message
    assert "synth-cxr-site-shift@1.0.0" in message  # a built-in one-channel image task
    wider = TabularMLP(task.encoding().width + 3, 2, (8,))  # trained on a wider table
    path = tmp_path / "wider.safetensors"
    save_file(
        wider.state_dict(),
        str(path),
        metadata={"medfail.arch": "tabular-mlp", "medfail.config": json.dumps(wider.config)},
    )
    with pytest.raises(ModelLoadError, match=f"the model takes {wider.config['n_in']} features"):
        load_model(str(path), task)


def test_a_generic_file_name_is_named_by_its_folders(tmp_path: Path) -> None:
    assert model_name(tmp_path / "erm-mlp" / "seed-0" / "model.skops") == "erm-mlp/seed-0"
    assert model_name(tmp_path / "runs" / "densenet" / "best.pt") == "densenet"
    assert model_name(tmp_path / "my-resnet.pt") == "my-resnet"
