"""Wall time of the explanation probe on 512 images (issue 19's aim: at most 2 minutes on
2 cores for the small CNN with Grad-CAM and Integrated Gradients, the metrics and
1,000-replicate intervals).

Scores a randomly initialised small CNN (the time does not depend on the weights) on 512
``ood_test`` images of ``synth-cxr-shortcut@1.1.0`` (built if needed), and reports the
probe's total and its parts: the maps per method, the sanity check, and the numbers with
their intervals from the examples table (:func:`score_examples`, timed again alone).

Run: ``.venv/bin/python benchmarks/performance/explanation_probe.py [--n 512] [--n-boot 1000]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
from machine import cpu_name  # benchmarks/performance/machine.py (the script's own folder)

from benchmark.models.adapters import as_model
from benchmark.models.architectures import build
from benchmark.scoring.evaluate import predict
from benchmark.scoring.probes.base import ScoringContext
from benchmark.scoring.probes.explanation import ExplanationProbe
from benchmark.scoring.probes.explanation_scores import score_examples
from benchmark.tasks.task import Task

TASK = "synth-cxr-shortcut@1.1.0"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512, help="images explained")
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()
    torch.manual_seed(0)
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores, {platform.system()}; torch threads "
        f"{torch.get_num_threads()}"
    )
    task = Task.load(TASK, build=True)
    module = build("image-cnn", {"in_channels": 1, "n_classes": 2}).eval()
    model = as_model(module)
    preds = predict(model, task, ("ood_test",))
    times: dict[str, float] = {}

    def detail(what: str, done: int, total: int) -> None:
        times.setdefault(what, time.perf_counter())

    ctx = ScoringContext(
        task.spec, model, preds, ("ood_test",), 0.5, n_boot=args.n_boot, task=task, detail=detail
    )
    probe = ExplanationProbe(max_samples=args.n)
    t0 = time.perf_counter()
    result = probe.run(ctx)
    total = time.perf_counter() - t0
    marks = sorted(times.items(), key=lambda kv: kv[1])
    print(f"explanation probe on {args.n} images, {args.n_boot} replicates: {total:.1f} s")
    for (what, start), (_, end) in zip(marks, [*marks[1:], ("end", t0 + total)], strict=True):
        print(f"  {what:<48} {end - start:6.1f} s (until the next stage)")
    t1 = time.perf_counter()
    score_examples(ctx, result.examples, result.config["measured"]["sanity"])
    print(f"  numbers and intervals from the examples alone      {time.perf_counter() - t1:6.1f} s")
    print(f"  rows: {len(result.metrics)} metrics, {len(result.examples)} example rows")


if __name__ == "__main__":
    main()
