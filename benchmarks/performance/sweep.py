"""Sweep throughput: the same cells on a local Ray against a plain serial loop (issue 20).

The cells are real (train + score): ``--methods`` on ``--task`` (default: four MLP methods
and the logistic regression on ncctg-lung-mortality-site, seeds 0..``--seeds``-1), each run
twice into fresh folders in one process: once with ``run(serial=True)`` (one after another,
no Ray) and once on a local Ray with ``--cpus`` CPUs (Ray's start-up included). Reported:
wall time of each, the speed-up, and Ray's per-cell overhead, measured apart as the mean
round trip of ``--noop`` no-op tasks submitted one at a time through the same remote call
(``ray.get(f.remote())``), after start-up.

Run: ``.venv/bin/python benchmarks/performance/sweep.py [--cpus 2] [--seeds 4]``; image
cells: ``--task synth-cxr-site-shift --methods erm,mixup --families cnn --seeds 2``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from machine import cpu_name  # benchmarks/performance/machine.py (the script's own folder)

from baselines import sweep
from benchmark.tasks.task import Task


def _noop() -> None:
    return None


def overhead_s(cpus: int, n: int) -> tuple[float, float]:
    """(Ray start-up seconds, mean seconds per no-op task round trip)."""
    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    start = time.perf_counter() - t0
    remote = ray.remote(_noop)
    ray.get(remote.remote())  # a warm worker
    t0 = time.perf_counter()
    for _ in range(n):
        ray.get(remote.remote())
    per = (time.perf_counter() - t0) / n
    ray.shutdown()
    return start, per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="ncctg-lung-mortality-site")
    ap.add_argument("--methods", default="erm,mixup,group-dro,adversarial-debiasing")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument(
        "--families", default="mlp,logistic", help="comma-separated; '' = each method's"
    )
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--noop", type=int, default=200)
    args = ap.parse_args()
    task = Task.load(args.task, build=True)
    families = args.families.split(",") if args.families else None
    planned = sweep.plan([task], args.methods.split(","), families, list(range(args.seeds)))
    cells = planned.cells
    print(f"{cpu_name()} ({os.cpu_count()} cores), {platform.python_version()}")
    print(f"{len(cells)} cells: {args.methods} on {task.spec.ref}, seeds 0-{args.seeds - 1}")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        serial = sweep.run(cells, Path(tmp) / "serial", serial=True)
        serial_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ray_run = sweep.run(cells, Path(tmp) / "ray", cpus=args.cpus)
        ray_s = time.perf_counter() - t0
    assert serial.done == ray_run.done == len(cells), (serial, ray_run)
    start, per = overhead_s(args.cpus, args.noop)
    print(f"serial loop        {serial_s:7.1f} s  ({serial_s / len(cells):.2f} s per cell)")
    print(f"Ray, {args.cpus} CPUs        {ray_s:7.1f} s  (start-up included)")
    print(f"speed-up           {serial_s / ray_s:7.2f}x")
    print(f"Ray start-up       {start:7.2f} s")
    print(f"per-cell overhead  {per * 1000:7.1f} ms  (no-op round trip, mean of {args.noop})")


if __name__ == "__main__":
    main()
