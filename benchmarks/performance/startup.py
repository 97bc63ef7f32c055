"""Start-up time of ``import benchmark`` and ``medfail --help``, side by side for several
checkouts (e.g. this one and a worktree of an older commit), best of N fresh processes.

Run: ``.venv/bin/python benchmarks/performance/startup.py . /tmp/old-checkout``
Each checkout is put first on ``PYTHONPATH``, so its ``benchmark`` package is the one
imported; the interpreter and the installed dependencies are the same for all.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_name  # benchmarks/performance/machine.py, the script's folder

EMPTY = tempfile.mkdtemp()
SNIPPETS = {
    "import benchmark": "import benchmark",
    "medfail --help": (
        "import sys; sys.argv = ['medfail', '--help']\n"
        "from benchmark.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    ),
}


def best_of(code: str, checkout: Path, rounds: int) -> float:
    env = os.environ | {"PYTHONPATH": str(checkout.resolve())}
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(  # from an empty folder: "-c" puts the working directory first
            [sys.executable, "-c", code], env=env, cwd=EMPTY, capture_output=True, check=True
        )
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("checkouts", nargs="+", type=Path)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, {platform.system()}")
    print(f"{'checkout':40} " + " ".join(f"{name:>18}" for name in SNIPPETS))
    for checkout in args.checkouts:  # interleaved per snippet would mix caches; rounds suffice
        cells = [best_of(code, checkout, args.rounds) for code in SNIPPETS.values()]
        print(f"{checkout!s:40} " + " ".join(f"{c:>16.2f} s" for c in cells))


if __name__ == "__main__":
    main()
