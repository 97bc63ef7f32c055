"""Does each task's ERM baseline show the failure its card claims? (issue 5, "Validity")

For each task with a ``validity`` claim in its spec: build it, train the claimed baseline
on the claimed seeds, score it with ``--n-boot`` bootstrap replicates, and write
``tasks/<id>/<version>.validity.json`` (quoted by the card). ``--pin`` releases a passing
draft; a task whose failure is not shown is never released.

Run: ``.venv/bin/python benchmarks/release/validity.py synth-cxr-site-shift@1.0.0`` or ``--all``.
"""

from __future__ import annotations

import argparse
import sys
import time

from baselines.validity import check
from benchmark.tasks.registry import discover, resolve


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("refs", nargs="*", help="ID@VERSION (default with --all: every claim)")
    parser.add_argument("--all", action="store_true", help="every task with a validity claim")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--pin", action="store_true", help="release passing drafts")
    args = parser.parse_args()
    refs = list(args.refs)
    if args.all:
        for task_id, versions in sorted(discover().items()):
            for version in versions:
                spec = resolve(f"{task_id}@{version}").spec
                if spec.validity is not None:
                    refs.append(spec.ref)
    if not refs:
        parser.error("name tasks or pass --all")
    failed = []
    for ref in refs:
        start = time.perf_counter()
        record = check(ref, n_boot=args.n_boot, pin=args.pin, step=print)
        took = time.perf_counter() - start
        verdict = "SHOWN" if record.passed else "NOT SHOWN"
        print(f"{ref}: {record.claim.describe()} -> {verdict} ({took:.0f} s)", flush=True)
        if not record.passed:
            failed.append(ref)
    if failed:
        print(f"failure not shown by: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
