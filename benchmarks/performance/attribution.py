"""Attribution throughput: batched captum against a per-image loop (issue 19).

Grad-CAM and Integrated Gradients (32 steps) on ``--n`` random 1x64x64 images, for the
small image CNN and MONAI's DenseNet-121 (random init: throughput does not depend on the
weights), through :func:`benchmark.scoring.attribution.attribute` with ``--batch`` images
per call, against the same call on one image at a time (the naive reference). Side by side
in one process, best of two; images per second and the speed-up.

Run: ``.venv/bin/python benchmarks/performance/attribution.py [--n 64] [--densenet-n 8]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch
from machine import cpu_name  # benchmarks/performance/machine.py (the script's own folder)

from benchmark.models.architectures import build
from benchmark.scoring.attribution import attribute


def rate(model: torch.nn.Module, x: np.ndarray, method: str, batch: int) -> float:
    """Images per second, best of two runs."""
    best = np.inf
    for _ in range(2):
        t0 = time.perf_counter()
        attribute(model, x, method, batch_size=batch)
        best = min(best, time.perf_counter() - t0)
    return len(x) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="images for the small CNN")
    ap.add_argument("--densenet-n", type=int, default=8, help="images for DenseNet-121")
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores, {platform.system()}; torch threads "
        f"{torch.get_num_threads()}"
    )
    for arch, n in (("image-cnn", args.n), ("densenet121", args.densenet_n)):
        model = build(arch, {"in_channels": 1, "n_classes": 2}).eval()
        x = rng.random((n, 1, 64, 64)).astype(np.float32)
        for method in ("gradcam", "integrated_gradients"):
            batched = rate(model, x, method, args.batch)
            loop = rate(model, x, method, 1)
            print(
                f"{arch:>12} {method:>21}: batched {batched:8.1f} img/s, per-image loop "
                f"{loop:7.1f} img/s, {batched / loop:5.1f}x ({n} images)"
            )


if __name__ == "__main__":
    main()
