"""The ERM reference a task's mCE is normalised by (ImageNet-C uses AlexNet's errors).

``make_reference(ref)`` trains the task's ERM baseline (one family, one seed), scores it
with the corruption probe and writes its balanced errors per corruption and severity to
``tasks/<id>/<version>.corruption.json``, tied to the build's content digest. Every later
report on that build divides by these constants.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from baselines.methods import families
from benchmark.scoring.evaluate import evaluate
from benchmark.scoring.probes.corruption import (
    CorruptionProbe,
    CorruptionReference,
    reference_path,
    write_reference,
)
from benchmark.tasks.registry import resolve
from benchmark.tasks.task import Task


def make_reference(
    ref: str, *, family: str = "cnn", seed: int = 0, n_boot: int = 200, root: Path | None = None
) -> tuple[CorruptionReference, Path]:
    """Train ERM ``family`` on ``seed``, score it under every corruption, write the file."""
    resolved = resolve(ref, root)
    task = Task.load(resolved.spec.ref, build=True, root=root)
    (fam,) = families("erm", task, family)
    probe = CorruptionProbe(normalise=False)
    with tempfile.TemporaryDirectory(prefix="medfail-corruption-") as tmp:
        model_file = fam.fit_and_save(task, seed, Path(tmp))
        report = evaluate(str(model_file), task, probes=[probe], n_boot=n_boot)
    result = report.probe("corruption")
    errors: dict[str, dict[str, float]] = {}
    for m in result.metrics:
        if m.metric == "balanced_error" and m.group is not None and m.attribute is not None:
            if m.value is None:
                raise ValueError(f"{ref}: balanced error undefined under {m.attribute} {m.group}")
            errors.setdefault(m.attribute, {})[m.group] = m.value
    split = result.config["split"]
    clean = report.metric("clean_balanced_error", split, probe="corruption").value
    assert clean is not None
    reference = CorruptionReference(
        task=resolved.spec.ref,
        content_sha256=task.manifest.content_sha256,
        split=split,
        n=result.config["n_used"],
        seed=seed,
        baseline={"method": "erm", "family": fam.name, "config": fam.config},
        clean=clean,
        errors=errors,
    )
    path = reference_path(resolved.spec_path)
    write_reference(path, reference)
    return reference, path
