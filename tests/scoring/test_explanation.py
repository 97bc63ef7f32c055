"""The explanation probe end to end on a small shortcut task (32-pixel radiographs with
lesion, rater and marker masks and counterfactual pairs): what it reports, that a stored
report is recomputed from its examples file, the headline (ERM puts more attribution on
the marker than a model for which the marker carries no label information, with a paired
CI that excludes zero), the gradient-free fallback, and the skip reasons."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from baselines import deep
from baselines.decorrelate import spread_shortcuts
from benchmark.errors import MedFailError
from benchmark.models.adapters import as_model
from benchmark.results.report import EXAMPLES_FILE, Report
from benchmark.scoring.compare import compare_runs
from benchmark.scoring.evaluate import evaluate, predict
from benchmark.scoring.probes.base import ScoringContext
from benchmark.scoring.probes.explanation import ExplanationProbe
from benchmark.scoring.rescore import recheck
from benchmark.tasks.cache import ENV_CACHE
from benchmark.tasks.registry import ENV_TASKS_PATH
from benchmark.tasks.task import Task

RELEASED = Path(__file__).parents[2] / "tasks" / "synth-cxr-shortcut" / "1.1.0.yaml"
PROBE = ExplanationProbe(max_samples=96, sanity_images=8, sanity_blocks=3, ig_steps=16)
N_BOOT = 200


def _small_spec() -> str:
    """The released shortcut task, smaller: 32-pixel images, 500 + 2 x 150 rows."""
    spec = yaml.safe_load(RELEASED.read_text())
    spec["id"], spec["version"] = "tiny-shortcut", "1.0.0"
    config = spec["source"]["params"]["config"]
    config["image_size"] = 32
    config["cohorts"][0]["n"], config["cohorts"][1]["n"] = 500, 150
    config["cohorts"][0]["lesion"] = {"contrast": [0.3, 0.5], "size": [2.0, 4.0]}
    config["cohorts"][1]["lesion"] = config["cohorts"][0]["lesion"]
    for key in ("validity", "manifest_sha256"):
        spec.pop(key, None)
    spec["changelog"] = [{"version": "1.0.0", "date": "2026-12-06", "changes": "Test copy."}]
    return yaml.dump(spec, Dumper=_NoAliases, sort_keys=False)


class _NoAliases(yaml.SafeDumper):
    """Specs refuse YAML aliases; shared values are written out in full."""

    def ignore_aliases(self, data: object) -> bool:
        return True


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("tasks")
    (root / "tiny-shortcut").mkdir()
    (root / "tiny-shortcut" / "1.0.0.yaml").write_text(textwrap.dedent(_small_spec()))
    return {ENV_TASKS_PATH: str(root), ENV_CACHE: str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture(autouse=True)
def _use(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@pytest.fixture(scope="module")
def models(env: dict[str, str]) -> tuple[Task, nn.Module, nn.Module]:
    """The task, an ERM CNN and one trained with the marker at one rate in both classes."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        task = Task.load("tiny-shortcut@1.0.0", build=True)
    X, y, _ = task.split("train")
    Xv, yv, _ = task.split("val")
    config = deep.DeepConfig(batch_size=32, max_epochs=6, patience=6, num_threads=2)
    erm = deep.train_network("image-cnn", X, y, Xv, yv, seed=0, config=config)
    Xd = spread_shortcuts(X, task.array("train", "shortcut_masks"), y, 0)
    Xvd = spread_shortcuts(Xv, task.array("val", "shortcut_masks"), yv, 1)
    free = deep.train_network("image-cnn", Xd, y, Xvd, yv, seed=0, config=config)
    return task, erm, free


@pytest.fixture(scope="module")
def reports(models: tuple[Task, nn.Module, nn.Module]) -> dict[str, Report]:
    task, erm, free = models
    return {
        name: evaluate(m, task, probes=["performance", PROBE], n_boot=N_BOOT, name=name)
        for name, m in (("erm", erm), ("free", free))
    }


def _row(report: Report, metric: str, split: str, attribute: str | None):
    return report.metric(metric, split, probe="explanation", attribute=attribute)


def test_the_probe_reports_every_part_with_intervals(reports: dict[str, Report]) -> None:
    r = reports["erm"]
    probe = r.probe("explanation")
    sanity = probe.config["measured"]["sanity"]
    assert any(c["passed"] for c in sanity.values())
    for split in ("id_test", "ood_test"):
        for method in ("gradcam", "integrated_gradients"):
            passed = sanity[method]["passed"]
            for metric in ("saliency_dice", "pointing_game", "relevance_mass", "pixel_auroc"):
                row = _row(r, metric, split, method)
                if passed:
                    assert row.value is not None and row.ci_low is not None, (split, method)
                else:  # a method that fails the sanity check has its alignment withheld
                    assert row.value is None and "failed the sanity check" in row.reason
            for metric in ("saliency_dice_of_ceiling", "trust_rank_correlation"):
                assert (_row(r, metric, split, method).value is not None) == passed
            assert _row(r, "degenerate_maps", split, method).value == 0.0
        ceiling = _row(r, "rater_saliency_dice", split, None)
        assert 0.5 < ceiling.value < 1 and ceiling.ci_low < ceiling.value < ceiling.ci_high
        assert 0 < _row(r, "rater_kappa", split, None).value <= 1
    assert _row(r, "counterfactual_delta_p", "ood_test", None).value is not None
    assert (
        _row(r, "counterfactual_peak_moved", "ood_test", "integrated_gradients").value is not None
    )
    groups = {m.attribute for m in probe.metrics if m.group is not None}
    assert {"gradcam/sex", "gradcam/age_group"} <= groups
    assert any(m.metric == "saliency_dice_gap" for m in probe.metrics)
    measured = probe.config["measured"]
    assert "last Conv2d" in measured["methods"]["gradcam"]
    assert set(sanity) == {"gradcam", "integrated_gradients"}
    assert all(len(c["steps"]) == 3 and c["passed"] in (True, False) for c in sanity.values())
    assert measured["explained"] == {"id_test": 96, "ood_test": 96}
    assert {c.attribute for c in probe.curves} == {"gradcam", "integrated_gradients"}
    assert probe.gallery and probe.gallery[0]["maps"].keys() == {"gradcam", "integrated_gradients"}


def test_a_saved_report_is_recomputed_from_its_examples(
    reports: dict[str, Report], tmp_path: Path
) -> None:
    task = Task.load("tiny-shortcut@1.0.0")
    r = reports["erm"]
    r.save(tmp_path, predictions=True)
    assert (tmp_path / EXAMPLES_FILE).is_file() and list((tmp_path / "gallery").glob("*.png"))
    loaded = Report.load(tmp_path)
    assert recheck(loaded, task.spec, full=True, task=task) == []
    # an edited number is caught
    text = (tmp_path / "report.json").read_text()
    row = _row(r, "rater_saliency_dice", "ood_test", None)
    edited = text.replace(repr(row.value), repr(round(row.value + 0.01, 6)), 1)
    assert edited != text
    (tmp_path / "report.json").write_text(edited)
    problems = recheck(Report.load(tmp_path), task.spec)
    assert any("rater_saliency_dice on ood_test" in p for p in problems)
    # an edited examples file is refused
    (tmp_path / EXAMPLES_FILE).write_bytes((tmp_path / EXAMPLES_FILE).read_bytes() + b"x")
    with pytest.raises(MedFailError, match="does not belong"):
        Report.load(tmp_path)


def test_erm_puts_more_attribution_on_the_marker(reports: dict[str, Report]) -> None:
    """The headline: the shortcut is in the maps. Paired over the same images and
    replicates; ERM minus the marker-decorrelated model, on both test splits, for every
    method that passed the sanity check on both models (one that failed is not compared)."""
    sanity = [r.probe("explanation").config["measured"]["sanity"] for r in reports.values()]
    passed = [m for m in sanity[0] if all(s[m]["passed"] for s in sanity)]
    failed = [m for m in sanity[0] if m not in passed]
    assert passed
    paired = compare_runs({0: reports["erm"]}, {0: reports["free"]})
    for split in ("id_test", "ood_test"):
        found = {
            d.attribute: d
            for d in paired.differences
            if (d.probe, d.metric, d.split) == ("explanation", "shortcut_mass", split)
        }
        assert set(found) == set(passed)  # a method that failed on either side is left out
        assert not set(found) & set(failed)
        for diff in found.values():
            assert diff.ci_low is not None and diff.ci_low > 0, diff


class PredictOnly:
    """A model with ``predict_proba`` only (no torch module to take gradients of)."""

    def __init__(self, module: nn.Module) -> None:
        self.net = module

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(self.net(torch.as_tensor(x)), dim=1).numpy()


def test_a_model_without_gradients_gets_occlusion(models: tuple) -> None:
    task, erm, _ = models
    probe = dataclasses.replace(PROBE, max_samples=24)
    r = evaluate(PredictOnly(erm), task, probes=[probe], n_boot=N_BOOT)
    result = r.probe("explanation")
    assert set(result.config["measured"]["methods"]) == {"occlusion"}
    assert any("no differentiable torch module" in w for w in result.warnings)
    assert result.config["measured"]["sanity"]["occlusion"]["passed"] is None
    assert _row(r, "saliency_dice", "ood_test", "occlusion").value is not None


def test_tasks_without_masks_and_prediction_files_skip_with_a_reason(models: tuple) -> None:
    task, erm, _ = models
    model = as_model(erm)
    preds = predict(model, task, ("val", "id_test", "ood_test"))
    array = task.spec.features.array
    bare = array.model_copy(update={"masks": False, "rater_masks": False, "shortcut_masks": False})
    spec = task.spec.model_copy(
        update={"features": task.spec.features.model_copy(update={"array": bare})}
    )
    ctx = ScoringContext(spec, model, preds, ("id_test", "ood_test"), 0.5, n_boot=N_BOOT, task=task)
    result = PROBE.run(ctx)
    assert result.metrics == [] and "no lesion or shortcut masks" in result.warnings[0]

    class StoredPredictions:
        def predict_ids(self, ids: np.ndarray) -> np.ndarray:
            return np.full((len(ids), 2), 0.5)

    ctx = dataclasses.replace(ctx, spec=task.spec, model=StoredPredictions())
    result = PROBE.run(ctx)
    assert result.metrics == [] and "predictions file" in result.warnings[0]
