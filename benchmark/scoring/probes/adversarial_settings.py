"""The adversarial probe's settings (its config), torch-free: the boards compare stored
configs with these presets without loading the attacks. The probe is
:class:`benchmark.scoring.probes.adversarial.AdversarialProbe`.

Two presets (:data:`PRESETS`), both ranked on the boards, never together (a board ranks one
scoring protocol):

- ``full``, the default, for final numbers: FGSM, PGD, APGD-CE, APGD-margin and Square at
  every L-inf radius, PGD-L2 at every L2 radius, 200 seeded examples.
- ``fast``, what ``medfail sweep`` uses: FGSM and PGD at every radius in one batch with
  early exit (an example leaves the attack once flipped), Square (100 queries) only on the
  examples PGD left correct, PGD-L2; 256 seeded examples. No APGD: robust accuracy is an
  upper bound of the full preset's (docs/performance.md measures the gap and the time).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: L-inf radii on images in [0, 1] (0 is the clean reference), and L2 radii per image.
DEFAULT_EPS = [0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255]
DEFAULT_L2_EPS = [0.25, 0.5, 1.0]
LINF_ATTACKS = ("fgsm", "pgd", "apgd-ce", "apgd-margin", "square")
L2_ATTACKS = ("pgd-l2",)
ATTACKS = LINF_ATTACKS + L2_ATTACKS
FAST_ATTACKS = ("fgsm", "pgd", "square", "pgd-l2")


@dataclass
class AdversarialSettings:
    """Radii, attacks and budgets; ``split`` None means id_test, else ood_test;
    ``preset`` "full" runs each attack on every example, "fast" as the module says."""

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
    preset: str = "full"


#: Preset name -> its settings.
PRESETS = {
    "full": AdversarialSettings(),
    "fast": AdversarialSettings(
        attacks=list(FAST_ATTACKS), square_queries=100, max_samples=256, preset="fast"
    ),
}
