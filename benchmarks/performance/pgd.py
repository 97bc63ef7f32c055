"""PGD speed: MedFail's attack path vs ART's PyTorch PGD vs a plain torch loop, images/s.

All three run PGD-10, L-inf, eps 4/255, step eps/4, one random start, on the same model,
the same batch and the same device, with cross-entropy at the decision the probe attacks.
"plain" is the loop most code bases write (``loss.backward()`` on the batch, which also
fills every weight's ``.grad``); "medfail" is :func:`benchmark.perturbations.attacks.pgd`; "art" is
``art.attacks.evasion.ProjectedGradientDescent`` on a ``PyTorchClassifier``. Each is timed
as the best of ``--repeats`` interleaved rounds after one warm-up run.

Run: ``.venv/bin/python benchmarks/performance/pgd.py [--arch image-cnn|densenet121] [--n 64]
[--size 64] [--threads 2] [--device cpu|cuda]`` (not part of the test suite).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from machine import cpu_name  # benchmarks/performance/machine.py, the script's folder
from torch import nn
from torch.nn import functional as F

from benchmark.models.architectures import build
from benchmark.perturbations.attacks import pgd

EPS, STEPS = 4 / 255, 10


def plain_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The textbook loop: backward() on the loss, step on the sign of x.grad."""
    adv = (x + torch.empty_like(x).uniform_(-EPS, EPS)).clamp(0, 1)
    for _ in range(STEPS):
        adv = adv.detach().requires_grad_(True)
        model.zero_grad()
        F.cross_entropy(model(adv), y).backward()
        assert adv.grad is not None
        adv = adv.detach() + (EPS / 4) * adv.grad.sign()
        adv = torch.min(torch.max(adv, x - EPS), x + EPS).clamp(0, 1)
    return adv.detach()


def best_rates(
    runs: dict[str, Callable[[], object]], n: int, repeats: int, device: str
) -> dict[str, float]:
    """Best images/s of each run over ``repeats`` rounds, the runs interleaved within a round
    (so a busy spell on a shared machine slows all of them, not one)."""
    for run in runs.values():
        run()  # warm-up
    best = dict.fromkeys(runs, 0.0)
    for _ in range(repeats):
        for name, run in runs.items():
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            run()
            if device == "cuda":
                torch.cuda.synchronize()
            best[name] = max(best[name], n / (time.perf_counter() - t0))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="image-cnn", choices=["image-cnn", "densenet121"])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build(args.arch, {"in_channels": 1, "n_classes": 2}).eval()
    model.to(args.device)
    rng = np.random.default_rng(0)
    x_np = rng.random((args.n, 1, args.size, args.size), dtype=np.float32)
    y_np = rng.integers(0, 2, args.n)
    x = torch.as_tensor(x_np, device=args.device)
    y = torch.as_tensor(y_np, device=args.device)

    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    classifier = PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=x_np.shape[1:],
        nb_classes=2,
        clip_values=(0.0, 1.0),
        device_type="gpu" if args.device == "cuda" else "cpu",
    )
    art_pgd = ProjectedGradientDescent(
        classifier, eps=EPS, eps_step=EPS / 4, max_iter=STEPS, batch_size=args.n, verbose=False
    )
    onehot = np.eye(2, dtype=np.float32)[y_np]
    runs = {
        "medfail": lambda: pgd(model, x_np, y_np, EPS, steps=STEPS, batch_size=args.n),
        "art": lambda: art_pgd.generate(x_np, y=onehot),
        "plain": lambda: plain_loop(model, x, y),
    }
    params = sum(p.numel() for p in model.parameters())
    print(
        f"PGD-{STEPS} L-inf eps 4/255, {args.arch} ({params / 1e6:.2f}M parameters), "
        f"batch {args.n} x 1 x {args.size} x {args.size}, device {args.device}, "
        f"{args.threads} threads, CPU {cpu_name()}"
        + (f", GPU {torch.cuda.get_device_name()}" if args.device == "cuda" else "")
    )
    for name, rate in best_rates(runs, args.n, args.repeats, args.device).items():
        print(f"  {name:8s} {rate:8.1f} images/s")


if __name__ == "__main__":
    main()
