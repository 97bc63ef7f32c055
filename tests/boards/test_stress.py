"""The underspecification stress test: many seeds of one recipe, their spread ID and OOD."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import chi2, spearmanr
from typer.testing import CliRunner

from benchmark.boards.entries import load_runs
from benchmark.boards.stress import stress
from benchmark.cli import app
from benchmark.errors import MedFailError


def test_the_stress_command_trains_the_seeds_and_recomputes_from_them(
    tiny: Path, tmp_path: Path
) -> None:
    out = tmp_path / "subs"
    args = ["stress", "--task", "tiny-task", "--family", "mlp", "--out", str(out), "--serial"]
    result = CliRunner().invoke(app, [*args, "--seeds", "0", "1", "2", "3", "--json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    _, reports = load_runs(out / "tiny-task@1.0.0" / "erm-mlp")
    assert sorted(reports) == [0, 1, 2, 3]
    auroc = {
        split: np.array(
            [reports[s].metric("auroc", split, probe="performance").value for s in range(4)]
        )
        for split in ("id_test", "ood_test")
    }
    row = next(r for r in records if (r["metric"], r["split"]) == ("auroc", "ood_test"))
    assert row["sd"] == pytest.approx(np.std(auroc["ood_test"], ddof=1))
    assert row["range"] == pytest.approx(np.ptp(auroc["ood_test"]))
    low, high = (np.sqrt(3 * row["sd"] ** 2 / chi2.ppf(q, 3)) for q in (0.975, 0.025))
    assert (row["sd_ci_low"], row["sd_ci_high"]) == pytest.approx((low, high))
    rho = next(r for r in records if r["metric"] == "auroc" and "spearman_rho" in r)
    r = spearmanr(*auroc.values()).statistic
    assert rho["spearman_rho"] == pytest.approx(r)
    if abs(r) < 1:  # Fisher z with Fieller's SE
        half = 1.959963984540054 * np.sqrt(1.06 / (4 - 3))
        expected = (np.tanh(np.arctanh(r) - half), np.tanh(np.arctanh(r) + half))
        assert (rho["rho_ci_low"], rho["rho_ci_high"]) == pytest.approx(expected)
    again = stress(reports)
    assert "ID AUROC spread" in again.headline and "over 4 seeds" in again.headline
    few = CliRunner().invoke(app, [*args, "--seeds", "0", "1"])
    assert isinstance(few.exception, MedFailError)
    assert str(few.exception) == "a stress test needs at least 3 seeds; got 2"
