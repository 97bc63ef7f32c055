"""Adversarial robustness through adversarial-robustness-toolbox (ART), at the frozen threshold.

The attack's goal is the clinically meaningful flip: the decision ``p >= t`` at the
threshold ``t`` frozen on ``val``, not the argmax. The model is wrapped so that its argmax
*is* that decision (the class-1 logit is shifted by ``-logit(t)``), and ART's untargeted
attacks run on the wrapper with the true labels.

Per ``eps`` (L-inf, intensity units of images in [0, 1]; rows with ``group = eps``):
``robust_accuracy`` (correct under every attack run: the per-example worst case),
``robust_auroc`` (each example's worst score over the attacks: the lowest for a positive,
the highest for a negative), ``robust_f1``, ``robust_sensitivity`` at the frozen threshold,
and ``attack_success_rate`` (share of examples correct on clean inputs that some attack
flips). ``accuracy`` per attack has ``attribute = <attack>``. Everything is bootstrapped on
the same resamples as the clean split.

Attacks: FGSM, PGD (L-inf, ``pgd_steps`` steps of eps/4, ``restarts`` random starts),
APGD with cross-entropy and APGD with the binary margin loss (:class:`BinaryMarginLoss`)
need a differentiable torch module; Square (black-box, query-based) runs on any model that
predicts. The report's config names the ensemble run. A predictions file skips the probe.
The **gradient-masking badge** fires, with its reasons, when Square beats the gradient
attacks, FGSM beats the iterative ones, robust accuracy rises with eps, the input
gradients are zero or NaN, or the forward pass is not deterministic.

Not yet here (issue 7 continues): PGD-L2, AutoAttack for 3+ classes, published
adversarial test sets, adversarial training and the speed benchmark.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmark import metrics
from benchmark.errors import MedFailError
from benchmark.probes.base import (
    BatchFn,
    Probe,
    ScoringContext,
    bootstrap,
    class_counts_reason,
    emit,
    image_sample,
    rerun_blocker,
    split_seed,
)
from benchmark.report import ProbeResult
from benchmark.stats import GroupedScorer, ratio

DEFAULT_EPS = [0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255]
ATTACKS = ("fgsm", "pgd", "apgd-ce", "apgd-margin", "square")
GRADIENT_ATTACKS = ("fgsm", "pgd", "apgd-ce", "apgd-margin")
EPS_METRICS = [
    "robust_accuracy",
    "robust_auroc",
    "robust_f1",
    "robust_sensitivity",
    "attack_success_rate",
]


class BinaryMarginLoss(nn.Module):
    """z_o - z_y, the logit margin: the binary stand-in for APGD's DLR loss, which reads a
    third logit and fails on two classes.

    Cross-entropy's gradient vanishes on saturated logits; the margin's does not. It is not
    normalised: any scale-invariant function of two logits is constant along z_1 = -z_0,
    where binary networks saturate, so its gradient would vanish there too; and L-inf steps
    follow the gradient's sign, so the loss scale does not change them. ``reduction`` as in
    torch losses (ART sets it).
    """

    def __init__(self) -> None:
        super().__init__()
        self.reduction = "mean"

    def forward(self, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.ndim == 2:  # one-hot labels
            target = target.argmax(dim=1)
        target = target.long()
        zy = z.gather(1, target[:, None])[:, 0]
        zo = z.gather(1, (1 - target)[:, None])[:, 0]
        loss = zo - zy
        if self.reduction == "mean":
            return loss.mean()
        return loss.sum() if self.reduction == "sum" else loss


def decision_logit(threshold: float) -> float:
    """logit(t), with t kept inside (0, 1): p1 >= t  <=>  z1 - z0 >= logit(t)."""
    t = min(max(threshold, 1e-6), 1 - 1e-6)
    return math.log(t / (1 - t))


class ThresholdShift(nn.Module):
    """Logits whose argmax is the decision ``p1 >= t`` of the wrapped binary module."""

    def __init__(self, module: nn.Module, threshold: float) -> None:
        super().__init__()
        self.module = module
        self.register_buffer("shift", torch.tensor([0.0, -decision_logit(threshold)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x) + self.shift


@contextmanager
def _numpy_seed(seed: int) -> Iterator[None]:
    """ART draws random starts from NumPy's global generator: seed it, then restore it."""
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)


def _eps_metrics(
    y: np.ndarray, worst: np.ndarray, flipped: np.ndarray, threshold: float
) -> BatchFn:
    """Replicate weights (b, n) -> EPS_METRICS columns, from worst-case scores per example."""
    scorer = GroupedScorer(y, worst, threshold)
    was_correct = ~flipped[0]  # row 0: correct on clean inputs
    broken = flipped[1]

    def fn(w: np.ndarray) -> np.ndarray:
        conf, auroc = scorer.score_batch(w)
        wf = np.asarray(w, dtype=np.float64)
        success = ratio(wf @ (was_correct & broken), wf @ was_correct)
        return np.column_stack(
            [
                conf.accuracy[:, 0],
                auroc[:, 0],
                metrics.confusion_f1(conf.tp, conf.fp, conf.fn)[:, 0],
                ratio(conf.tp, conf.tp + conf.fn)[:, 0],
                success,
            ]
        )

    return fn


@dataclass
class AdversarialProbe(Probe):
    eps: list[float] = field(default_factory=lambda: list(DEFAULT_EPS))
    attacks: list[str] = field(default_factory=lambda: list(ATTACKS))
    pgd_steps: int = 10
    apgd_steps: int = 20
    restarts: int = 1
    square_queries: int = 200
    split: str | None = None  # default: id_test, else ood_test
    max_samples: int | None = 200
    batch_size: int = 64

    name = "adversarial"

    def run(self, ctx: ScoringContext) -> ProbeResult:
        blocker = rerun_blocker(ctx, "attacked images")
        if blocker is not None:
            return self.skip(blocker)
        unknown = sorted(set(self.attacks) - set(ATTACKS))
        if unknown or any(e < 0 for e in self.eps) or not self.eps:
            raise MedFailError(f"adversarial probe: unknown attacks {unknown} or a bad eps grid")
        module = getattr(ctx.model, "module", None)
        differentiable = isinstance(module, nn.Module)
        attacks = [a for a in self.attacks if differentiable or a == "square"]
        warnings = []
        if not differentiable:
            warnings.append(
                "adversarial probe: the model exposes no differentiable torch module; "
                "black-box attacks only (square)"
            )
        split = self.split or ("id_test" if "id_test" in ctx.test_splits else "ood_test")
        base, x, sampled = image_sample(ctx, split, self.max_samples, self.name)
        warnings += sampled
        y = base.y
        t = ctx.threshold
        seed = split_seed(ctx.seed, split)
        undefined = class_counts_reason(base, f"the attacked {split} sample") or "undefined here"

        classifier = self._classifier(ctx, module if differentiable else None, x.shape[1:], t)
        scores: dict[float, dict[str, np.ndarray]] = {}
        for eps in sorted(self.eps):
            scores[eps] = {}
            for attack in attacks:
                if eps == 0:  # no perturbation: the clean scores already computed
                    scores[eps][attack] = base.score
                    continue
                with _numpy_seed(split_seed(seed, f"{attack}:{eps}")):
                    adv = self._attack(attack, classifier, eps).generate(
                        x, y=np.eye(2, dtype=np.float32)[y]
                    )
                scores[eps][attack] = self._score(ctx, adv)

        clean_ok = (base.score >= t) == (y == 1)
        out = []
        acc_by_eps: dict[str, dict[float, float]] = {a: {} for a in attacks}
        robust_by_eps: dict[float, float] = {}
        for eps, by_attack in scores.items():
            stack = np.stack([by_attack[a] for a in attacks])  # (attacks, n)
            worst = np.where(y == 1, stack.min(axis=0), stack.max(axis=0))
            flipped = np.stack([~clean_ok, (worst >= t) != (y == 1)])
            point, reps = bootstrap(base, _eps_metrics(y, worst, flipped, t), ctx.n_boot, seed)
            robust_by_eps[eps] = float(point[0])
            out += emit(
                self.name,
                split,
                EPS_METRICS,
                point,
                reps,
                ctx.level,
                reasons=dict.fromkeys(EPS_METRICS, undefined),
                group=f"{eps:.6g}",
                n=len(base),
            )
            for a in attacks:
                correct = ((by_attack[a] >= t) == (y == 1)).astype(np.float64)

                def acc(w: np.ndarray, c: np.ndarray = correct) -> np.ndarray:
                    wf = np.asarray(w, dtype=np.float64)
                    return ratio(wf @ c, wf.sum(axis=1))[:, None]

                p_a, r_a = bootstrap(base, acc, ctx.n_boot, seed)
                acc_by_eps[a][eps] = float(p_a[0])
                out += emit(
                    self.name,
                    split,
                    ["accuracy"],
                    p_a,
                    r_a,
                    ctx.level,
                    attribute=a,
                    group=f"{eps:.6g}",
                    n=len(base),
                )
        badge = self._badge(
            acc_by_eps,
            robust_by_eps,
            module if differentiable else None,
            (x, y, t),
            lambda z: self._score(ctx, z),
        )
        config = self.config() | {
            "attacks": attacks,
            "split": split,
            "n_used": len(base),
            "norm": "Linf",
            "eps_unit": "intensity of images in [0, 1]",
            "goal": f"flip the decision p >= {t:.6g} frozen on val",
            "gradient_masking": badge,
        }
        if badge:
            warnings.append("adversarial probe: GRADIENT MASKING suspected: " + "; ".join(badge))
        return ProbeResult(name=self.name, config=config, metrics=out, warnings=warnings)

    def _classifier(
        self, ctx: ScoringContext, module: nn.Module | None, shape: tuple[int, ...], t: float
    ) -> Any:
        from art.estimators.classification import (
            BlackBoxClassifierNeuralNetwork,
            PyTorchClassifier,
        )

        if module is not None:
            wrapped = ThresholdShift(module, t).eval()
            return {
                name: PyTorchClassifier(
                    model=wrapped,
                    loss=loss,
                    input_shape=shape,
                    nb_classes=2,
                    clip_values=(0.0, 1.0),
                    device_type="gpu" if torch.cuda.is_available() else "cpu",
                )
                for name, loss in (("ce", nn.CrossEntropyLoss()), ("margin", BinaryMarginLoss()))
            }
        shift = -decision_logit(t)

        def predict(batch: np.ndarray) -> np.ndarray:
            p = np.clip(ctx.model.predict_proba(batch.astype(np.float32)), 1e-12, 1.0)
            logits = np.log(p) + np.array([0.0, shift])
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

        box = BlackBoxClassifierNeuralNetwork(predict, shape, 2, clip_values=(0.0, 1.0))
        return {"ce": box, "margin": box}

    def _attack(self, name: str, classifiers: dict[str, Any], eps: float) -> Any:
        from art.attacks.evasion import (
            AutoProjectedGradientDescent,
            FastGradientMethod,
            ProjectedGradientDescent,
            SquareAttack,
        )

        classifier = classifiers["ce"]
        if name.startswith("apgd"):
            margin = name == "apgd-margin"
            return AutoProjectedGradientDescent(
                classifiers["margin"] if margin else classifier,
                norm=np.inf,
                eps=eps,
                eps_step=eps / 4,
                max_iter=self.apgd_steps,
                nb_random_init=self.restarts,
                batch_size=self.batch_size,
                loss_type=None if margin else "cross_entropy",
                verbose=False,
            )
        if name == "fgsm":
            return FastGradientMethod(classifier, norm=np.inf, eps=eps, batch_size=self.batch_size)
        if name == "pgd":
            return ProjectedGradientDescent(
                classifier,
                norm=np.inf,
                eps=eps,
                eps_step=eps / 4,
                max_iter=self.pgd_steps,
                num_random_init=self.restarts,
                batch_size=self.batch_size,
                verbose=False,
            )
        return SquareAttack(
            classifier,
            norm=np.inf,
            eps=eps,
            max_iter=self.square_queries,
            nb_restarts=1,
            batch_size=self.batch_size,
            verbose=False,
        )

    @staticmethod
    def _score(ctx: ScoringContext, x: np.ndarray) -> np.ndarray:
        proba = np.asarray(ctx.model.predict_proba(x.astype(np.float32)), dtype=np.float64)
        return proba[:, 1]

    def _badge(
        self,
        acc: dict[str, dict[float, float]],
        robust: dict[float, float],
        module: nn.Module | None,
        data: tuple[np.ndarray, np.ndarray, float],
        score: Callable[[np.ndarray], np.ndarray],
    ) -> list[str]:
        """Reasons to suspect gradient masking (empty: no sign of it)."""
        x, y, t = data
        reasons = []
        attacked = [e for e in robust if e > 0]
        gradient = [a for a in GRADIENT_ATTACKS if a in acc]
        for e in attacked:
            if "square" in acc and gradient:
                best = min(acc[a][e] for a in gradient)
                if acc["square"][e] < best - 1e-9:
                    reasons.append(f"square beats the gradient attacks at eps {e:.4g}")
            iterative = [a for a in ("pgd", "apgd-ce", "apgd-margin") if a in acc]
            if (
                "fgsm" in acc
                and iterative
                and acc["fgsm"][e] < min(acc[a][e] for a in iterative) - 1e-9
            ):
                reasons.append(f"FGSM beats the iterative attacks at eps {e:.4g}")
        values = [robust[e] for e in sorted(robust)]
        if any(b > a + 1e-9 for a, b in pairwise(values)):
            reasons.append("robust accuracy rises with eps")
        if not np.array_equal(score(x), score(x)):
            reasons.append("the forward pass is not deterministic")
        if module is not None:
            wrapped = ThresholdShift(module, t).eval()
            dev = next(module.parameters(), torch.empty(0)).device  # ART may have moved it
            wrapped.to(dev)
            xt = torch.as_tensor(x[: min(len(x), 32)], device=dev).requires_grad_(True)
            target = torch.as_tensor(y[: len(xt)], device=dev)
            loss = nn.functional.cross_entropy(wrapped(xt), target)
            (grad,) = torch.autograd.grad(loss, xt)
            if not torch.isfinite(grad).all():
                reasons.append("input gradients are NaN or infinite")
            elif float(grad.abs().max()) == 0.0:
                reasons.append("input gradients are exactly zero")
        return reasons
