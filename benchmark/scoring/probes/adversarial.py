"""Adversarial robustness through adversarial-robustness-toolbox (ART), at the frozen threshold.

The attack's goal is the clinically meaningful flip: the decision ``p >= t`` at the
threshold ``t`` frozen on ``val``, not the argmax. The model is wrapped so that its argmax
*is* that decision (the class-1 logit is shifted by ``-logit(t)``), and ART's untargeted
attacks run on the wrapper with the true labels.

Two threat models, each with its own eps grid in intensity units of images in [0, 1]:
L-inf (``eps``, per pixel; FGSM, PGD, APGD-CE, APGD-margin, Square) and L2 (``l2_eps``, the
Euclidean norm of one image's perturbation; PGD-L2). Per threat model and eps (rows with
``group = eps``; L-inf rows have no attribute, L2 rows ``attribute = "L2"``):
``robust_accuracy`` (correct under every attack run: the per-example worst case),
``robust_auroc`` (each example's worst score over the attacks: the lowest for a positive,
the highest for a negative), ``robust_f1``, ``robust_sensitivity`` at the frozen threshold,
and ``attack_success_rate`` (share of examples correct on clean inputs that some attack
flips). ``accuracy`` per attack has ``attribute = <attack>``. Everything is bootstrapped on
the same resamples as the clean split. The worst-case scores are kept with the report's
predictions as pseudo-splits (:func:`attacked_split`), so ``medfail compare`` gives paired
differences of two models' robust metrics with CIs.

Two presets (:mod:`~benchmark.scoring.probes.adversarial_settings`): ``full`` (the default,
for final numbers) runs every attack below on every example; ``fast`` (the sweep's) runs
FGSM and PGD at every radius in one batch with early exit, then Square only on the examples
PGD left correct (accuracy rows ``attribute = "pgd+square"``), and PGD-L2.

Attacks: FGSM, PGD (``pgd_steps`` steps of 2.5 eps / steps, ``restarts`` random starts;
MedFail's torch loop, :mod:`benchmark.perturbations.attacks`), APGD with cross-entropy and
APGD with the binary margin loss (:class:`BinaryMarginLoss`) need a differentiable torch
module; Square (black-box, query-based) runs on any model that predicts. ART's
``AutoAttack`` and APGD-DLR need 3 or more classes; the scorer is binary, so the ensemble
above stands in for them and the report's config names it. A predictions file skips the
probe. The **gradient-masking badge** fires, with its reasons, when Square beats the
gradient attacks, FGSM beats the iterative ones, robust accuracy rises with eps, the input
gradients are zero or NaN, or the forward pass is not deterministic; in the fast preset,
also when Square breaks more than :data:`SQUARE_MARGIN` of the examples PGD left correct
(a black-box attack succeeding where the white-box one failed). Progress goes to
``ScoringContext.detail``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmark.common.optional import heavy
from benchmark.errors import MedFailError
from benchmark.perturbations.attacks import module_device, pgd, pgd_grid
from benchmark.perturbations.threshold import ThresholdShift, decision_logit
from benchmark.results.report import MetricResult, ProbeResult
from benchmark.scoring.predictions import SplitPredictions
from benchmark.scoring.probes.adversarial_scores import attacked_split, robust_rows
from benchmark.scoring.probes.adversarial_settings import (
    ATTACKS,
    FAST_ATTACKS,
    L2_ATTACKS,
    LINF_ATTACKS,
    PRESETS,
    AdversarialSettings,
)
from benchmark.scoring.probes.base import (
    Probe,
    ScoringContext,
    bootstrap,
    clusters,
    emit,
    image_sample,
    rerun_blocker,
    split_seed,
)
from benchmark.stats.bootstrap import ratio

GRADIENT_ATTACKS = ("fgsm", "pgd", "apgd-ce", "apgd-margin")
#: The fast preset's Square-after-PGD attack, as its accuracy rows name it.
CASCADE = "pgd+square"
#: The fast preset's badge: Square (black box) breaking more than this share of the
#: examples that white-box PGD left correct (and at least 2 of them) points to gradients
#: that mislead PGD (a masked model).
SQUARE_MARGIN = 0.02


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


@contextmanager
def _numpy_seed(seed: int) -> Iterator[None]:
    """ART draws random starts from NumPy's global generator: seed it, then restore it."""
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)


def _eps_label(attack: str, eps: float) -> str:
    return f"{eps:.4g} (L2)" if attack in L2_ATTACKS else f"{eps * 255:.4g}/255"


def _decides(module: nn.Module, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The decision (0/1) of a :class:`ThresholdShift` module on images ``x``, in batches."""
    device, out = module_device(module), []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xt = torch.as_tensor(x[start : start + batch_size], dtype=torch.float32, device=device)
            out.append(module(xt).argmax(dim=1).cpu().numpy())
    return np.concatenate(out)


class _Progress:
    """Reports ``"adversarial: <attack> eps <eps>"`` with images done out of all attacked
    images to the caller's progress display (``ScoringContext.detail``), if it has one."""

    def __init__(self, ctx: ScoringContext, total: int) -> None:
        self.report, self.total, self.done, self.what = ctx.detail, total, 0, ""

    def start(self, what: str) -> None:
        self.what = what
        self.advance(0)

    def advance(self, n: int) -> None:
        self.done += n
        if self.report is not None:
            self.report(f"adversarial: {self.what}", self.done, self.total)


@dataclass
class _Threat:
    """One threat model's results: metric rows, accuracy per attack and eps, robust accuracy
    per eps, and the worst-case predictions per attacked eps."""

    rows: list[MetricResult] = field(default_factory=list)
    accuracy: dict[str, dict[float, float]] = field(default_factory=dict)
    robust: dict[float, float] = field(default_factory=dict)
    predictions: dict[str, SplitPredictions] = field(default_factory=dict)


@dataclass
class AdversarialProbe(AdversarialSettings, Probe):
    """The attacks of :class:`AdversarialSettings`, run (module docstring)."""

    name = "adversarial"

    def run(self, ctx: ScoringContext) -> ProbeResult:
        split = self.split or ("id_test" if "id_test" in ctx.test_splits else "ood_test")
        blocker = rerun_blocker(ctx, "attacked images")
        if blocker is not None:  # the split it would attack, as a run records it
            skipped = self.skip(blocker)
            return skipped.model_copy(update={"config": skipped.config | {"split": split}})
        self._check()
        module = getattr(ctx.model, "module", None)
        differentiable = isinstance(module, nn.Module)
        attacks = [a for a in self.attacks if differentiable or a == "square"]
        warnings = []
        if not differentiable:
            warnings.append(
                "adversarial probe: the model exposes no differentiable torch module; "
                "black-box attacks only (square)"
            )
        base, x, sampled = image_sample(ctx, split, self.max_samples, self.name)
        warnings += sampled
        t = ctx.threshold
        classifier = self._classifier(ctx, module if differentiable else None, x.shape[1:], t)
        linf = [a for a in attacks if a in LINF_ATTACKS]
        l2 = [a for a in attacks if a in L2_ATTACKS]
        jobs = [(a, e) for a in linf for e in self.eps if e > 0]
        jobs += [(a, e) for a in l2 for e in self.l2_eps if e > 0]
        progress = _Progress(ctx, len(jobs) * len(base))
        seed = split_seed(ctx.seed, split)
        if self.preset == "fast" and differentiable:
            found = self._fast(classifier, x, base.y, seed, progress)
            linf = [a for a in ("fgsm", "pgd") if a in linf] + [CASCADE] * ("square" in linf)

            def adversarial(attack: str, eps: float) -> np.ndarray:
                return found[attack, eps]
        else:

            def adversarial(attack: str, eps: float) -> np.ndarray:
                progress.start(f"{attack} eps {_eps_label(attack, eps)}")
                key = split_seed(seed, f"{attack}:{eps}")
                return self._generate(attack, classifier, eps, x, base.y, key, progress)

        threats = {"Linf": self._threat(ctx, split, base, linf, self.eps, adversarial)}
        if l2:
            grid = sorted({0.0, *self.l2_eps})
            threats["L2"] = self._threat(ctx, split, base, l2, grid, adversarial)
        inf = threats["Linf"]
        badge = self._badge(
            inf.accuracy,
            inf.robust,
            module if differentiable else None,
            (x, base.y, t),
            lambda z: self._score(ctx, z),
        )
        config = self.config() | {
            "attacks": attacks,
            "split": split,
            "n_used": len(base),
            "norm": "Linf" + (" and L2" if l2 else ""),
            "eps_unit": "Linf: per-pixel intensity of images in [0, 1]; L2: Euclidean norm of "
            "one image's perturbation in the same units",
            "goal": "flip the decision p >= t at the threshold t frozen on val",
            "gradient_masking": badge,
        }
        if self.preset == "fast":
            config["square_on"] = (
                f"the examples PGD left correct (accuracy rows with attribute {CASCADE!r})"
            )
        if badge:
            warnings.append("adversarial probe: GRADIENT MASKING suspected: " + "; ".join(badge))
        result = ProbeResult(
            name=self.name,
            config=config,
            metrics=[row for threat in threats.values() for row in threat.rows],
            warnings=warnings,
        )
        return result.with_predictions(
            {k: v for threat in threats.values() for k, v in threat.predictions.items()}
        )

    def _check(self) -> None:
        """A one-line error for an unknown preset or attack, or a bad eps grid."""
        allowed = FAST_ATTACKS if self.preset == "fast" else ATTACKS
        unknown = sorted(set(self.attacks) - set(allowed))
        if self.preset not in PRESETS:
            raise MedFailError(
                f"adversarial probe: unknown preset {self.preset!r}; presets: {list(PRESETS)}"
            )
        grids = (self.eps, self.l2_eps)
        if self.preset == "fast" and "square" in self.attacks and "pgd" not in self.attacks:
            raise MedFailError(
                "adversarial probe: the fast preset runs square on the examples PGD left "
                "correct; add pgd to its attacks"
            )
        if unknown or any(e < 0 for g in grids for e in g) or not self.eps:
            raise MedFailError(
                f"adversarial probe: unknown attacks {unknown} or a bad eps grid "
                f"(eps {self.eps}, l2_eps {self.l2_eps}); the {self.preset} preset's "
                f"attacks are {list(allowed)}"
            )

    def _fast(
        self,
        classifier: dict[str, Any],
        x: np.ndarray,
        y: np.ndarray,
        seed: int,
        progress: _Progress,
    ) -> dict[tuple[str, float], np.ndarray]:
        """The fast preset's adversarial examples, (attack, eps) -> images: FGSM and PGD
        at every radius in one batch with early exit (:func:`pgd_grid`), then Square on
        the examples PGD left correct (:data:`CASCADE`: PGD's point where it flipped the
        decision, Square's elsewhere), and PGD-L2."""
        module, found = classifier["module"], {}
        radii = {"Linf": [e for e in self.eps if e > 0], "L2": [e for e in self.l2_eps if e > 0]}
        runs = [("fgsm", "Linf", True), ("pgd", "Linf", False), ("pgd-l2", "L2", False)]
        for attack, norm, fgsm in runs:
            if attack not in self.attacks or not radii[norm]:
                continue
            progress.start(f"{attack}, every eps")
            advs = pgd_grid(
                module,
                x,
                y,
                radii[norm],
                steps=self.pgd_steps,
                norm="inf" if norm == "Linf" else "2",
                fgsm=fgsm,
                seed=split_seed(seed, attack),
                batch_size=self.batch_size,
                progress=progress.advance,
            )
            found |= {(attack, e): adv for e, adv in zip(radii[norm], advs, strict=True)}
        for eps in radii["Linf"] if "square" in self.attacks else []:
            adv = found["pgd", eps].copy()
            survivors = np.flatnonzero(_decides(module, adv, self.batch_size) == y)
            progress.start(f"square on PGD's survivors, eps {_eps_label('pgd', eps)}")
            progress.advance(len(x) - len(survivors))
            if len(survivors):
                key = split_seed(seed, f"square:{eps}")
                square = self._generate(
                    "square", classifier, eps, x[survivors], y[survivors], key, progress
                )
                adv[survivors] = square
            found[CASCADE, eps] = adv
        return found

    def _threat(
        self,
        ctx: ScoringContext,
        split: str,
        base: SplitPredictions,
        attacks: list[str],
        grid: list[float],
        adversarial: Callable[[str, float], np.ndarray],
    ) -> _Threat:
        """Score ``adversarial(attack, eps)`` for each of ``attacks`` at each eps of
        ``grid``; per eps, the per-example worst case over the attacks (Linf rows have no
        attribute, L2 rows have ``attribute = "L2"``)."""
        norm = "L2" if attacks and attacks[0] in L2_ATTACKS else "Linf"
        y, t = base.y, ctx.threshold
        seed = split_seed(ctx.seed, split)
        out = _Threat(accuracy={a: {} for a in attacks})
        for eps in sorted(grid):
            by_attack = {}
            for attack in attacks:
                if eps == 0:  # no perturbation: the clean scores already computed
                    by_attack[attack] = base.score
                    continue
                by_attack[attack] = self._score(ctx, adversarial(attack, eps))
            stack = np.stack([by_attack[a] for a in attacks])  # (attacks, n)
            worst = np.where(y == 1, stack.min(axis=0), stack.max(axis=0))
            rows = robust_rows(ctx, base, worst, norm, eps)
            (robust,) = (r.value for r in rows if r.metric == "robust_accuracy")
            out.robust[eps] = np.nan if robust is None else float(robust)
            out.rows += rows
            if eps > 0:
                name = attacked_split(split, norm, eps)
                proba = np.column_stack([1 - worst, worst])
                out.predictions[name] = replace(base, split=name, proba=proba)
            for a in attacks:
                correct = ((by_attack[a] >= t) == (y == 1)).astype(np.float64)

                def acc(w: np.ndarray, c: np.ndarray = correct) -> np.ndarray:
                    wf = np.asarray(w, dtype=np.float64)
                    return ratio(wf @ c, wf.sum(axis=1))[:, None]

                d_a = bootstrap(base, acc, ctx.n_boot, seed, jackknife=ctx.jackknife)
                out.accuracy[a][eps] = float(d_a.point[0])
                out.rows += emit(
                    self.name,
                    split,
                    ["accuracy"],
                    d_a,
                    ctx.level,
                    support=ctx.support([clusters(base)]),
                    attribute=a,
                    group=f"{eps:.6g}",
                    n=len(base),
                )
        return out

    def _generate(
        self,
        attack: str,
        classifier: dict[str, Any],
        eps: float,
        x: np.ndarray,
        y: np.ndarray,
        seed: int,
        progress: _Progress,
    ) -> np.ndarray:
        """Adversarial examples of one attack at one eps. PGD runs in MedFail's torch loop
        (:mod:`benchmark.perturbations.attacks`, measured faster than ART's), the rest
        through ART."""
        if attack in ("pgd", "pgd-l2"):
            return pgd(
                classifier["module"],
                x,
                y,
                eps,
                steps=self.pgd_steps,
                norm="inf" if attack == "pgd" else "2",
                restarts=self.restarts,
                seed=seed,
                batch_size=self.batch_size,
                progress=progress.advance,
            )
        adv = np.empty_like(x)
        art_attack = self._attack(attack, classifier, eps)
        with _numpy_seed(seed):
            for start in range(0, len(x), self.batch_size):
                stop = start + self.batch_size
                adv[start:stop] = art_attack.generate(
                    x[start:stop], y=np.eye(2, dtype=np.float32)[y[start:stop]]
                )
                progress.advance(len(adv[start:stop]))
        return adv

    def _classifier(
        self, ctx: ScoringContext, module: nn.Module | None, shape: tuple[int, ...], t: float
    ) -> Any:
        BlackBoxClassifierNeuralNetwork, PyTorchClassifier = heavy(
            "art.estimators.classification", "BlackBoxClassifierNeuralNetwork", "PyTorchClassifier"
        )

        if module is not None:
            wrapped = ThresholdShift(module, t).eval()
            return {"module": wrapped} | {
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
        AutoProjectedGradientDescent, FastGradientMethod, SquareAttack = heavy(
            "art.attacks.evasion",
            "AutoProjectedGradientDescent",
            "FastGradientMethod",
            "SquareAttack",
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
            if CASCADE in acc:  # the fast preset: Square ran on PGD's survivors only
                survived = acc["pgd"][e]
                broken = survived - acc[CASCADE][e]
                if broken * len(y) >= 2 and broken > SQUARE_MARGIN * survived:
                    reasons.append(
                        f"square breaks {broken / survived:.1%} of the examples PGD left "
                        f"correct at eps {e:.4g}"
                    )
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
            dev = module_device(module)  # ART may have moved it
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
