"""The adversarial probe (ART): worst case over attacks at the frozen threshold, the
gradient-masking badge, and its skips."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from baselines import deep
from benchmark.cli.tables import report_tables
from benchmark.errors import MedFailError
from benchmark.models.adapters import as_model
from benchmark.results.report import ProbeResult, Report
from benchmark.scoring.evaluate import evaluate
from benchmark.scoring.probes.adversarial import (
    ATTACKS,
    CASCADE,
    FAST_ATTACKS,
    LINF_ATTACKS,
    AdversarialProbe,
    BinaryMarginLoss,
    ThresholdShift,
)
from benchmark.scoring.rescore import recheck
from benchmark.tasks.task import Task
from tests.cli.fits import check_fits
from tests.tasks.test_medmnist import build, fake_root  # noqa: F401  (fixture)

PROBE = AdversarialProbe(
    eps=[0.0, 2 / 255, 8 / 255], l2_eps=[0.5], max_samples=48, square_queries=60
)


class Quantise(nn.Module):
    """A non-differentiable input layer (rounding to 4 levels): its gradient is zero."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * 4) / 4


@pytest.fixture
def trained(fake_root: Path) -> tuple[Task, nn.Module]:  # noqa: F811
    task = build("pathmnist-site-shift")
    X, y, _ = task.split("train")
    Xv, yv, _ = task.split("val")
    config = deep.DeepConfig(batch_size=32, max_epochs=2, patience=2, num_threads=1)
    return task, deep.train_network("image-cnn", X, y, Xv, yv, seed=0, config=config)


def test_the_threshold_shift_makes_argmax_the_frozen_decision() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x = torch.randn(64, 1, 2, 2)
    for t in (0.1, 0.5, 0.83):
        p1 = torch.softmax(net(x), dim=1)[:, 1]
        decision = ThresholdShift(net, t)(x).argmax(dim=1) == 1
        assert torch.equal(decision, p1 >= t)


def test_the_binary_margin_loss_keeps_its_gradient_where_cross_entropy_saturates() -> None:
    z = torch.tensor([[30.0, -30.0], [0.5, 0.2]], requires_grad=True)
    y = torch.tensor([0, 1])
    loss = BinaryMarginLoss()
    loss.reduction = "none"
    values = loss(z, y)
    assert values[0] < 0 < values[1]  # negative when correct, positive when wrong
    assert torch.allclose(values, torch.tensor([-60.0, -0.3]) * torch.tensor([1.0, -1.0]))
    ce_grad = torch.autograd.grad(nn.functional.cross_entropy(z[:1], y[:1]), z)[0]
    margin_grad = torch.autograd.grad(loss(z[:1], y[:1]).sum(), z)[0]
    assert float(ce_grad[0].abs().max()) < 1e-12 < float(margin_grad[0].abs().min())


def _attacked(
    trained: tuple[Task, nn.Module], probe: AdversarialProbe
) -> tuple[Report, ProbeResult]:
    """The report of the trained network under ``probe``, and its adversarial result."""
    task, net = trained
    report = evaluate(net, task, probes=[probe], n_boot=50)
    return report, report.probe("adversarial")


def test_worst_case_over_attacks_and_no_badge_on_a_plain_cnn(
    trained: tuple[Task, nn.Module],
) -> None:
    report, probe = _attacked(trained, PROBE)
    assert probe.config["gradient_masking"] == []
    table = report_tables(report)[-1]
    # one row per eps (3 L-inf, L2 0 and 0.5) and metric (4), the badge in the caption
    assert table.row_count == (3 + 2) * 4 and "no sign of gradient masking" in str(table.caption)
    check_fits(table)  # 80 columns: nothing cut
    assert probe.config["n_used"] == 48 and probe.config["attacks"] == list(ATTACKS)
    for eps in ("0", "0.00784314", "0.0313725"):
        robust = report.metric("robust_accuracy", "id_test", group=eps).value
        per_attack = [
            report.metric("accuracy", "id_test", attribute=a, group=eps).value for a in LINF_ATTACKS
        ]
        assert robust <= min(per_attack) + 1e-12  # worst case per example
    clean = report.metric("robust_accuracy", "id_test", group="0")
    assert clean.n == 48
    assert report.metric("attack_success_rate", "id_test", group="0").value == 0.0
    assert report.metric("robust_accuracy", "id_test", group="0.0313725").value <= clean.value


def test_the_badge_fires_on_a_quantising_input_layer(trained: tuple[Task, nn.Module]) -> None:
    task, net = trained
    masked = nn.Sequential(Quantise(), net).eval()
    report = evaluate(masked, task, probes=[PROBE], n_boot=40)
    reasons = report.probe("adversarial").config["gradient_masking"]
    assert "input gradients are exactly zero" in reasons
    assert any("GRADIENT MASKING" in w for w in report.warnings)
    assert "GRADIENT MASKING" in str(report_tables(report)[-1].caption)


def test_a_wavelet_sanitiser_is_caught_masking_and_measured_with_bpda(
    trained: tuple[Task, nn.Module],
) -> None:
    from baselines.deep import wavelet_sanitised

    task, net = trained
    probe = AdversarialProbe(
        eps=[0.0, 8 / 255], l2_eps=[], attacks=list(LINF_ATTACKS), max_samples=32, square_queries=30
    )
    masked = evaluate(wavelet_sanitised(net), task, probes=[probe], n_boot=40)
    reasons = masked.probe("adversarial").config["gradient_masking"]
    assert "input gradients are exactly zero" in reasons
    honest = evaluate(wavelet_sanitised(net, "bpda"), task, probes=[probe], n_boot=40)
    assert (
        "input gradients are exactly zero"
        not in honest.probe("adversarial").config["gradient_masking"]
    )
    eps = f"{8 / 255:.6g}"
    pgd = {
        name: r.metric("accuracy", "id_test", attribute="pgd", group=eps).value
        for name, r in (("masked", masked), ("honest", honest))
    }
    assert pgd["honest"] < pgd["masked"]  # the masked gradient hid the sanitiser's weakness


def test_models_without_gradients_get_black_box_attacks_only(
    trained: tuple[Task, nn.Module],
) -> None:
    task, net = trained

    class Opaque:
        def predict_proba(self, batch: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return torch.softmax(net(torch.as_tensor(batch)), dim=1).double().numpy()

    report = evaluate(Opaque(), task, probes=[PROBE], n_boot=40)
    assert report.probe("adversarial").config["attacks"] == ["square"]
    assert any("black-box attacks only" in w for w in report.warnings)


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_pgd_examples_stay_in_the_ball_and_raise_the_loss(norm: str) -> None:
    from benchmark.perturbations.attacks import pgd_batch

    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    x = torch.rand(32, 1, 4, 4)
    y = torch.arange(32) % 2
    eps = 4 / 255 if norm == "inf" else 0.1
    net.train()

    def attack(restarts: int = 1) -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        return pgd_batch(net, x, y, eps, steps=5, norm=norm, restarts=restarts, generator=g)

    adv = attack()
    assert net.training  # mode restored
    delta = (adv - x).flatten(1)
    size = delta.abs().max(dim=1).values if norm == "inf" else delta.norm(dim=1)
    assert float(size.max()) <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    ce = nn.functional.cross_entropy
    with torch.no_grad():
        assert float(ce(net(adv), y)) > float(ce(net(x), y))
    assert torch.equal(adv, attack())  # seeded by the generator it is given
    with torch.no_grad():  # restarts keep each example's best: never a smaller margin
        z1, z3 = net(adv), net(attack(restarts=3))
    margin = lambda z: z.gather(1, (1 - y)[:, None]) - z.gather(1, y[:, None])  # noqa: E731
    assert bool((margin(z3) >= margin(z1) - 1e-6).all())


def test_the_probe_keeps_worst_case_scores_for_paired_comparison(
    trained: tuple[Task, nn.Module],
) -> None:
    from benchmark.scoring.compare import compare
    from benchmark.scoring.probes.adversarial import attacked_split

    task, net = trained
    probe = AdversarialProbe(
        eps=[0.0, 4 / 255], l2_eps=[0.5], attacks=["pgd", "pgd-l2"], max_samples=40
    )
    seen: list[tuple[str, int, int]] = []
    report = evaluate(net, task, probes=[probe], n_boot=50, detail=lambda *a: seen.append(a))
    frame = report.predictions
    assert frame is not None
    linf, l2 = attacked_split("id_test", "Linf", 4 / 255), attacked_split("id_test", "L2", 0.5)
    assert linf == "id_test@linf=4/255" and l2 == "id_test@l2=0.5"
    worst = frame[frame.split == linf]
    assert len(worst) == 40
    robust = report.metric("robust_accuracy", "id_test", group=f"{4 / 255:.6g}")
    threshold = report.threshold.value
    correct = (worst.score >= threshold) == (worst.y_true == 1)
    assert robust.value == pytest.approx(correct.mean())
    l2_rows = [m for m in report.probe("adversarial").metrics if m.attribute == "L2"]
    assert {m.group for m in l2_rows} == {"0", "0.5"}
    assert seen and seen[-1][1] == seen[-1][2] == 2 * 40  # progress: every attacked image
    assert recheck(report, task.spec, full=True) == []  # robust rows recomputed, CIs too
    forged = [m.model_copy(update={"value": 1.0}) if m is robust else m for m in probe_rows(report)]
    tampered = report.model_copy(
        update={"probes": [p.model_copy(update={"metrics": forged}) for p in report.probes]}
    )
    assert recheck(tampered, task.spec) == [
        f"adversarial.robust_accuracy on id_test ({4 / 255:.6g}): stored 1.0, "
        f"recomputed {robust.value!r}"
    ]
    paired = compare(report, report)  # a model against itself: zero difference
    acc = [d for d in paired.differences if d.split == linf and d.metric == "accuracy"]
    assert acc and acc[0].a == pytest.approx(robust.value) and acc[0].diff == 0


def probe_rows(report: Report) -> list:
    return report.probe("adversarial").metrics


def test_pgd_adversarial_training_is_a_method_for_image_tasks_only(
    trained: tuple[Task, nn.Module],
) -> None:
    from baselines.methods import families, methods_for

    task, erm = trained
    assert "pgd-at" in methods_for(task)
    X, y, _ = task.split("train")
    Xv, yv, _ = task.split("val")
    config = deep.DeepConfig(batch_size=32, max_epochs=2, patience=2, num_threads=1)
    at = deep.train_network("image-cnn", X, y, Xv, yv, seed=0, method="pgd-at", config=config)
    again = deep.train_network("image-cnn", X, y, Xv, yv, seed=0, method="pgd-at", config=config)

    def same(a: nn.Module, b: nn.Module) -> bool:
        pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
        return all(torch.equal(u, v) for u, v in pairs)

    assert same(at, again)  # bitwise reproducible on CPU
    assert not same(at, erm)
    with pytest.raises(ValueError, match="pgd-at trains image models"):
        deep.train_network("series-transformer", X[:, 0], y, Xv[:, 0], yv, seed=0, method="pgd-at")
    assert families("pgd-at", task)[0].name == "cnn"


FAST = AdversarialProbe(
    preset="fast",
    attacks=list(FAST_ATTACKS),
    eps=[0.0, 2 / 255, 8 / 255],
    l2_eps=[0.5],
    max_samples=48,
    square_queries=30,
)


def test_the_grid_attack_keeps_each_radius_and_equals_art_fgsm() -> None:
    from art.attacks.evasion import FastGradientMethod
    from art.estimators.classification import PyTorchClassifier

    from benchmark.perturbations.attacks import pgd_grid

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2)).eval()
    x = np.random.default_rng(0).random((40, 1, 4, 4), dtype=np.float32)
    y = (np.arange(40) % 2).astype(np.int64)
    radii = [1 / 255, 4 / 255, 0.2]
    for norm in ("inf", "2"):
        adv = pgd_grid(net, x, y, radii, steps=5, norm=norm, seed=3, batch_size=16)
        assert adv.shape == (3, *x.shape) and adv.min() >= 0 and adv.max() <= 1
        for r, a in zip(radii, adv, strict=True):
            delta = (a - x).reshape(len(x), -1)
            size = np.abs(delta).max(axis=1) if norm == "inf" else np.linalg.norm(delta, axis=1)
            assert size.max() <= r + 1e-6
        again = pgd_grid(net, x, y, radii, steps=5, norm=norm, seed=3, batch_size=16)
        assert np.array_equal(adv, again)  # seeded
    fgsm = pgd_grid(net, x, y, [4 / 255], fgsm=True)[0]
    art = PyTorchClassifier(net, nn.CrossEntropyLoss(), (1, 4, 4), 2, clip_values=(0.0, 1.0))
    expected = FastGradientMethod(art, eps=4 / 255).generate(x, y=np.eye(2)[y])
    with torch.no_grad():
        correct = net(torch.as_tensor(x)).argmax(dim=1).numpy() == y
    assert correct.any() and np.allclose(fgsm[correct], expected[correct], atol=1e-6)
    assert np.array_equal(fgsm[~correct], x[~correct])  # already wrong: not attacked


def test_the_grid_attack_drops_examples_once_flipped() -> None:
    """Early exit: each forward pass holds only examples not yet flipped, and an example
    that left is flipped at the point returned for it."""
    from benchmark.perturbations.attacks import pgd_grid

    torch.manual_seed(1)
    sizes: list[int] = []

    class Counting(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            sizes.append(len(z))
            return self.net(z)

    net = Counting().eval()
    x = np.random.default_rng(1).random((32, 1, 4, 4), dtype=np.float32)
    y = (np.arange(32) % 2).astype(np.int64)
    adv = pgd_grid(net, x, y, [0.05, 0.5], steps=8, batch_size=32)
    assert sizes[0] == 64 and sizes == sorted(sizes, reverse=True)  # both radii, then fewer
    last = sizes[-1]
    with torch.no_grad():
        flipped = np.stack([net(torch.as_tensor(a)).argmax(dim=1).numpy() != y for a in adv])
    assert flipped[1].mean() > 0.5 and last < 64  # the large radius flips most, and they left
    assert (~flipped).sum() <= last  # an example still correct never left the attack


def test_the_fast_preset_scores_the_cascade_and_keeps_the_badge(
    trained: tuple[Task, nn.Module],
) -> None:
    task, net = trained
    report, probe = _attacked(trained, FAST)
    assert probe.config["preset"] == "fast" and probe.config["gradient_masking"] == []
    assert "PGD left correct" in probe.config["square_on"]
    for eps in ("0.00784314", "0.0313725"):
        acc = {
            a: report.metric("accuracy", "id_test", attribute=a, group=eps).value
            for a in ("fgsm", "pgd", CASCADE)
        }
        assert acc[CASCADE] <= acc["pgd"]  # Square only adds flips to PGD's
        robust = report.metric("robust_accuracy", "id_test", group=eps).value
        assert robust <= min(acc.values()) + 1e-12
    assert report.metric("robust_accuracy", "id_test", attribute="L2", group="0.5").n == 48
    masked = evaluate(nn.Sequential(Quantise(), net).eval(), task, probes=[FAST], n_boot=40)
    reasons = masked.probe("adversarial").config["gradient_masking"]
    assert "input gradients are exactly zero" in reasons
    assert any(r.startswith("square breaks") for r in reasons)  # black box beat white box
    assert recheck(report, task.spec, full=True) == []


def test_presets_are_named_and_checked(trained: tuple[Task, nn.Module]) -> None:
    from benchmark.scoring.probes import make_probe
    from benchmark.scoring.probes.adversarial_settings import PRESETS

    task, net = trained
    fast = make_probe("adversarial", "fast")
    assert fast.config() == dataclasses.asdict(PRESETS["fast"])
    assert make_probe("performance", "fast").config() == make_probe("performance").config()
    with pytest.raises(MedFailError, match="unknown probe preset 'quick'; presets: full, fast"):
        evaluate(net, task, n_boot=40, preset="quick")
    bad = AdversarialProbe(preset="fast", attacks=["apgd-ce"])
    with pytest.raises(MedFailError, match="the fast preset's attacks are"):
        evaluate(net, task, probes=[bad], n_boot=40)
    alone = AdversarialProbe(preset="fast", attacks=["square"])
    with pytest.raises(MedFailError, match="add pgd to its attacks"):
        evaluate(net, task, probes=[alone], n_boot=40)


def test_boards_rank_either_preset_as_the_default_protocol(
    trained: tuple[Task, nn.Module],
) -> None:
    from benchmark.boards.entries import _has_config
    from benchmark.scoring.probes import default_configs, make_probe

    task, net = trained
    report = evaluate(net, task, probes=[make_probe("adversarial", "fast")], n_boot=40)
    stored = report.probe("adversarial").config
    full, fast = default_configs("adversarial")
    assert full["preset"] == "full" and fast["preset"] == "fast"
    assert _has_config(stored, fast, task.spec) and not _has_config(stored, full, task.spec)
    tuned = stored | {"square_queries": 10}
    assert not any(_has_config(tuned, c, task.spec) for c in (full, fast))
    before_presets = {k: v for k, v in full.items() if k != "preset"}  # an older report
    assert _has_config(before_presets, full, task.spec)
    assert not _has_config(before_presets, fast, task.spec)


def test_robust_rows_recompute_at_a_radius_that_rounds_badly(
    trained: tuple[Task, nn.Module],
) -> None:
    """10.015/255 prints as 10.02/255 in the split name and 0.0392745 as the row's group:
    the replay takes the radius from the config, not from either string."""
    task, net = trained
    probe = AdversarialProbe(
        preset="fast", attacks=["pgd"], eps=[0.0, 10.015 / 255], l2_eps=[], max_samples=24
    )
    report = evaluate(net, task, probes=[probe], n_boot=40)
    assert recheck(report, task.spec, full=True) == []


def test_a_model_it_cannot_attack_keeps_the_boards_protocol(
    trained: tuple[Task, nn.Module],
) -> None:
    """A predictions file (a post-processor's scores) skips the attacks; its entry is still
    ranked beside attacked ones: the skip records the split, and a run's descriptions of
    itself are findings, not protocol."""
    from benchmark.boards.entries import protocol
    from benchmark.scoring.evaluate import predict
    from benchmark.scoring.probes import make_probe
    from benchmark.scoring.probes.base import ScoringContext

    task, net = trained
    probe = make_probe("adversarial", "fast")
    attacked = evaluate(net, task, probes=["performance", probe], n_boot=40)
    preds = predict(as_model(net), task, ("val", "id_test", "ood_test"))

    class StoredPredictions:
        def predict_ids(self, ids: np.ndarray) -> np.ndarray:
            return np.full((len(ids), 2), 0.5)

    ctx = ScoringContext(task.spec, StoredPredictions(), preds, ("id_test", "ood_test"), 0.5,
                         n_boot=40, task=task)  # fmt: skip
    skipped = probe.run(ctx)
    assert skipped.metrics == [] and "predictions file" in skipped.warnings[0]
    stored = attacked.model_copy(update={"probes": [attacked.probes[0], skipped]})
    assert protocol(stored) == protocol(attacked)
