"""Does a shift statistic warn before the model fails? (issue 21)

For the committed ERM model (seed 0) of every offline task, pair each shifted sample with
the model's measured AUROC drop from its ``id_test`` sample, and ask how well each shift
statistic, computed without labels, tells the samples on which the model failed (a drop
larger than ``MARGIN``) from the others.

Shifted samples (at most ``ROWS`` rows each, seeded): the task's own ``ood_test``; its
``id_test`` (the false-alarm control: same distribution, no drop); on image tasks,
``id_test`` under six corruptions (``CORRUPTIONS``, those the modality allows) at
severities 1-5 (:mod:`benchmark.perturbations.corruptions`); on series tasks, ``id_test``
with a sensor offset added to one channel at a time (0.5, 1, 2, 3 and 4 of the channel's
SD on val: drift like the sensor-drift task's). The representation is the model's
``embed()``, standardised with the val sample (the reference), as in the
``shift_diagnostics`` probe; the statistics are its MMD² (200 permutations; the flag at
p < 0.05), KL and W1 means over the first 10 principal components, and the held-out AUROC
of a domain classifier.

Per statistic: the AUROC of the statistic for "the model failed" across all samples, and
Spearman's ρ between the statistic and the drop, each with a 95% bootstrap CI over samples
resampled within tasks (1,000 replicates); for the MMD flag, its sensitivity and
specificity. Output: ``docs/data/shift_warning.csv`` (one row per sample) and
``docs/shift_warning.png``; the summary is printed and quoted in docs/results.md.

Run: ``.venv/bin/python benchmarks/experiments/shift_warning.py`` (about 20 minutes on 2
cores; not part of the test suite).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from benchmark.models.loading import load_model
from benchmark.perturbations.corruptions import corrupt, for_modality
from benchmark.stats import shift
from benchmark.tasks.task import Task

ROWS = 300
MARGIN = 0.05
CORRUPTIONS = ("gaussian_noise", "gaussian_blur", "jpeg", "contrast", "brightness", "occlusion")
OFFSETS = (0.5, 1.0, 2.0, 3.0, 4.0)
STATISTICS = ("mmd2", "c2st_auroc", "kl_mean", "wasserstein_mean")
REPO = Path(__file__).resolve().parents[2]


def _model_file(entry: Path) -> Path | None:
    files = [
        p for p in (entry / "seed-0").glob("model.*") if p.suffix in (".safetensors", ".skops")
    ]
    return files[0] if files else None


def _sample(
    task: Task, split: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X, y, meta = task.split(split)
    rows = np.sort(rng.choice(len(y), min(ROWS, len(y)), replace=False))
    X = X.iloc[rows] if hasattr(X, "iloc") else np.asarray(X)[rows]
    return X, np.asarray(y)[rows], meta["sample_id"].astype(str).to_numpy()[rows]


def _embed(model: object, X: object) -> np.ndarray:
    embed = model.embed  # type: ignore[attr-defined]
    return np.concatenate(
        [np.asarray(embed(X[i : i + 256]), dtype=np.float64) for i in range(0, len(X), 256)]
    )


def _auroc(model: object, X: object, y: np.ndarray) -> float:
    proba = np.asarray(model.predict_proba(X))  # type: ignore[attr-defined]
    return float(roc_auc_score(y, proba[:, 1])) if len(set(y)) == 2 else float("nan")


def _shifted(
    task: Task, X: np.ndarray, ids: np.ndarray, val: np.ndarray
) -> list[tuple[str, str, np.ndarray]]:
    """(kind, name, inputs) of the synthetic shifts of one task's id_test sample."""
    array = task.spec.features.array
    out = []
    if array is not None and array.kind == "image":
        allowed = set(for_modality(task.spec.modality, X.shape[1]))
        for name in [c for c in CORRUPTIONS if c in allowed]:
            out += [("corruption", f"{name}@{s}", corrupt(X, name, s, ids)) for s in range(1, 6)]
    elif array is not None and array.kind == "series":
        sd = np.nanstd(val, axis=(0, 2))
        for channel, label in enumerate(array.channels):
            for k in OFFSETS:
                drifted = X.copy()
                drifted[:, channel] += k * sd[channel]
                out.append(("sensor offset", f"{label}+{k:g}sd", drifted))
    return out


def _rows_of(entry: Path, seed: int) -> list[dict[str, object]]:
    ref = entry.parent.name
    task = Task.load(ref, build=True)
    model = load_model(str(_model_file(entry)), task)
    rng = np.random.default_rng(seed)
    val_X, _, _ = _sample(task, "val", rng)
    reference = _embed(model, val_X)
    mean, sd = reference.mean(0), reference.std(0)
    keep = sd > 0
    ref_z = (reference[:, keep] - mean[keep]) / sd[keep]
    basis = np.linalg.svd(ref_z - ref_z.mean(0), full_matrices=False)[2][:10].T
    id_X, id_y, id_ids = _sample(task, "id_test", rng)
    base = _auroc(model, id_X, id_y)
    samples = [("control", "id_test", id_X, id_y)]
    if "ood_test" in task.splits:
        ood_X, ood_y, _ = _sample(task, "ood_test", rng)
        samples.append(("task shift", "ood_test", ood_X, ood_y))
    if not hasattr(id_X, "iloc"):
        val_arr = np.asarray(val_X)
        samples += [(k, n, x, id_y) for k, n, x in _shifted(task, id_X, id_ids, val_arr)]
    rows = []
    for i, (kind, name, X, y) in enumerate(samples):
        z = (_embed(model, X)[:, keep] - mean[keep]) / sd[keep]
        values, _ = shift.distances(ref_z, z, basis=basis, n_permutations=200, seed=seed + i)
        _, labels, scores = shift.domain_scores(ref_z, np.nan_to_num(z), seed=seed + i)
        rows.append(
            {
                "task": ref,
                "kind": kind,
                "sample": name,
                "drop": base - _auroc(model, X, y),
                "mmd2": values["mmd2"],
                "mmd2_p_value": values["mmd2_p_value"],
                "shift_flagged": values["shift_flagged"],
                "kl_mean": values["kl_mean"],
                "wasserstein_mean": values["wasserstein_mean"],
                "c2st_auroc": float(roc_auc_score(labels, scores)),
            }
        )
        print(f"{ref} {name}: drop {rows[-1]['drop']:+.3f} mmd2 {values['mmd2']:.4f}", flush=True)
    return rows


def _within_tasks(frame: pd.DataFrame, n_boot: int, seed: int) -> list[np.ndarray]:
    """Row indices of ``n_boot`` bootstrap resamples, rows resampled within each task."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(frame.task.to_numpy() == t) for t in frame.task.unique()]
    return [np.concatenate([rng.choice(g, len(g)) for g in groups]) for _ in range(n_boot)]


def summarise(frame: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per statistic: AUROC for failure (drop > MARGIN) and Spearman's rho with the drop,
    with percentile CIs over resamples within tasks; the MMD flag's sensitivity and
    specificity."""
    from scipy.stats import spearmanr

    failed = (frame["drop"] > MARGIN).to_numpy()
    picks = _within_tasks(frame, n_boot, seed)
    out = []
    for stat in (*STATISTICS, "shift_flagged"):
        v = frame[stat].to_numpy()

        def auroc(rows: np.ndarray, v: np.ndarray = v) -> float:
            f = failed[rows]
            return float(roc_auc_score(f, v[rows])) if 0 < f.sum() < len(f) else np.nan

        def rho(rows: np.ndarray, v: np.ndarray = v) -> float:
            return float(spearmanr(v[rows], frame["drop"].to_numpy()[rows]).statistic)

        everything = np.arange(len(frame))
        row = {
            "statistic": stat,
            "auroc_for_failure": auroc(everything),
            "spearman_rho": rho(everything),
        }
        for name, fn in (("auroc_for_failure", auroc), ("spearman_rho", rho)):
            reps = np.array([fn(p) for p in picks])
            row[f"{name}_low"], row[f"{name}_high"] = np.nanpercentile(reps, [2.5, 97.5])
        if stat == "shift_flagged":
            flagged = v == 1
            row["sensitivity"] = float(flagged[failed].mean())
            row["specificity"] = float((~flagged[~failed]).mean())
        out.append(row)
    return pd.DataFrame(out)


def plot(frame: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(STATISTICS), figsize=(3.4 * len(STATISTICS), 3.4))
    for ax, stat in zip(axes, STATISTICS, strict=True):
        for i, (kind, part) in enumerate(frame.groupby("kind")):
            ax.scatter(part[stat], part["drop"], s=10, alpha=0.7, color=f"C{i}", label=kind)
        ax.axhline(MARGIN, color="grey", lw=0.8, ls="--")
        ax.set_xlabel(stat)
        ax.set_ylabel("AUROC drop from id_test")
    axes[0].legend(fontsize=7, frameon=False)
    fig.suptitle("Shift statistic (no labels) against the model's measured drop", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--summarise-only", action="store_true", help="read the CSV instead of measuring"
    )
    args = parser.parse_args()
    csv = REPO / "docs" / "data" / "shift_warning.csv"
    if args.summarise_only:
        frame = pd.read_csv(csv)
    else:
        torch.set_num_threads(1)
        rows = []
        for entry in sorted((REPO / "submissions").glob("*/erm-*")):
            if entry.name in ("erm-gbm", "erm-logistic") or _model_file(entry) is None:
                continue  # tables: the MLP, which has embed()
            rows += _rows_of(entry, args.seed)
        frame = pd.DataFrame(rows)
        frame.to_csv(csv, index=False, float_format="%.6g")
    summary = summarise(frame)
    print(summary.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    plot(frame, REPO / "docs" / "shift_warning.png")


if __name__ == "__main__":
    main()
