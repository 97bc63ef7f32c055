"""The main job (README command 1) on the embedded task, shortened: 1 seed, 20 resamples."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from benchmark.cli import REPO_ROOT, app
from benchmark.submissions import load_boards


def test_demo_trains_scores_writes_and_ranks(tmp_path: Path) -> None:
    before = sorted(p.name for p in (REPO_ROOT / "submissions").iterdir())
    out = tmp_path / "results"
    result = CliRunner().invoke(
        app, ["demo", "--out", str(out), "--seeds", "0", "--n-boot", "20"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "built and verified (pinned)" in result.output
    assert "ranked by AUROC" in result.output
    assert "medfail leaderboard --dir" in result.output
    (board,) = load_boards(out)
    assert board.task == "flchain-mortality-temporal@1.0.0"
    assert board.problems == []
    assert all(r.task.released for e in board.entries for r in e.reports.values())
    assert sorted(e.metadata.name for e in board.entries) == [
        "erm-gbm",
        "erm-mlp",
        "mixup-mlp",
        "reweight-mlp",
    ]
    # the demo never writes into the repository's submissions/
    assert sorted(p.name for p in (REPO_ROOT / "submissions").iterdir()) == before
