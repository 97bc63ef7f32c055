"""Make the ERM corruption reference of image tasks (the denominators of their mCE).

Run: ``.venv/bin/python benchmarks/release/corruption_reference.py synth-cxr-site-shift@1.0.0``.
Writes ``tasks/<id>/<version>.corruption.json`` and prints the reference errors.
"""

from __future__ import annotations

import argparse
import sys
import time

from baselines.corruption_reference import make_reference


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("refs", nargs="+", help="ID@VERSION of image tasks")
    parser.add_argument("--family", default="cnn", help="ERM model family (default: cnn)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for ref in args.refs:
        start = time.perf_counter()
        reference, path = make_reference(ref, family=args.family, seed=args.seed)
        print(
            f"{ref}: clean balanced error {reference.clean:.3f} on {reference.split} "
            f"(n={reference.n}); written to {path} ({time.perf_counter() - start:.0f} s)"
        )
        for name, by_sev in reference.errors.items():
            print(f"  {name:15s} " + " ".join(f"{by_sev[s]:.3f}" for s in sorted(by_sev)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
