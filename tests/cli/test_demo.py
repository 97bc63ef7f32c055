"""The main job (README command 1) on the embedded task, shortened: 1 seed, 20 resamples."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from benchmark.boards.entries import load_boards
from benchmark.cli import app
from benchmark.tasks.registry import resolve
from tests import REPO

REPO_ROOT = REPO


def test_demo_trains_scores_writes_and_ranks(tmp_path: Path) -> None:
    before = sorted(p.name for p in (REPO_ROOT / "submissions").iterdir())
    out = tmp_path / "results"
    result = CliRunner().invoke(
        app, ["demo", "--out", str(out), "--seeds", "0", "--n-boot", "40"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "built and verified (pinned)" in result.output
    assert "ranked by AUROC" in result.output
    assert "medfail leaderboard --dir" in result.output
    boards = {b.task: b for b in load_boards(out)}
    assert sorted(boards) == [  # every real table shipped in a package, none of the others
        "actg320-aids-cd4-shift@1.1.0",
        "flchain-mortality-temporal@1.1.0",
        "ncctg-lung-mortality-site@1.1.0",
        "whas500-mortality-subgroups@1.1.0",
    ]
    for board in boards.values():
        assert board.problems == []
        assert all(r.task.released for e in board.entries for r in e.reports.values())
        names = {e.metadata.name for e in board.entries}
        tables = {  # every method that applies to tables, on its families
            "erm-gbm",
            "erm-logistic",
            "erm-mlp",
            "mixup-mlp",
            "reweight-mlp",
            "group-dro-mlp",
            "adversarial-debiasing-mlp",
            "fairlearn-eg-dp-logistic",
            "fairlearn-eg-eo-logistic",
            "threshold-optimizer-mlp",
        }
        with_ood_val = {"dann-mlp", "coral-mlp"}  # the tables with an ood_val split
        has_ood_val = "ood_val" in resolve(board.task).spec.splits.present()
        assert names == tables | (with_ood_val if has_ood_val else set()), board.task
    # tasks whose data are not on this machine are skipped with how to obtain them
    assert "pathmnist-site-shift@1.0.0: skipped, its data are not here" in result.output
    assert "chexpert-effusion-sex@1.0.0: skipped" in result.output
    # the demo never writes into the repository's submissions/
    assert sorted(p.name for p in (REPO_ROOT / "submissions").iterdir()) == before
