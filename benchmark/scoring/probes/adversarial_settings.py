"""The adversarial probe's settings (its config), torch-free: the boards compare stored
configs with these defaults without loading the attacks. The probe is
:class:`benchmark.scoring.probes.adversarial.AdversarialProbe`."""

from __future__ import annotations

from dataclasses import dataclass, field

#: L-inf radii on images in [0, 1] (0 is the clean reference), and L2 radii per image.
DEFAULT_EPS = [0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255]
DEFAULT_L2_EPS = [0.25, 0.5, 1.0]
LINF_ATTACKS = ("fgsm", "pgd", "apgd-ce", "apgd-margin", "square")
L2_ATTACKS = ("pgd-l2",)
ATTACKS = LINF_ATTACKS + L2_ATTACKS


@dataclass
class AdversarialSettings:
    """Radii, attacks and budgets; ``split`` None means id_test, else ood_test."""

    eps: list[float] = field(default_factory=lambda: list(DEFAULT_EPS))
    l2_eps: list[float] = field(default_factory=lambda: list(DEFAULT_L2_EPS))
    attacks: list[str] = field(default_factory=lambda: list(ATTACKS))
    pgd_steps: int = 10
    apgd_steps: int = 20
    restarts: int = 1
    square_queries: int = 200
    split: str | None = None
    max_samples: int | None = 200
    batch_size: int = 64
