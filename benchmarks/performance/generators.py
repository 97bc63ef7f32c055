"""Synthetic generators' speed: images (or series) per second on one core.

The issue's target is 5,000 64x64 radiographs per second per core with a default-style
cohort. BLAS and OpenMP are pinned to one thread before NumPy loads, and each case is
timed as the best of ``--repeats`` runs of ``generate(params, seed)`` on one ``--n``
cohort (the first run also warms caches). Generators that are not importable yet are
skipped with a note; add one by one entry in :data:`CASES`.

Run: ``.venv/bin/python benchmarks/performance/generators.py [--n 5000] [--repeats 3]``
(not part of the test suite).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy is imported, so BLAS starts single-threaded

import argparse  # noqa: E402
import importlib  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

from machine import cpu_name  # noqa: E402  (benchmarks/performance/machine.py, the script's folder)

BUSY_STYLE = {"blur": 1.0, "resolution": 0.5, "bias_field": 0.3, "vignetting": 0.2}


@dataclass(frozen=True)
class Case:
    """One timed configuration: the generator module and its config for ``n`` samples."""

    module: str  # under benchmark.tasks.synth
    config: Callable[[int], dict[str, Any]]
    scale: float = 1.0  # run ``n * scale`` samples (large images: fewer)


def _cohort(n: int, **extra: Any) -> dict[str, Any]:
    return {"site": "bench", "n": n, "prevalence": 0.3, **extra}


def _images(
    size: int, style: dict[str, Any] | None = None, **cohort: Any
) -> Callable[[int], dict[str, Any]]:
    def config(n: int) -> dict[str, Any]:
        extra = {"style": style} if style is not None else {}
        return {"image_size": size, "cohorts": [_cohort(n, **extra, **cohort)]}

    return config


def _series(n: int) -> dict[str, Any]:
    return {"cohorts": [_cohort(n)]}


def _with(config: Callable[[int], dict[str, Any]], **top: Any) -> Callable[[int], dict[str, Any]]:
    return lambda n: {**config(n), **top}


#: label -> what is timed; a missing module or a rejected config is reported and skipped
CASES: dict[str, Case] = {
    "cxr 64px default style": Case("cxr", _images(64)),
    "cxr 64px busy style": Case("cxr", _images(64, BUSY_STYLE)),
    "cxr 64px poisson noise": Case("cxr", _images(64, {"noise": "poisson"})),
    "cxr 64px marker + 3 raters": Case(
        "cxr", _with(_images(64, marker={"strength": 0.8, "base_rate": 0.2}), raters=3)
    ),
    "cxr 224px default style": Case("cxr", _images(224), scale=0.1),
    "pathology 64px default": Case("pathology", _images(64)),
    "derm 64px default": Case("derm", _images(64)),
    "icu telemetry default": Case("icu", _series),
}


def time_case(case: Case, n: int, repeats: int) -> tuple[int, float, float] | str:
    """(samples, best wall seconds, best CPU seconds) for ``case``, or why it was skipped."""
    try:
        module = importlib.import_module(f"benchmark.tasks.synth.{case.module}")
    except ImportError as e:
        return f"skipped: {e}"
    count = max(1, round(n * case.scale))
    try:
        params = module.Params.model_validate(case.config(count))
    except Exception as e:  # another team's generator may not take this config yet
        return f"skipped: config rejected ({type(e).__name__}: {str(e).splitlines()[0]})"
    wall = cpu = float("inf")
    for r in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        batch = module.generate(params, r)
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return len(batch), wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000, help="samples per case (224px: n / 10)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs; the best counts")
    ap.add_argument("--only", nargs="*", default=None, help="generator modules to run")
    args = ap.parse_args()

    import numpy as np

    print(f"CPU: {cpu_name()}; numpy {np.__version__}; 1 BLAS/OpenMP thread")
    print("per s/core: samples per CPU second of this (single-threaded) process; wall-clock")
    print("rates are lower when other processes share the cores")
    print(
        f"{'case':<34}{'samples':>9}{'wall s':>9}{'CPU s':>9}{'per s/core':>12}{'per s wall':>12}"
    )
    for label, case in CASES.items():
        if args.only is not None and case.module not in args.only:
            continue
        result = time_case(case, args.n, args.repeats)
        if isinstance(result, str):
            print(f"{label:<34}  {result}")
            continue
        count, wall, cpu = result
        print(
            f"{label:<34}{count:>9}{wall:>9.3f}{cpu:>9.3f}"
            f"{count / cpu:>12,.0f}{count / wall:>12,.0f}"
        )


if __name__ == "__main__":
    main()
