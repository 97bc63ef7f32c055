"""Train the ERM surrogate a published adversarial test set is crafted on.

Run: ``.venv/bin/python benchmarks/release/adversarial_surrogate.py synth-cxr-site-shift@1.0.0
tasks/synth-cxr-adversarial-transfer/1.0.0.surrogate.safetensors``. Prints the sha256 to
pin as ``source.params.surrogate_sha256`` in the adversarial-transfer spec.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from baselines.surrogate import SURROGATE_SEED, make_surrogate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parent", help="ID@VERSION of the released parent image task")
    parser.add_argument("out", type=Path, help="where to write the safetensors weights")
    parser.add_argument("--family", default="cnn", help="ERM model family (default: cnn)")
    parser.add_argument("--seed", type=int, default=SURROGATE_SEED)
    args = parser.parse_args()
    start = time.perf_counter()
    digest = make_surrogate(args.parent, args.out, family=args.family, seed=args.seed)
    print(f"{args.out}: sha256 {digest} ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
