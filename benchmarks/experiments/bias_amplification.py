"""The bias-amplification curve of ``synth-cxr-bias-amplification`` (issue 5).

Rebuilds the task with other shares of women in the development cohort (the deployment
population stays 50% women), trains the card's ERM baseline (small CNN, seed 0) on each,
and reports AUROC for women and men on ``ood_test`` and the signed gaps (women minus men)
with 95% patient-bootstrap CIs. The variants are drafts in a temporary folder; the
released task is untouched.

Run: ``.venv/bin/python benchmarks/experiments/bias_amplification.py [--shares 0.5 0.3 0.1 0.05]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml

from baselines.methods import families
from benchmark.scoring.evaluate import evaluate
from benchmark.tasks.build import build_task
from benchmark.tasks.registry import BUILTIN_TASKS
from benchmark.tasks.spec import load_spec
from benchmark.tasks.task import Task

TASK = "synth-cxr-bias-amplification"


def variant(share: float, root: Path) -> Path:
    """The spec as a draft whose development cohort has ``share`` women."""
    raw = yaml.safe_load((BUILTIN_TASKS / TASK / "1.0.0.yaml").read_text(encoding="utf-8"))
    raw.pop("manifest_sha256", None)
    raw["source"]["params"]["config"]["cohorts"][0]["female"] = share
    path = root / TASK / "1.0.0.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shares", type=float, nargs="+", default=[0.5, 0.3, 0.1, 0.05])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()
    rows = []
    for share in args.shares:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="medfail-curve-") as tmp:
            path = variant(share, Path(tmp) / "tasks")
            spec = load_spec(path)
            built = build_task(spec, path, root=Path(tmp) / "cache")
            task = Task(spec, built.path, built.manifest)
            (family,) = families("erm", task, "cnn")
            model = family.fit_and_save(task, args.seed, Path(tmp))
            report = evaluate(str(model), task, probes=["fairness"], n_boot=args.n_boot)
        row: dict[str, object] = {"female_share": share}
        for metric, group in (("auroc", "F"), ("auroc", "M"), ("auroc_gap", "F"), ("tpr_gap", "F")):
            m = report.metric(metric, "ood_test", attribute="sex", group=group)
            row[f"{metric}_{group}"] = [m.value, m.ci_low, m.ci_high]
        rows.append(row)
        gap = row["auroc_gap_F"]
        print(
            f"women {share:.0%} of training: AUROC F {row['auroc_F'][0]:.3f}, "  # type: ignore[index]
            f"M {row['auroc_M'][0]:.3f}, gap {gap[0]:+.3f} [{gap[1]:+.3f}, {gap[2]:+.3f}] "  # type: ignore[index]
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
