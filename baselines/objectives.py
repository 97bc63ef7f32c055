"""The training objectives of the torch baselines, so a method means the same thing for
tabular, image and series models.

An :class:`Objective` turns one training batch into a loss in nats. It may own trainable
modules (an adversary, a domain classifier) that the training loop optimises with the model,
and it hears the training progress ``p`` in [0, 1] (epochs done / max epochs), which DANN's
schedule reads. Every draw comes from the run's seeded ``numpy`` generator, so a run stays
bitwise reproducible on CPU.

Per-method settings and their sources live in :data:`METHOD_PARAMS`; the leaderboard entry
records them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

#: Per-method settings (recorded in each entry's config) and where the defaults come from.
METHOD_PARAMS: dict[str, dict[str, Any]] = {
    # Yun et al. (2019), CutMix, ICCV: lambda ~ Beta(1, 1), one box per batch.
    "cutmix": {"cutmix_alpha": 1.0},
    # Sagawa et al. (2020), Distributionally robust neural networks, ICLR: online group
    # weights q_g <- q_g exp(eta * loss_g), renormalised; eta = 0.01 as their code's default.
    "group-dro": {"dro_eta": 0.01},
    # Zhang, Lemoine & Mitchell (2018), Mitigating unwanted biases with adversarial learning,
    # AIES: an adversary predicts the group from the model's class probabilities and the true
    # label (the equalised-odds variant); the model gets the adversary's gradient reversed and
    # scaled by adv_weight (a gradient-reversal layer, Ganin et al. 2016, instead of Zhang's
    # projection term).
    "adversarial-debiasing": {"adv_weight": 1.0, "adv_hidden": 16},
    # Ganin et al. (2016), Domain-adversarial training of neural networks, JMLR: a domain
    # classifier on the representation behind a gradient-reversal layer whose weight follows
    # lambda_p = 2 / (1 + exp(-gamma p)) - 1 (gamma = 10, p = training progress in [0, 1]).
    "dann": {"dann_gamma": 10.0, "domain_hidden": 64},
    # Sun & Saenko (2016), Deep CORAL, ECCV workshops: ||C_s - C_t||_F^2 / (4 d^2) between
    # the representation covariances of a source and a target batch, weight 1.
    "coral": {"coral_weight": 1.0},
}


#: objectives that read each training row's group code, and those that read unlabelled
#: target inputs
GROUP_OBJECTIVES = ("group-dro", "adversarial-debiasing")
TARGET_OBJECTIVES = ("dann", "coral")


class _Reverse(torch.autograd.Function):
    """Identity forward; the gradient multiplied by ``-weight`` backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: float) -> torch.Tensor:  # type: ignore[override]
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return -ctx.weight * grad, None


def reverse_gradient(x: torch.Tensor, weight: float) -> torch.Tensor:
    """The gradient-reversal layer of Ganin et al. (2016)."""
    return _Reverse.apply(x, weight)


@dataclass
class Objective:
    """Weighted cross-entropy (ERM: all weights 1; ``reweight``: group-balanced weights).

    ``loss(model, x, y, idx, p)``: ``idx`` are the batch's row numbers in the training set
    (weights and groups are looked up by them), ``p`` the training progress."""

    weights: torch.Tensor | None = None

    def modules(self) -> list[nn.Module]:
        return []

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, p: float
    ) -> torch.Tensor:
        per = F.cross_entropy(model(x), y, reduction="none")
        w = torch.ones_like(per) if self.weights is None else self.weights[idx].to(per.device)
        return (per * w).sum() / w.sum()


@dataclass
class Mixup(Objective):
    """Zhang et al. (2018): inputs interpolated after the model's own normalisation
    (``model.prepare``) with a batch permutation, lambda ~ Beta(alpha, alpha), and the
    cross-entropy against the interpolated one-hot targets."""

    alpha: float = 0.4
    rng: np.random.Generator = field(default_factory=np.random.default_rng)

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, p: float
    ) -> torch.Tensor:
        lam = float(self.rng.beta(self.alpha, self.alpha))
        perm = torch.as_tensor(self.rng.permutation(len(y)), device=x.device)
        z = model.prepare(x)
        logits = model.from_prepared(lam * z + (1 - lam) * z[perm])
        return lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])


def cutmix_box(
    height: int, width: int, lam: float, rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """Yun et al.'s box: side ratios sqrt(1 - lam), centre uniform, clipped to the image;
    returns ``(top, bottom, left, right)`` (bottom/right exclusive)."""
    cut = math.sqrt(1.0 - lam)
    h, w = int(height * cut), int(width * cut)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    top, bottom = max(cy - h // 2, 0), min(cy + h // 2, height)
    left, right = max(cx - w // 2, 0), min(cx + w // 2, width)
    return top, bottom, left, right


@dataclass
class CutMix(Objective):
    """Yun et al. (2019), for images ``(n, C, H, W)``: a box of a permuted batch pasted in,
    the targets mixed by the pasted area (lambda recomputed from the clipped box)."""

    alpha: float = 1.0
    rng: np.random.Generator = field(default_factory=np.random.default_rng)

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, p: float
    ) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"cutmix needs images (n, C, H, W); got shape {tuple(x.shape)}")
        lam = float(self.rng.beta(self.alpha, self.alpha))
        perm = torch.as_tensor(self.rng.permutation(len(y)), device=x.device)
        top, bottom, left, right = cutmix_box(x.shape[2], x.shape[3], lam, self.rng)
        mixed = x.clone()
        mixed[:, :, top:bottom, left:right] = x[perm][:, :, top:bottom, left:right]
        lam = 1.0 - (bottom - top) * (right - left) / (x.shape[2] * x.shape[3])
        logits = model(mixed)
        return lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])


@dataclass
class GroupDRO(Objective):
    """Sagawa et al. (2020), online: each batch's mean loss per group ``l_g``; for the
    groups present, ``q_g <- q_g exp(eta l_g)``, then ``q`` is renormalised; the loss is
    ``sum_g q_g l_g``. ``groups``: one group code (0..G-1) per training row; ``q`` starts
    uniform and is kept across batches."""

    groups: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    eta: float = 0.01
    q: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        n = int(self.groups.max()) + 1 if len(self.groups) else 1
        self.q = torch.full((n,), 1.0 / n, dtype=torch.float64)

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, p: float
    ) -> torch.Tensor:
        per = F.cross_entropy(model(x), y, reduction="none")
        g = self.groups[idx].to(per.device)
        n = len(self.q)
        counts = torch.bincount(g, minlength=n).to(per.dtype)
        sums = torch.zeros(n, dtype=per.dtype, device=per.device).index_add(0, g, per)
        group_loss = sums / counts.clamp(min=1)
        present = (counts > 0).cpu()
        step = torch.exp(self.eta * group_loss.detach().cpu().double())
        self.q = torch.where(present, self.q * step, self.q)
        self.q = self.q / self.q.sum()
        return (self.q.to(per.device, per.dtype) * group_loss).sum()


def _mlp(n_in: int, hidden: int, n_out: int, seed: int) -> nn.Module:
    """A one-hidden-layer head, initialised from its own seeded generator (so adding it
    does not shift the model's draws)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


@dataclass
class AdversarialDebiasing(Objective):
    """Zhang et al. (2018), equalised-odds variant: the adversary reads the model's class
    probabilities and the one-hot true label and predicts the group; it minimises its
    cross-entropy while the model receives that gradient reversed, times ``weight``.
    The loss returned is the model's cross-entropy plus the adversary's."""

    groups: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    n_classes: int = 2
    weight: float = 1.0
    hidden: int = 16
    seed: int = 0
    adversary: nn.Module = field(init=False)

    def __post_init__(self) -> None:
        n_groups = int(self.groups.max()) + 1 if len(self.groups) else 1
        self.adversary = _mlp(2 * self.n_classes, self.hidden, n_groups, self.seed)

    def modules(self) -> list[nn.Module]:
        return [self.adversary]

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, p: float
    ) -> torch.Tensor:
        logits = model(x)
        proba = reverse_gradient(torch.softmax(logits, dim=1), self.weight)
        onehot = F.one_hot(y, self.n_classes).to(proba.dtype)
        guess = self.adversary(torch.cat([proba, onehot], dim=1))
        g = self.groups[idx].to(logits.device)
        return F.cross_entropy(logits, y) + F.cross_entropy(guess, g)


@dataclass
class _WithTarget(Objective):
    """Shared by DANN and CORAL: each batch is paired with as many rows of the unlabelled
    ``target`` inputs (drawn with the run's generator) and both pass through the model in
    one forward; the class loss reads the source rows only."""

    target: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    rng: np.random.Generator = field(default_factory=np.random.default_rng)

    def _forward(
        self, model: nn.Module, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pick = torch.as_tensor(self.rng.integers(len(self.target), size=len(x)))
        xt = self.target[pick].to(x.device)
        h = model.embed_prepared(model.prepare(torch.cat([x, xt])))
        return h[: len(x)], h[len(x) :], model.classify(h[: len(x)])


@dataclass
class DANN(_WithTarget):
    """Ganin et al. (2016): a domain classifier on the representation, behind a
    gradient-reversal layer of weight ``lambda_p = 2 / (1 + exp(-gamma p)) - 1``."""

    width: int = 0
    gamma: float = 10.0
    hidden: int = 64
    seed: int = 0
    domain: nn.Module = field(init=False)

    def __post_init__(self) -> None:
        self.domain = _mlp(self.width, self.hidden, 2, self.seed)

    def modules(self) -> list[nn.Module]:
        return [self.domain]

    def schedule(self, p: float) -> float:
        return 2.0 / (1.0 + math.exp(-self.gamma * p)) - 1.0

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, p: float
    ) -> torch.Tensor:
        hs, ht, logits = self._forward(model, x)
        h = reverse_gradient(torch.cat([hs, ht]), self.schedule(p))
        d = torch.cat([torch.zeros(len(hs)), torch.ones(len(ht))]).long().to(h.device)
        return F.cross_entropy(logits, y) + F.cross_entropy(self.domain(h), d)


def coral_distance(hs: torch.Tensor, ht: torch.Tensor) -> torch.Tensor:
    """``||C_s - C_t||_F^2 / (4 d^2)`` with unbiased covariances (Sun & Saenko, 2016)."""
    d = hs.shape[1]
    cs, ct = torch.cov(hs.T), torch.cov(ht.T)
    return ((cs - ct) ** 2).sum() / (4 * d * d)


@dataclass
class CORAL(_WithTarget):
    """Sun & Saenko (2016): cross-entropy plus ``weight`` times :func:`coral_distance`
    between the source and target batch representations."""

    weight: float = 1.0

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, p: float
    ) -> torch.Tensor:
        hs, ht, logits = self._forward(model, x)
        return F.cross_entropy(logits, y) + self.weight * coral_distance(hs, ht)


def representation_width(model: nn.Module, x: torch.Tensor) -> int:
    """The width of ``model.embed_prepared`` on two rows of ``x`` (eval mode, no grad)."""
    was = model.training
    model.eval()
    with torch.no_grad():
        width = int(model.embed_prepared(model.prepare(x[:2])).shape[1])
    model.train(was)
    return width


def make(
    method: str,
    model: nn.Module,
    x: torch.Tensor,
    *,
    rng: np.random.Generator,
    seed: int,
    n_classes: int,
    mixup_alpha: float,
    weights: torch.Tensor | None = None,
    groups: np.ndarray | None = None,
    target: torch.Tensor | None = None,
    params: dict[str, Any] | None = None,
) -> Objective:
    """The objective of ``method``; ``params`` override :data:`METHOD_PARAMS`.

    ``groups`` (one code per training row) is required by group-dro and
    adversarial-debiasing, ``target`` (unlabelled inputs) by dann and coral."""
    p = {**METHOD_PARAMS.get(method, {}), **(params or {})}
    if method in GROUP_OBJECTIVES and groups is None:
        raise ValueError(f"{method} needs groups")
    if method in TARGET_OBJECTIVES and target is None:
        raise ValueError(f"{method} needs target inputs")
    codes = torch.tensor(np.array(groups if groups is not None else [], dtype=np.int64))
    if method in ("erm", "pgd-at", "reweight"):  # weights: 1 unless reweighting
        return Objective(weights=weights)
    if method == "mixup":
        return Mixup(alpha=mixup_alpha, rng=rng)
    if method == "cutmix":
        return CutMix(alpha=p["cutmix_alpha"], rng=rng)
    if method == "group-dro":
        return GroupDRO(groups=codes, eta=p["dro_eta"])
    if method == "adversarial-debiasing":
        return AdversarialDebiasing(
            groups=codes,
            n_classes=n_classes,
            weight=p["adv_weight"],
            hidden=p["adv_hidden"],
            seed=seed,
        )
    assert target is not None
    if method == "dann":
        width = representation_width(model, x)
        return DANN(
            target=target,
            rng=rng,
            width=width,
            gamma=p["dann_gamma"],
            hidden=p["domain_hidden"],
            seed=seed,
        )
    if method == "coral":
        return CORAL(target=target, rng=rng, weight=p["coral_weight"])
    raise ValueError(f"no training objective for {method!r}")
