"""The synthetic task family: released, validated, reproducible, and showing its failure.

Each ``tasks/synth-*`` spec must be released with a passing validity record for exactly
its pinned data, must rebuild byte for byte (the build checks the pin), and must show the
failure its claim names in the claimed direction on a small rebuild with a fast model
(logistic regression on pooled pixels or window summaries; the records come from the
card's deep baselines, ``benchmarks/release/validity.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmark.scoring.evaluate import evaluate
from benchmark.tasks.build import build_task
from benchmark.tasks.registry import BUILTIN_TASKS
from benchmark.tasks.spec import load_spec
from benchmark.tasks.task import Task
from benchmark.tasks.validity import claim_metric, read_validity

SYNTH = [  # generator tasks (the adversarial-transfer task has its own tests)
    p
    for p in sorted(BUILTIN_TASKS.glob("synth-*/*.yaml"))
    if yaml.safe_load(p.read_text(encoding="utf-8"))["source"]["name"] == "synthetic"
]
SMALL_DEVELOPMENT = 900  # samples in the development cohort of the small rebuild


def test_the_issue_task_family_is_present() -> None:
    names = {p.parent.name for p in SYNTH}
    assert names >= {
        "synth-cxr-site-shift",
        "synth-cxr-shortcut",
        "synth-cxr-bias-amplification",
        "synth-cxr-label-noise",
        "synth-path-stain-shift",
        "synth-derm-skin-tone",
        "synth-icu-sensor-drift",
        "synth-icu-modality-dropout",
    }


@pytest.mark.parametrize("path", SYNTH, ids=lambda p: p.parent.name)
def test_released_with_a_passing_record_for_the_pinned_data(path: Path) -> None:
    spec = load_spec(path)
    assert spec.released and spec.validity is not None
    record = read_validity(path)
    assert record is not None, "run benchmarks/release/validity.py"
    assert record.content_sha256 == spec.manifest_sha256
    assert record.claim == spec.validity
    assert record.passed


@pytest.mark.parametrize("path", SYNTH, ids=lambda p: p.parent.name)
def test_rebuild_reproduces_the_release_byte_for_byte(path: Path) -> None:
    spec = load_spec(path)
    task = Task.load(spec.ref, build=True)  # an isolated cache: a fresh build, checked
    assert task.manifest.content_sha256 == spec.manifest_sha256
    if spec.features.array is not None and spec.features.array.masks:
        X, _, _ = task.split("val")
        masks = task.masks("val")
        assert masks.shape == (len(X), *X.shape[2:])
        if spec.source.params["generator"] == "cxr":  # ROIs exactly on positive images
            clean = task.frame("val")["label_clean"] == "lesion"
            assert (masks.any(axis=(1, 2)) == clean.to_numpy()).all()
        else:  # dermatology: every image has its lesion outlined
            assert masks.any(axis=(1, 2)).all()


HASH_SCRIPT = """
import hashlib, sys
from benchmark.tasks.spec import load_spec
from benchmark.tasks.sources.synthetic import generator_module
for path in sys.argv[1:]:
    spec = load_spec(path)
    module = generator_module(spec.source.params["generator"])
    config = dict(spec.source.params["config"])
    config["cohorts"] = [dict(c, n=min(c["n"], 300)) for c in config["cohorts"]]
    batch = module.generate(module.Params.model_validate(config), 7)
    digest = hashlib.sha256()
    for name, array in sorted(batch.arrays().items()):
        digest.update(name.encode() + array.tobytes())
    print(spec.id, digest.hexdigest())
"""


def _generator_digests(env: dict[str, str]) -> str:
    one_per_generator = {}
    for p in SYNTH:
        one_per_generator.setdefault(
            yaml.safe_load(p.read_text())["source"]["params"]["generator"], p
        )
    out = subprocess.run(
        [sys.executable, "-c", HASH_SCRIPT, *map(str, one_per_generator.values())],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def test_generator_bytes_do_not_depend_on_the_cpu_kernels() -> None:
    """Rebuilds must match the pins on other CPUs: switch off NumPy's SIMD dispatch beyond
    its baseline and force OpenBLAS's oldest x86-64 kernels; the bytes must not move."""
    from numpy._core import _multiarray_umath as umath

    dispatch = [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]
    native = _generator_digests({})
    generic = _generator_digests(
        {"NPY_DISABLE_CPU_FEATURES": " ".join(dispatch), "OPENBLAS_CORETYPE": "Prescott"}
    )
    assert native.count("\n") == 4
    assert generic == native


def _small_copy(path: Path, root: Path) -> Path:
    """The spec as a draft with every cohort scaled down to about SMALL_DEVELOPMENT."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw.pop("manifest_sha256", None)
    cohorts = raw["source"]["params"]["config"]["cohorts"]
    scale = SMALL_DEVELOPMENT / cohorts[0]["n"]
    for c in cohorts:
        c["n"] = max(150, round(c["n"] * scale))
    out = root / path.parent.name / path.name
    out.parent.mkdir(parents=True)
    out.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return out


def _features(X: np.ndarray) -> np.ndarray:
    """Images: 4x4 mean-pooled pixels. Series: per channel, the mean of the last and first
    30 steps, their difference and the missing share, with missing values as 0."""
    if X.ndim == 4:
        n, c, h, w = X.shape
        return X.reshape(n, c, h // 4, 4, w // 4, 4).mean(axis=(3, 5)).reshape(n, -1)
    missing = np.isnan(X).mean(axis=2)
    first = np.nan_to_num(np.nanmean(X[..., :30], axis=2))
    last = np.nan_to_num(np.nanmean(X[..., -30:], axis=2))
    return np.hstack([first, last, last - first, missing])


class PooledLogistic:
    """A fast stand-in for the card's baselines: logistic regression on :func:`_features`."""

    def __init__(self, X: np.ndarray, y: np.ndarray) -> None:
        self.pipe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        self.pipe.fit(_features(X), y)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.pipe.predict_proba(_features(X))


@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")
@pytest.mark.parametrize("path", SYNTH, ids=lambda p: p.parent.name)
def test_a_small_rebuild_shows_the_claimed_effect(path: Path, tmp_path: Path) -> None:
    small = _small_copy(path, tmp_path / "tasks")
    spec = load_spec(small)
    built = build_task(spec, small, root=tmp_path / "cache")
    task = Task(spec, built.path, built.manifest)
    X, y, _ = task.split("train")
    model = PooledLogistic(X, y)
    claim = spec.validity
    assert claim is not None
    report = evaluate(model, task, probes=[claim.probe], n_boot=40)
    value = claim_metric(report, claim).value
    assert value is not None
    assert value < 0 if claim.direction == "negative" else value > 0, (claim.describe(), value)
