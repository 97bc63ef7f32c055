"""The adversarial probe's fast preset against its full preset, side by side in one process.

Scores one committed model (default: the small CNN of ``erm-cnn`` on
synth-cxr-adversarial-transfer, seed 0) with the adversarial probe under each preset and
prints the wall time and robust accuracy per L-inf radius, with the gradient-masking badge.
The fast preset's target (issue 20): at most 2 minutes for a 64x64 small CNN on 256 seeded
examples on 2 cores. Its robust accuracy is an upper bound of the full preset's (no APGD,
early exit, Square on PGD's survivors only): the table shows by how much.

Run: ``.venv/bin/python benchmarks/performance/adversarial_presets.py [--full] [--threads 2]``
(fast only: about 1 minute; ``--full`` adds the full preset: about 20 minutes on 2 cores).
Figures: docs/performance.md "The adversarial probe's presets".
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from benchmark.scoring.evaluate import evaluate
from benchmark.scoring.probes import make_probe
from benchmark.tasks.task import Task

ENTRY = Path("submissions/synth-cxr-adversarial-transfer@1.0.0/erm-cnn/seed-0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ENTRY / "model.safetensors")
    parser.add_argument("--task", default="synth-cxr-adversarial-transfer@1.0.0")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="also time the full preset")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = Task.load(args.task, build=True)
    print(f"{args.model} on {args.task}, {args.threads} torch thread(s)")
    for preset in ["fast", "full"] if args.full else ["fast"]:
        probe = make_probe("adversarial", preset)
        start = time.perf_counter()
        report = evaluate(str(args.model), task, probes=[probe], n_boot=1000)
        seconds = time.perf_counter() - start
        result = report.probe("adversarial")
        robust = [
            f"{float(m.group) * 255:.0f}/255 {m.value:.3f} [{m.ci_low:.3f}, {m.ci_high:.3f}]"
            for m in result.metrics
            if m.metric == "robust_accuracy" and m.attribute is None
        ]
        print(f"{preset}: {seconds:.0f} s, n = {result.config['n_used']}", flush=True)
        print("  robust accuracy: " + "; ".join(robust), flush=True)
        print(
            f"  badge: {result.config['gradient_masking'] or 'no sign of gradient masking'}",
            flush=True,
        )


if __name__ == "__main__":
    main()
