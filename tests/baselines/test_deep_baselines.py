"""Deep architectures (image CNN, DenseNet-121, series transformer) and their training loop."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from baselines import deep
from baselines.progress import EpochLog
from benchmark.errors import MedFailError
from benchmark.models import architectures
from benchmark.models.loading import load_model

# name -> (input shape, config, embedding width)
SHAPES: dict[str, tuple[tuple[int, ...], dict[str, Any], int]] = {
    "image-cnn": ((6, 1, 16, 16), {"in_channels": 1, "n_classes": 3}, 64),
    "densenet121": ((4, 3, 32, 32), {"in_channels": 3, "n_classes": 2}, 1024),
    "series-transformer": ((6, 5, 23), {"n_channels": 5, "n_classes": 2, "max_len": 24}, 32),
}


def _input(name: str, seed: int = 0) -> torch.Tensor:
    shape = SHAPES[name][0]
    g = torch.Generator().manual_seed(seed)
    if name == "series-transformer":
        x = 80 + 10 * torch.randn(shape, generator=g)
        x[torch.rand(shape, generator=g) < 0.2] = float("nan")
        return x
    return torch.rand(shape, generator=g)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/baselines/conftest.py


@pytest.fixture(scope="module")
def built() -> dict[str, torch.nn.Module]:
    out = {}
    for name, (_, config, _) in SHAPES.items():
        torch.manual_seed(0)
        module = architectures.build(name, config)
        module.set_input_stats(_input(name, seed=1))
        out[name] = module.eval()
    return out


def _task_stub(name: str) -> Any:
    """What load_model reads of a task for an image/series model: no tabular features, the
    array's kind and channels, and the classes (the model is checked against them)."""
    _, config, _ = SHAPES[name]
    kind = "series" if name == "series-transformer" else "image"
    channels = config.get("in_channels", config.get("n_channels"))
    array = SimpleNamespace(kind=kind, channels=[f"c{i}" for i in range(channels)])
    spec = SimpleNamespace(
        ref="stub@1.0.0",
        features=SimpleNamespace(names=(), array=array),
        label=SimpleNamespace(classes=[f"k{i}" for i in range(config["n_classes"])]),
    )
    return SimpleNamespace(spec=spec)


@pytest.mark.parametrize("name", list(SHAPES))
def test_forward_and_embed(built: dict[str, torch.nn.Module], name: str) -> None:
    module, (shape, config, width) = built[name], SHAPES[name]
    x = _input(name)
    with torch.no_grad():
        logits, emb = module(x), module.embed(x)
    assert logits.shape == (shape[0], config["n_classes"])
    assert emb.shape == (shape[0], width)
    assert torch.isfinite(logits).all() and torch.isfinite(emb).all()
    assert not torch.allclose(logits[0], logits[1])  # depends on the input


@pytest.mark.parametrize("name", list(SHAPES))
def test_config_round_trips(built: dict[str, torch.nn.Module], name: str) -> None:
    module = built[name]
    again = architectures.build(name, json.loads(json.dumps(module.config)))
    assert again.config == module.config
    shapes = {k: v.shape for k, v in module.state_dict().items()}
    assert {k: v.shape for k, v in again.state_dict().items()} == shapes


@pytest.mark.parametrize("name", list(SHAPES))
def test_saved_weights_give_the_same_logits(
    built: dict[str, torch.nn.Module], name: str, tmp_path: Path
) -> None:
    module, x = built[name], _input(name)
    path = tmp_path / "model.safetensors"
    deep.save_network(module, str(path))
    loaded = deep.load_network(str(path))
    assert type(loaded) is type(module)
    with torch.no_grad():
        assert torch.equal(loaded(x), module(x))
        assert torch.equal(loaded.embed(x), module.embed(x))
        expected = torch.softmax(module(x).double(), dim=1).numpy()
    model = load_model(f"safetensors:{path}", _task_stub(name))  # the scorer's own loader
    assert np.array_equal(model.predict_proba(x.numpy()), expected)
    assert "embed" in model.info.capabilities


def test_a_saved_wavelet_model_loads_for_its_task(
    built: dict[str, torch.nn.Module], tmp_path: Path
) -> None:
    """The wrapper keeps the classes in its inner config; the loader's task check reads
    them there (it once read None and refused every wavelet entry)."""
    path = tmp_path / "model.safetensors"
    deep.save_network(deep.wavelet_sanitised(built["image-cnn"]), str(path))
    model = load_model(f"safetensors:{path}", _task_stub("image-cnn"))
    assert model.predict_proba(_input("image-cnn").numpy()).shape == (6, 3)


@pytest.mark.parametrize("name", ["image-cnn", "densenet121"])
def test_image_configs_are_read_off_plain_state_dicts(
    built: dict[str, torch.nn.Module], name: str, tmp_path: Path
) -> None:
    module, x = built[name], _input(name)
    path = tmp_path / "model.pt"
    torch.save(module.state_dict(), path)
    model = load_model(f"torch:{path}#{name}", _task_stub(name))
    with torch.no_grad():
        expected = torch.softmax(module(x).double(), dim=1).numpy()
    assert np.array_equal(model.predict_proba(x.numpy()), expected)


def test_channel_stats_match_numpy_and_fall_back() -> None:
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(50, 4, 7)).astype(np.float32)
    x[x > 5] = np.nan
    x[:, 2] = np.nan  # never observed
    x[:, 3] = 1.5  # constant
    mean, std = architectures.channel_stats(torch.as_tensor(x), chunk=8)
    flat = x.transpose(1, 0, 2).reshape(4, -1).astype(np.float64)
    assert np.allclose(mean[:2], np.nanmean(flat[:2], axis=1), atol=1e-5)
    assert np.allclose(std[:2], np.nanstd(flat[:2], axis=1, ddof=1), atol=1e-5)
    assert mean[2] == 0 and std[2] == 1 and mean[3] == 1.5 and std[3] == 1


def test_series_transformer_survives_missing_channels() -> None:
    torch.manual_seed(0)
    module = architectures.build("series-transformer", {"n_channels": 5}).eval()
    train = 80 + 10 * torch.randn(20, 5, 24)
    train[:, 1] = float("nan")  # missing for the whole training set
    module.set_input_stats(train)
    assert module.mean[1] == 0 and module.std[1] == 1 and module.mean[0] > 50
    x = 80 + 10 * torch.randn(3, 5, 24)
    x[0, 3] = float("nan")  # one channel missing for one sample
    x[2] = float("nan")  # everything missing
    with torch.no_grad():
        assert torch.isfinite(module(x)).all() and torch.isfinite(module.embed(x)).all()
        # the missing indicator is an input: missing differs from observed at the mean
        at_mean = x.clone()
        at_mean[0, 3] = module.mean[3]
        assert not torch.allclose(module(at_mean)[0], module(x)[0])
    with pytest.raises(ValueError, match="max_len"):
        module(torch.zeros(1, 5, 300))


def test_bad_configs_are_refused() -> None:
    with pytest.raises(MedFailError, match="pretrained"):
        architectures.build("densenet121", {"in_channels": 1, "n_classes": 2, "pretrained": True})
    with pytest.raises(MedFailError, match="divisible"):
        architectures.build("series-transformer", {"d_model": 30, "n_heads": 4})


def _squares(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """16x16 noise; class 1 has a bright 4x4 square somewhere."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 0.5, size=(n, 1, 16, 16)).astype(np.float32)
    y = np.arange(n) % 2
    for i in np.flatnonzero(y):
        r, c = rng.integers(0, 12, size=2)
        x[i, 0, r : r + 4, c : c + 4] = 1.0
    return x, y


def _vitals(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """5 x 24 vitals with 10% missing; class 1 has its heart rate rise in the second half."""
    rng = np.random.default_rng(seed)
    base = np.array([80.0, 97.0, 16.0, 85.0, 37.0])[None, :, None]
    x = base + rng.normal(0.0, 3.0, size=(n, 5, 24))
    y = np.arange(n) % 2
    x[y == 1, 0, 12:] += 15.0
    x[rng.random(x.shape) < 0.1] = np.nan
    return x.astype(np.float32), y


DATA = {"image-cnn": _squares, "series-transformer": _vitals}


def _train(name: str, seed: int = 0, epochs: int = 8, **kw: Any) -> torch.nn.Module:
    x, y = DATA[name](96, 0)
    xv, yv = DATA[name](64, 1)
    config = deep.DeepConfig(batch_size=16, max_epochs=epochs, patience=3, num_threads=1)
    return deep.train_network(name, x, y, xv, yv, seed=seed, config=config, device="cpu", **kw)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("name", list(DATA))
def test_train_network_learns(name: str) -> None:
    logs: list[EpochLog] = []
    model = _train(name, on_epoch=logs.append)
    assert not model.training and next(model.parameters()).device.type == "cpu"
    assert [log.epoch for log in logs] == list(range(1, len(logs) + 1)) and len(logs) >= 2
    assert all(log.max_epochs == 8 and log.val_auroc is not None for log in logs)
    assert logs[-1].val_auroc > 0.9 and logs[-1].train_loss < logs[0].train_loss
    assert logs[-1].line().startswith(f"epoch {len(logs)}/8  loss ")
    x, y = DATA[name](128, 2)
    with torch.no_grad():
        proba = torch.softmax(model(torch.as_tensor(x)), dim=1)[:, 1].numpy()
    assert roc_auc_score(y, proba) > 0.95


@pytest.mark.parametrize("name", list(DATA))
def test_seeds_and_methods(name: str) -> None:
    erm = _train(name, epochs=2)
    assert _same(erm, _train(name, epochs=2))  # bitwise on CPU
    assert not _same(erm, _train(name, seed=1, epochs=2))
    ones = np.ones(96)
    assert _same(erm, _train(name, epochs=2, method="reweight", sample_weight=ones))
    weights = np.random.default_rng(0).uniform(0.1, 3.0, size=96)
    assert not _same(erm, _train(name, epochs=2, method="reweight", sample_weight=weights))
    mixup = _train(name, epochs=2, method="mixup")
    assert not _same(erm, mixup)
    assert all(torch.isfinite(v.float()).all() for v in mixup.state_dict().values())


def test_densenet_trains_briefly() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((24, 1, 32, 32), dtype=np.float32)
    y = np.arange(24) % 2
    config = deep.DeepConfig(batch_size=12, max_epochs=1, patience=1, num_threads=1)
    model = deep.train_network("densenet121", x, y, x[:8], y[:8], seed=0, config=config)
    assert isinstance(model, architectures.DenseNet121) and not model.training
    with torch.no_grad():
        proba = torch.softmax(model(torch.as_tensor(x[:8])), dim=1)
    assert torch.isfinite(proba).all() and torch.allclose(proba.sum(1), torch.ones(8))


def test_train_network_takes_read_only_arrays() -> None:
    x, y = _vitals(32, 0)
    for a in (x, y):
        a.flags.writeable = False  # as arrays read zero-copy from parquet are
    config = deep.DeepConfig(batch_size=16, max_epochs=1, num_threads=1)
    model = deep.train_network("series-transformer", x, y, x, y, seed=0, config=config)
    assert isinstance(model, architectures.SeriesTransformer)


def test_train_network_refuses_bad_requests() -> None:
    x, y = _squares(8, 0)
    with pytest.raises(ValueError, match="sample_weight"):
        deep.train_network("image-cnn", x, y, x, y, seed=0, method="reweight")
    with pytest.raises(ValueError, match="sample_weight"):
        deep.train_network("image-cnn", x, y, x, y, seed=0, sample_weight=np.ones(8))
    with pytest.raises(ValueError, match="unknown method"):
        deep.train_network("image-cnn", x, y, x, y, seed=0, method="dro")
    with pytest.raises(ValueError, match="needs series"):
        deep.train_network("series-transformer", x, y, x, y, seed=0)
    with pytest.raises(ValueError, match="class indices"):
        deep.train_network("image-cnn", x, y - 1, x, y, seed=0)
    with pytest.raises(ValueError, match="no deep baseline"):
        deep.default_config("tabular-mlp")
    with pytest.raises(ValueError, match="no deep baseline"):
        deep.train_network("tabular-mlp", x, y, x, y, seed=0, config=deep.DeepConfig())
