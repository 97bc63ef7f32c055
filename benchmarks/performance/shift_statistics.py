"""MMD² permutation test: MedFail's (``benchmark.stats.shift.mmd_test``) against
alibi-detect's ``MMDDrift`` (PyTorch backend), side by side in one process.

At n = 2,000 vs 2,000 rows, d = 64, 1,000 permutations (issue 21's target: at least 100x
faster than alibi-detect with the same p-value), without a shift and with a small one,
both on the same float64 data and the same permutations (drawn with ``torch.randperm``
after one seed, as alibi-detect draws them), and then MedFail's alone at n = 10,000 vs
10,000 with its peak memory (``tracemalloc``). alibi-detect clashes with this project's
environment (it needs numpy < 2): run this from a throwaway venv with alibi-detect, torch
2.13.0 and numpy < 2, with this checkout on PYTHONPATH (``python -m venv /tmp/alibi &&
/tmp/alibi/bin/pip install torch==2.13.0 "alibi-detect[torch]" "numpy<2"``, then
``PYTHONPATH=. /tmp/alibi/bin/python benchmarks/performance/shift_statistics.py``);
without it the parity rows are skipped.

Run: ``python benchmarks/performance/shift_statistics.py [--large]``. Figures:
docs/performance.md "Shift statistics".
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from benchmark.stats import shift


def _alibi(a: np.ndarray, b: np.ndarray, perms: int, seed: int) -> tuple[float, float, float]:
    """alibi-detect's (MMD², p, seconds); its permutations are torch.randperm draws."""
    import torch
    from alibi_detect.cd import MMDDrift

    detector = MMDDrift(a, backend="pytorch", n_permutations=perms, device="cpu")
    torch.manual_seed(seed)
    start = time.perf_counter()
    p_value, mmd2, _ = detector.score(b)
    return float(mmd2), float(p_value), time.perf_counter() - start


def _torch_perms(n_total: int, perms: int, seed: int) -> np.ndarray:
    import torch

    torch.manual_seed(seed)
    return np.stack([torch.randperm(n_total).numpy() for _ in range(perms)])


def _side_by_side(a: np.ndarray, b: np.ndarray, what: str) -> None:
    """MedFail's test and (where installed) alibi-detect's on the same permutations."""
    try:
        perms = _torch_perms(len(a) + len(b), 1000, seed=0)
        alibi = _alibi(a, b, 1000, seed=0)
    except ImportError:
        perms, alibi = None, None
    start = time.perf_counter()
    ours = shift.mmd_test(a, b, n_permutations=1000, perms=perms)
    seconds = time.perf_counter() - start
    print(
        f"{what}: MedFail 2000 vs 2000, d 64, 1000 permutations: {seconds:.2f} s, "
        f"MMD2 {ours.mmd2:.6g}, p {ours.p_value:.4f}",
        flush=True,
    )
    if alibi is None:
        print("alibi-detect is not installed here: parity and speed-up skipped", flush=True)
        return
    mmd2, p_value, alibi_s = alibi
    print(f"{what}: alibi-detect {alibi_s:.2f} s, MMD2 {mmd2:.6g}, p {p_value:.4f}", flush=True)
    print(
        f"{what}: speed-up {alibi_s / seconds:.0f}x; |MMD2 difference| "
        f"{abs(mmd2 - ours.mmd2):.2e}; p equal (alibi-detect's is float32): "
        f"{abs(p_value - ours.p_value) < 1e-6}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also time 10,000 vs 10,000")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for move in (0.0, 0.02):  # no shift (p strictly inside (0, 1)), and a small one
        a, b = rng.normal(size=(2000, 64)), rng.normal(size=(2000, 64)) + move
        _side_by_side(a, b, f"shift {move}")
    if args.large:
        big_a, big_b = rng.normal(size=(10_000, 64)), rng.normal(size=(10_000, 64))
        tracemalloc.start()
        start = time.perf_counter()
        test = shift.mmd_test(big_a, big_b, n_permutations=1000)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(
            f"MedFail 10000 vs 10000: {seconds:.1f} s, peak {peak:.0f} MiB, p {test.p_value}",
            flush=True,
        )


if __name__ == "__main__":
    main()
