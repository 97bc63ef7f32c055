"""The corruption suite and the corruption probe (per-cell metrics, mCE, the curve)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from benchmark.cli.tables import report_tables
from benchmark.models.loading import PredictionsFile
from benchmark.perturbations.corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    corrupt,
    for_modality,
    sample_seed,
)
from benchmark.scoring.evaluate import evaluate
from benchmark.scoring.probes.corruption import (
    CorruptionProbe,
    CorruptionReference,
    write_reference,
)
from benchmark.stats.intervals import MIN_SUPPORT
from benchmark.tasks.task import Task
from tests.cli.fits import check_fits
from tests.tasks.test_medmnist import build, fake_root  # noqa: F401  (fixture)


def smooth_images(n: int, channels: int, width: int = 28, seed: int = 0) -> np.ndarray:
    """Blobs on a gradient: structure that blur, noise and resampling all visibly change."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:width, 0:width] / width
    out = np.empty((n, channels, width, width), np.float32)
    for i in range(n):
        cy, cx = rng.uniform(0.3, 0.7, 2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.02)
        for c in range(channels):
            out[i, c] = 0.2 + 0.3 * xx + 0.4 * blob * (1 - 0.2 * c)
    return out


@pytest.mark.parametrize("channels", [1, 3])
def test_every_corruption_is_deterministic_per_image_and_grows_with_severity(
    channels: int,
) -> None:
    images = smooth_images(8, channels)
    ids = [f"id{i}" for i in range(8)]
    before = images.copy()
    names = [n for n, c in CORRUPTIONS.items() if not (c.rgb_only and channels == 1)]
    for name in names:
        out = [corrupt(images, name, s, ids, seed=3) for s in SEVERITIES]
        assert all(o.shape == images.shape and o.dtype == np.float32 for o in out)
        assert all(o.min() >= 0 and o.max() <= 1 for o in out)
        again = corrupt(images[::-1].copy(), name, 3, ids[::-1], seed=3)[::-1]
        assert np.array_equal(out[2], again), f"{name} depends on batch order"
        change = [float(np.abs(o - images).mean()) for o in out]
        assert change[0] > 0, f"{name} severity 1 changes nothing"
        assert change[4] > change[0], f"{name}: severity 5 is no stronger than 1 ({change})"
    assert np.array_equal(images, before)  # inputs untouched
    noisy = [corrupt(images, "gaussian_noise", 3, ids, seed=s) for s in (3, 4)]
    assert not np.array_equal(*noisy)  # the seed matters


def test_seeds_depend_only_on_their_four_inputs() -> None:
    a = sample_seed(1, "jpeg", 2, "x")
    assert a == sample_seed(1, "jpeg", 2, "x")
    assert (
        len(
            {
                a,
                sample_seed(2, "jpeg", 2, "x"),
                sample_seed(1, "jpeg", 3, "x"),
                sample_seed(1, "blur", 2, "x"),
                sample_seed(1, "jpeg", 2, "y"),
            }
        )
        == 5
    )


def test_the_suite_is_chosen_per_modality() -> None:
    assert "stain_shift" in for_modality("pathology", 3)
    assert "stain_shift" not in for_modality("pathology", 1)
    assert "bias_field" in for_modality("radiology", 1)
    assert "bias_field" not in for_modality("dermatology", 3)
    assert all(len(c.levels) == 5 for c in CORRUPTIONS.values())
    families = {c.family for c in CORRUPTIONS.values()}
    assert families >= {"noise", "blur", "digital", "intensity", "stain", "overlay", "occlusion"}


def test_bad_calls_are_refused() -> None:
    images = smooth_images(2, 1)
    with pytest.raises(KeyError, match="unknown corruption"):
        corrupt(images, "rain", 1, ["a", "b"])
    with pytest.raises(ValueError, match="severity"):
        corrupt(images, "jpeg", 6, ["a", "b"])
    with pytest.raises(ValueError, match="needs RGB"):
        corrupt(images, "stain_shift", 1, ["a", "b"])
    with pytest.raises(ValueError, match="sample ids"):
        corrupt(images, "jpeg", 1, ["a"])


class FlatLogistic:
    """A logistic regression on flattened pixels behind the Model contract."""

    def __init__(self, task: Task) -> None:
        X, y, _ = task.split("train")
        self.lr = LogisticRegression(C=0.05, max_iter=300).fit(X.reshape(len(X), -1), y)

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        return self.lr.predict_proba(np.asarray(batch).reshape(len(batch), -1))


PROBE = CorruptionProbe(corruptions=["gaussian_noise", "defocus_blur"], severities=[1, 5])


def test_probe_cells_match_sklearn_on_the_corrupted_images(fake_root: Path) -> None:  # noqa: F811
    task = build("pathmnist-site-shift")
    model = FlatLogistic(task)
    report = evaluate(model, task, probes=["performance", PROBE], n_boot=50)
    threshold = report.threshold.value
    X, y, meta = task.split("id_test")
    ids = meta["sample_id"].tolist()
    for name in ("gaussian_noise", "defocus_blur"):
        for sev in (1, 5):
            score = model.predict_proba(corrupt(X, name, sev, ids, seed=task.spec.seed))[:, 1]
            auroc = report.metric("auroc", "id_test", attribute=name, group=str(sev))
            assert auroc.value == pytest.approx(roc_auc_score(y, score), abs=1e-12)
            patients = meta["patient_id"].to_numpy()
            rarer = min(len(set(patients[y == k])) for k in (0, 1))
            assert auroc.support == rarer  # the rarer class's patients (issue 26)
            if rarer < MIN_SUPPORT["rarer_class"]:
                assert auroc.ci_low is None and auroc.reason.startswith("CI withheld")
            else:
                assert auroc.ci_low <= auroc.value <= auroc.ci_high
            be = report.metric("balanced_error", "id_test", attribute=name, group=str(sev))
            expected = 1 - balanced_accuracy_score(y, score >= threshold)
            assert be.value == pytest.approx(expected, abs=1e-12)
    mce = report.metric("mce", "id_test", probe="corruption")
    assert mce.value is None and "no ERM corruption reference" in mce.reason
    curve = report.probe("corruption").curves[0]
    assert curve.x == [0.0, 1.0, 5.0] and curve.y[0] == 1.0
    text = "".join(str(t.title) for t in report_tables(report))
    assert "Corruptions on id_test" in text


def test_mce_against_a_reference_made_by_the_same_model_is_one(
    fake_root: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    task = build("pathmnist-site-shift")
    model = FlatLogistic(task)
    first = evaluate(model, task, probes=[PROBE], n_boot=40)
    errors: dict[str, dict[str, float]] = {}
    for m in first.probe("corruption").metrics:
        if m.metric == "balanced_error" and m.group is not None:
            errors.setdefault(m.attribute, {})[m.group] = m.value
    clean = first.metric("clean_balanced_error", "id_test").value
    ref = CorruptionReference(
        task=task.spec.ref,
        content_sha256=task.manifest.content_sha256,
        split="id_test",
        n=first.probe("corruption").config["n_used"],
        seed=0,
        baseline={"method": "test"},
        clean=clean,
        errors=errors,
    )
    path = tmp_path / "ref.json"
    write_reference(path, ref)
    probe = CorruptionProbe(
        corruptions=["gaussian_noise", "defocus_blur"], severities=[1, 5], reference=str(path)
    )
    report = evaluate(model, task, probes=[probe], n_boot=40)
    assert report.metric("mce", "id_test").value == pytest.approx(1.0)
    assert report.metric("relative_mce", "id_test").value == pytest.approx(1.0)
    ce = report.metric("ce", "id_test", attribute="gaussian_noise")
    assert ce.ci_low <= 1.0 <= ce.ci_high
    stale = ref.model_copy(update={"content_sha256": "0" * 64})
    write_reference(path, stale)
    report = evaluate(model, task, probes=[probe], n_boot=40)
    assert "made on other data" in report.metric("mce", "id_test").reason


def test_subsampling_is_recorded_and_predictions_files_skip(fake_root: Path) -> None:  # noqa: F811
    task = build("pathmnist-site-shift")
    model = FlatLogistic(task)
    probe = CorruptionProbe(corruptions=["jpeg"], severities=[2], max_samples=5)
    report = evaluate(model, task, probes=[probe], n_boot=40)
    assert report.probe("corruption").config["n_used"] == 5
    assert report.metric("auroc", "id_test", attribute="jpeg", group="2").n == 5
    assert any("5 of" in w for w in report.warnings)
    _, _, meta = task.split("val")
    rows = []
    for split in ("val", "id_test", "ood_test"):
        X, _, meta = task.split(split)
        p = model.predict_proba(X)
        rows += [(sid, *row) for sid, row in zip(meta["sample_id"], p, strict=True)]
    import pandas as pd

    table = pd.DataFrame(rows, columns=["sample_id", "a", "b"]).set_index("sample_id")
    report = evaluate(PredictionsFile(table), task, probes=["performance", "corruption"], n_boot=40)
    assert report.probe("corruption").metrics == []
    assert any("predictions file" in w for w in report.warnings)


def test_a_cnn_baseline_on_pathmnist_gets_the_corruption_table_by_default(
    fake_root: Path,  # noqa: F811
) -> None:
    from baselines import deep

    task = build("pathmnist-site-shift")
    X, y, _ = task.split("train")
    Xv, yv, _ = task.split("val")
    config = deep.DeepConfig(batch_size=32, max_epochs=1, patience=1, num_threads=1)
    net = deep.train_network("image-cnn", X, y, Xv, yv, seed=0, config=config)
    report = evaluate(net, task, n_boot=40)  # the task's own probes, corruption included
    assert [p.name for p in report.probes] == ["performance", "calibration", "shift", "corruption"]
    probe = report.probe("corruption")
    assert probe.config["corruptions"] == for_modality("pathology", 3)
    assert "stain_shift" in probe.config["corruptions"]
    table = report_tables(report)[-1]
    assert table.row_count == len(probe.config["corruptions"])
    assert [c.header for c in table.columns] == [
        "corruption",
        *(f"s{k}" for k in range(1, 6)),
        "CE [CI]",
    ]
    for t in report_tables(report):
        check_fits(t)  # 80 columns: nothing cut


def test_a_single_class_subsample_gives_reasons_not_a_crash(
    fake_root: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    from benchmark.results.report import Report

    task = build("pathmnist-site-shift")
    probe = CorruptionProbe(corruptions=["jpeg"], severities=[1], max_samples=1)
    report = evaluate(FlatLogistic(task), task, probes=[probe], n_boot=40)
    cell = report.metric("auroc", "id_test", attribute="jpeg", group="1")
    assert cell.value is None and "only" in cell.reason
    assert report.probe("corruption").curves == []
    assert any("no robustness curve" in w for w in report.warnings)
    again = Report.load(report.save(tmp_path / "r"))
    assert again.metric("auroc", "id_test", attribute="jpeg", group="1").value is None
