"""The fixed surrogate a published adversarial test set is crafted on.

``make_surrogate(parent, out)`` trains the parent task's ERM baseline (one family, one
seed) and writes its safetensors weights to ``out``; the adversarial-transfer spec pins
the file's sha256 (``source.params.surrogate_sha256``). The seed differs from the
leaderboard's baseline seeds (0, 1, 2, ...), so scoring those baselines on the crafted
examples measures transfer between independently trained models, not a white-box attack.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from baselines.methods import families
from benchmark.common.files import atomic_write_bytes
from benchmark.common.hashing import sha256_file
from benchmark.tasks.task import Task

SURROGATE_SEED = 2026


def make_surrogate(
    parent: str, out: Path, *, family: str = "cnn", seed: int = SURROGATE_SEED
) -> str:
    """Train ERM ``family`` on ``parent`` with ``seed``, write the weights to ``out``
    atomically, return their sha256."""
    task = Task.load(parent, build=True)
    (fam,) = families("erm", task, family)
    with tempfile.TemporaryDirectory(prefix="medfail-surrogate-") as tmp:
        weights = fam.fit_and_save(task, seed, Path(tmp))
        atomic_write_bytes(out, weights.read_bytes())
    return sha256_file(out)
