"""Does PGD adversarial training beat ERM in robust accuracy at its own eps? A paired test.

Trains ERM and PGD-AT (``--eps`` in grey levels, ``--steps`` PGD steps of eps/4,
``--patience``) on one seed of an image task, scores both with the adversarial probe at
that eps only (L-inf: FGSM, PGD, APGD-CE, APGD-margin; 200 seeded test images) and prints
the paired difference of robust accuracy with its bootstrap CI (``benchmark.scoring.compare``).

Run: ``.venv/bin/python benchmarks/experiments/adversarial_training.py
synth-cxr-adversarial-transfer --eps 1`` (not part of the test suite; about 20 min on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from baselines import deep
from benchmark.scoring.compare import compare
from benchmark.scoring.evaluate import evaluate
from benchmark.scoring.probes.adversarial import AdversarialProbe, attacked_split
from benchmark.tasks.task import Task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task")
    parser.add_argument("--eps", type=int, default=1, help="grey levels (1/255)")
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    task = Task.load(args.task, build=True)
    X, y, _ = task.split("train")
    Xv, yv, _ = task.split("val")
    eps = args.eps / 255
    base = deep.default_config("image-cnn")
    config = dataclasses.replace(base, adv_eps=eps, adv_steps=args.steps, patience=args.patience)
    probe = AdversarialProbe(
        eps=[0.0, eps], l2_eps=[], attacks=["fgsm", "pgd", "apgd-ce", "apgd-margin"]
    )
    reports = {}
    for method in ("pgd-at", "erm"):
        start = time.perf_counter()
        net = deep.train_network(
            "image-cnn", X, y, Xv, yv, seed=args.seed, method=method, config=config
        )
        reports[method] = evaluate(net, task, probes=["performance", probe], name=method)
        print(f"{method}: trained and scored in {time.perf_counter() - start:.0f} s", flush=True)
    result = compare(reports["pgd-at"], reports["erm"])
    split = attacked_split("id_test", "Linf", eps)
    for d in result.differences:
        if d.metric in ("accuracy", "auroc") and d.split in ("id_test", split):
            print(
                f"{d.split:22s} {d.metric:9s} pgd-at {d.a:.3f}  erm {d.b:.3f}  "
                f"diff {d.diff:+.3f} [{d.ci_low:+.3f}, {d.ci_high:+.3f}]"
            )


if __name__ == "__main__":
    main()
