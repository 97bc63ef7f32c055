"""Published adversarial test sets: the adversarial-transfer source and its released task."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from benchmark.derived.adversarial_transfer import grid_pgd
from benchmark.errors import BuildError
from benchmark.models.loading import load_model
from benchmark.perturbations.threshold import ThresholdShift
from benchmark.tasks.cache import ENV_CACHE
from benchmark.tasks.registry import BUILTIN_TASKS
from benchmark.tasks.spec import load_spec
from benchmark.tasks.task import Task
from benchmark.tasks.validity import read_validity

SPEC = BUILTIN_TASKS / "synth-cxr-adversarial-transfer" / "1.0.0.yaml"


def _surrogate(task: Task) -> torch.nn.Module:
    params = load_spec(SPEC).source.params
    model = load_model(f"safetensors:{SPEC.parent / params['surrogate']}", task)
    return model.module.cpu().double().eval()  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Built:
    task: Task
    parent: Task
    cache: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The released task and its parent, built once (a loaded Task reads only its folder)."""
    cache = tmp_path_factory.mktemp("adv-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_CACHE, str(cache))
        task = Task.load(load_spec(SPEC).ref, build=True)  # the build checks the pin
        return Built(task, Task.load("synth-cxr-site-shift@1.0.0"), cache)


def test_released_rebuilt_to_its_pin_with_a_passing_record(built: Built) -> None:
    spec = built.task.spec
    assert spec.released and built.task.manifest.content_sha256 == spec.manifest_sha256
    record = read_validity(SPEC)
    assert record is not None and record.passed
    assert record.content_sha256 == spec.manifest_sha256
    assert "adversarial" in spec.probes  # evaluate reports the white-box probe by default


def test_the_adversarial_split_pairs_the_clean_test_split_within_eps(built: Built) -> None:
    task, parent = built.task, built.parent
    clean, adv = task.frame("id_test"), task.frame("ood_test")
    assert list(adv["sample_id"]) == ["adv-" + s for s in clean["sample_id"]]
    assert (adv["label"].to_numpy() == clean["label"].to_numpy()).all()
    assert (adv["group_sex"].to_numpy() == clean["group_sex"].to_numpy()).all()
    x, xa = task.array("id_test").astype(int), task.array("ood_test").astype(int)
    eps = load_spec(SPEC).source.params["eps"]
    assert np.abs(xa - x).max() == eps  # on the 8-bit grid, inside the ball, and used
    assert (task.masks("id_test") == task.masks("ood_test")).all()
    for split in ("train", "val", "id_test"):  # the parent's rows, byte for byte
        assert np.array_equal(task.array(split), parent.array(split))
        assert list(task.frame(split)["sample_id"]) == list(parent.frame(split)["sample_id"])


def test_the_crafted_examples_fool_the_surrogate(built: Built) -> None:
    module = _surrogate(built.parent)
    y = built.task.frame("id_test")["label"].to_numpy()

    def accuracy(split: str) -> float:
        x = torch.from_numpy(built.task.array(split).astype(np.float64) / 255)
        with torch.no_grad():
            return float((module(x).argmax(1).numpy() == y).mean())

    assert accuracy("ood_test") < accuracy("id_test") - 0.3


GRID_SCRIPT = """
import hashlib, sys
import numpy as np, torch
from benchmark.models.loading import load_model
from benchmark.derived.adversarial_transfer import grid_pgd
from benchmark.tasks.task import Task
torch.set_num_threads(int(sys.argv[3]))
task = Task.load("synth-cxr-site-shift@1.0.0")
module = load_model("safetensors:" + sys.argv[1], task).module.cpu().double().eval()
x = np.load(sys.argv[2])
adv = grid_pgd(module, x, np.arange(len(x)) % 2, 4, 1, 10, np.random.default_rng(3))
print(hashlib.sha256(adv.tobytes()).hexdigest())
"""


def test_crafted_bytes_do_not_depend_on_the_cpu_kernels(built: Built, tmp_path: Path) -> None:
    """Another CPU must craft the same bytes: force ATen's and oneDNN's oldest x86 kernels
    and one thread instead of two; the adversarial images must not move."""
    params = load_spec(SPEC).source.params
    weights = SPEC.parent / params["surrogate"]
    images = tmp_path / "x.npy"
    np.save(images, built.task.array("id_test")[:128])
    cache = {ENV_CACHE: str(built.cache)}

    def digest(env: dict[str, str], threads: int) -> str:
        out = subprocess.run(
            [sys.executable, "-c", GRID_SCRIPT, str(weights), str(images), str(threads)],
            env={**os.environ, **cache, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    native = digest({}, 2)
    generic = digest({"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}, 1)
    assert len(native) == 64 and generic == native


def test_grid_pgd_stays_on_the_grid_and_in_the_ball() -> None:
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2)).double()
    x = np.random.default_rng(0).integers(0, 256, (40, 1, 4, 4)).astype(np.uint8)
    y = np.arange(40) % 2
    adv = grid_pgd(ThresholdShift(net, 0.5).double(), x, y, 3, 1, 5, np.random.default_rng(1))
    assert adv.dtype == np.uint8 and np.abs(adv.astype(int) - x).max() <= 3
    again = grid_pgd(ThresholdShift(net, 0.5).double(), x, y, 3, 1, 5, np.random.default_rng(1))
    assert np.array_equal(adv, again)


def _copy(tmp_path: Path, **params: object) -> Path:
    folder = tmp_path / "tasks" / "adv-copy"
    folder.mkdir(parents=True)
    raw = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    raw.pop("manifest_sha256")
    raw["id"] = "adv-copy"
    raw["source"]["params"].update(params)
    shutil.copy(SPEC.parent / raw["source"]["params"]["surrogate"], folder)
    path = folder / "1.0.0.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_a_changed_surrogate_file_is_refused_by_name(tmp_path: Path) -> None:
    from benchmark.tasks.build import build_task

    path = _copy(tmp_path, surrogate_sha256="0" * 64)
    with pytest.raises(BuildError, match=r"surrogate\.safetensors has sha256 .* pins 0{64}"):
        build_task(load_spec(path), path)


def test_a_draft_or_non_image_parent_is_refused(tmp_path: Path) -> None:
    from benchmark.tasks.build import build_task

    path = _copy(tmp_path, parent="flchain-mortality-temporal@1.0.0")
    with pytest.raises(BuildError, match="not an image task"):
        build_task(load_spec(path), path)
