"""Array tasks (images, series) in the task format: spec, build, Task, scoring, release."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn

from benchmark.errors import BuildError, ManifestMismatchError, SpecError
from benchmark.scoring.evaluate import evaluate
from benchmark.tasks.build import build_task, pin_task
from benchmark.tasks.registry import ENV_TASKS_PATH
from benchmark.tasks.spec import ValidityClaim, load_spec, spec_from_text
from benchmark.tasks.synth import icu
from benchmark.tasks.task import Task
from benchmark.tasks.validity import ValidityRecord, outcome, validity_path, write_validity

ICU_SPEC = """\
id: tiny-icu
version: 1.0.0
title: Tiny telemetry task
summary: Small ICU windows made by the tests.
failure: Sensor drift at site B.
modality: remote-monitoring
taxonomy: [data/sensor-drift]
source:
  name: synthetic
  params:
    generator: icu
    config:
      window: 24
      cohorts:
        - {{site: a, n: {n_a}, prevalence: 0.4, effect: 2.0}}
        - {{site: b, n: 120, prevalence: 0.4, effect: 2.0, drift: {{spo2: {{offset: -4}}}}}}
seed: 11
label:
  name: det
  description: Deterioration.
  classes: [stable, deteriorating]
  positive: deteriorating
  rule: {{kind: column, column: label, mapping: {{stable: stable, deteriorating: deteriorating}}}}
features:
  array: {{kind: series, channels: [hr, spo2, rr, map, temp]}}
attributes:
  sex: {{column: sex, reference: F}}
annotations: [drift, label_clean]
sample_id: sample_id
patient_id: patient_id
site: site
splits:
  domains:
    home: {{column: site, values: [a]}}
    away: {{column: site, values: [b]}}
  train: {{domain: home, fraction: 0.6}}
  val: {{domain: home, fraction: 0.2}}
  id_test: {{domain: home, fraction: 0.2}}
  ood_test: {{domain: away, fraction: 1.0}}
probes: [performance, fairness, shift]
shard_rows: {shard_rows}
{validity}license: {{data: CC0-1.0}}
citations: [{{text: Made by the MedFail tests.}}]
changelog:
  - {{version: 1.0.0, date: 2026-11-23, changes: First.}}
"""
CLAIM = """\
validity:
  probe: shift
  metric: ood_minus_id_auroc
  direction: negative
  family: transformer
"""


def write_icu(root: Path, *, n_a: int = 200, shard_rows: int = 1000, claim: bool = False) -> Path:
    folder = root / "tiny-icu"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "1.0.0.yaml"
    text = ICU_SPEC.format(n_a=n_a, shard_rows=shard_rows, validity=CLAIM if claim else "")
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def icu_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = write_icu(tmp_path / "tasks")
    monkeypatch.setenv(ENV_TASKS_PATH, str(tmp_path / "tasks"))
    return path


def generator_output(spec_path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """What the generator gives under the seed the build derives from the task seed."""
    spec = load_spec(spec_path)
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(0,)))
    params = icu.Params.model_validate(spec.source.params["config"])
    batch = icu.generate(params, int(rng.integers(2**63)))
    return batch.frame, batch.inputs


def test_series_task_rows_match_the_generator(icu_spec: Path) -> None:
    build_task(load_spec(icu_spec), icu_spec)
    task = Task.load("tiny-icu")
    frame, inputs = generator_output(icu_spec)
    row_of = {sid: i for i, sid in enumerate(frame["sample_id"])}
    seen = 0
    for split in task.splits:
        X, y, meta = task.split(split)
        assert X.dtype == np.float32 and X.shape[1:] == (5, 24)
        rows = [row_of[s] for s in meta["sample_id"]]
        np.testing.assert_array_equal(X, inputs[rows])  # row i of X is meta's sample i
        classes = frame["label"].to_numpy()[rows]
        assert (np.array(task.spec.label.classes)[y] == classes).all()
        annotated = split in ("id_test", "ood_test")  # never handed out with training data
        assert ("label_clean" in meta.columns) == annotated
        if annotated:
            assert list(meta.columns[-2:]) == ["drift", "label_clean"]
        seen += len(X)
    assert seen == len(frame)
    with pytest.raises(KeyError, match="no array 'masks'"):
        task.masks("train")


def test_array_shards_follow_the_table_shards(icu_spec: Path, tmp_path: Path) -> None:
    path = write_icu(tmp_path / "sharded", shard_rows=50)
    whole = build_task(load_spec(icu_spec), icu_spec, root=tmp_path / "c1")
    sharded = build_task(load_spec(path), path, root=tmp_path / "c2")
    npy = sorted(n for n in sharded.manifest.files if n.startswith("data/train-"))
    assert len(npy) == 6 and all(n.endswith((".parquet", ".inputs.npy")) for n in npy)
    a = Task(load_spec(icu_spec), whole.path, whole.manifest)
    b = Task(load_spec(path), sharded.path, sharded.manifest)
    np.testing.assert_array_equal(a.split("train")[0], b.split("train")[0])


def test_series_build_is_byte_identical_and_verified(icu_spec: Path, tmp_path: Path) -> None:
    spec = load_spec(icu_spec)
    one = build_task(spec, icu_spec, root=tmp_path / "one")
    two = build_task(spec, icu_spec, root=tmp_path / "two")
    assert one.manifest.files == two.manifest.files
    assert one.manifest.content_sha256 == two.manifest.content_sha256
    victim = one.path / "data" / "ood_test-00000-of-00001.inputs.npy"
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the last value
    victim.write_bytes(bytes(data))
    with pytest.raises(ManifestMismatchError, match=r"inputs\.npy"):
        Task.load("tiny-icu", root=tmp_path / "one")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            (
                "array: {kind: series, channels: [hr, spo2, rr, map, temp]}",
                "array: {kind: series, channels: [hr, spo2, rr, map, temp]}\n  numeric: [age]",
            ),
            "takes the array alone",
        ),
        (
            ("channels: [hr, spo2, rr, map, temp]}", "channels: [hr, spo2], masks: true}"),
            "a series task has none",
        ),
        (("annotations: [drift, label_clean]", "annotations: [drift, site]"), "reserved"),
        (("direction: negative", "direction: negative\n  split: ood_val"), "not a split"),
        (
            ("direction: negative", "direction: negative\n  attribute: sex\n  group: F"),
            "reference group",
        ),
    ],
)
def test_array_spec_errors_name_the_problem(edit: tuple[str, str], message: str) -> None:
    text = textwrap.dedent(ICU_SPEC.format(n_a=10, shard_rows=10, validity=CLAIM))
    assert edit[0] in text
    with pytest.raises(SpecError, match=message):
        spec_from_text(text.replace(*edit))


def test_generator_params_are_validated_with_the_field_path(tmp_path: Path) -> None:
    path = write_icu(tmp_path)
    path.write_text(path.read_text().replace("effect: 2.0}", "effect: -1}", 1))
    spec = load_spec(path)
    with pytest.raises(SpecError, match=r"source.params.config: cohorts.0.effect"):
        build_task(spec, path, root=tmp_path / "cache")


def test_channel_count_mismatch_is_a_build_error(tmp_path: Path) -> None:
    path = write_icu(tmp_path)
    path.write_text(
        path.read_text().replace("channels: [hr, spo2, rr, map, temp]", "channels: [hr]")
    )
    with pytest.raises(BuildError, match="5 channels"):
        build_task(load_spec(path), path, root=tmp_path / "cache")


class MeanSpO2(nn.Module):
    """Logits from the window's mean SpO2 (low = deteriorating); NaN-safe."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spo2 = torch.nan_to_num(x[:, 1], nan=97.0).mean(dim=1)
        z = (96.0 - spo2) / 2
        return torch.stack([-z, z], dim=1)


def test_evaluate_scores_array_tasks_and_stored_predictions(icu_spec: Path, tmp_path: Path) -> None:
    build_task(load_spec(icu_spec), icu_spec)
    task = Task.load("tiny-icu")
    report = evaluate(MeanSpO2(), task, n_boot=50)
    drop = report.metric("ood_minus_id_auroc", "ood_test", probe="shift")
    assert drop.value is not None
    frame = report.predictions
    assert frame is not None and set(frame["split"]) == set(task.splits) - {"train"}
    # the same probabilities, scored from a predictions file keyed by sample id
    path = tmp_path / "preds.parquet"
    frame[["sample_id", "score"]].to_parquet(path)
    again = evaluate(f"predictions:{path}", task, n_boot=50)
    assert again.metric("auroc", "id_test", probe="performance").value == pytest.approx(
        report.metric("auroc", "id_test", probe="performance").value
    )


def test_pin_refuses_a_claim_without_a_passing_record(tmp_path: Path) -> None:
    path = write_icu(tmp_path / "tasks", claim=True)
    root = tmp_path / "cache"
    with pytest.raises(SpecError, match="no validity record"):
        pin_task(path, root=root)
    assert load_spec(path).manifest_sha256 is None  # still a draft
    spec = load_spec(path)
    built = build_task(spec, path, root=root)
    task = Task(spec, built.path, built.manifest)
    report = evaluate(MeanSpO2(), task, n_boot=50)
    result = outcome(report, spec.validity, seed=0)
    record = ValidityRecord(
        task=spec.id,
        version=spec.version,
        content_sha256=built.manifest.content_sha256,
        claim=spec.validity,
        n_boot=50,
        seeds=[result.model_copy(update={"passed": False})],
        medfail_version="test",
        created_at="2026-11-23",
    )
    write_validity(path, record)
    with pytest.raises(SpecError, match="does not show the claimed failure"):
        pin_task(path, root=root)
    write_validity(path, record.model_copy(update={"content_sha256": "0" * 64}))
    with pytest.raises(SpecError, match="for other data"):
        pin_task(path, root=root)
    passing = record.model_copy(update={"seeds": [result.model_copy(update={"passed": True})]})
    write_validity(path, passing)
    digest = pin_task(path, root=root)
    assert digest == built.manifest.content_sha256
    assert "the failure is **shown**" in Task.load("tiny-icu", root=root).card
    saved = json.loads(validity_path(path).read_text())
    assert saved["content_sha256"] == digest


def test_outcome_reads_the_claimed_side_of_zero(icu_spec: Path) -> None:
    build_task(load_spec(icu_spec), icu_spec)
    task = Task.load("tiny-icu")
    report = evaluate(MeanSpO2(), task, n_boot=100, interval_method="percentile")  # no withholding
    neg = ValidityClaim(
        probe="shift", metric="ood_minus_id_auroc", direction="negative", family="transformer"
    )
    pos = neg.model_copy(update={"direction": "positive"})
    m = report.metric("ood_minus_id_auroc", "ood_test", probe="shift")
    assert m.ci_low is not None and m.ci_high is not None
    assert outcome(report, neg, 0).passed == (m.ci_high < 0)
    assert outcome(report, pos, 0).passed == (m.ci_low > 0)
    assert not (outcome(report, neg, 0).passed and outcome(report, pos, 0).passed)


def test_baselines_run_trains_the_transformer_and_its_file_reproduces(
    icu_spec: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from benchmark.cli import app
    from benchmark.results.report import Report

    out = tmp_path / "subs"
    args = ["baselines", "run", "--task", "tiny-icu", "--method", "erm", "--seeds", "0"]
    result = CliRunner().invoke(app, [*args, "--n-boot", "40", "--out", str(out)])
    assert result.exit_code == 0, result.output
    seed_dir = out / "tiny-icu@1.0.0" / "erm-transformer" / "seed-0"
    meta = yaml.safe_load((seed_dir.parent / "metadata.yaml").read_text())
    assert meta["model"] == "series-transformer" and meta["config"]["arch"] == meta["model"]
    saved = Report.load(seed_dir)
    again = evaluate(f"safetensors:{seed_dir / 'model.safetensors'}", "tiny-icu", n_boot=40)
    for split in ("id_test", "ood_test"):
        want = saved.metric("auroc", split, probe="performance").value
        assert again.metric("auroc", split, probe="performance").value == want
    bad = CliRunner().invoke(app, [*args, "--family", "cnn", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "unknown model family 'cnn'" in str(bad.exception or bad.output)


def test_label_noise_in_a_group_no_sample_has_is_a_build_error(tmp_path: Path) -> None:
    path = write_icu(tmp_path)
    text = path.read_text().replace(
        "effect: 2.0}", "effect: 2.0, label_noise: {fnr: 0.3, only: {sex: female}}}", 1
    )
    path.write_text(text)
    with pytest.raises(BuildError, match=r"no sample has sex='female'; values: \['F', 'M'\]"):
        build_task(load_spec(path), path, root=tmp_path / "cache")


def test_a_claim_on_a_missing_metric_fails_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from baselines import validity
    from baselines.methods import Family

    path = write_icu(tmp_path / "tasks", claim=True)
    path.write_text(path.read_text().replace("metric: ood_minus_id_auroc", "metric: ood_auroc"))
    monkeypatch.setenv(ENV_TASKS_PATH, str(tmp_path / "tasks"))

    def refuse(*args: object) -> Path:
        raise AssertionError("trained despite a bad claim")

    monkeypatch.setattr(validity, "families", lambda *a: [Family("transformer", {}, refuse)])
    with pytest.raises(SpecError, match=r"validity names no report row.*ood_minus_id_auroc"):
        validity.check("tiny-icu", n_boot=40)
