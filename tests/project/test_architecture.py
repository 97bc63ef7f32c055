"""The layout's promises: the layer contract holds, there is no import cycle (function-level
imports included), and reading tasks, reports and boards never loads torch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CYCLES_TOOL = ROOT.parent / "shared" / "tools" / "import_cycles.py"


def test_the_layer_contracts_hold() -> None:
    """import-linter's layers and torch-free contracts (.importlinter), as CI runs them."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


@pytest.mark.skipif(not CYCLES_TOOL.is_file(), reason="../shared/tools is not beside the repo")
def test_no_import_cycles() -> None:
    result = subprocess.run(
        [sys.executable, str(CYCLES_TOOL), ".", "benchmark", "baselines", "leaderboard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout
    assert "no import cycles" in result.stdout


def test_the_leaderboard_and_a_tabular_build_do_not_import_torch(tmp_path: Path) -> None:
    """Importing the app's modules, reading the committed boards (point values recomputed;
    the board with the fewest reports with every interval too; the committed-entries test
    rechecks them), and building and loading a tabular task leave torch unloaded."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT / "leaderboard")!r})
        import boards  # the app's shared module (streamlit, plotly, the board readers)
        import benchmark
        from benchmark.boards.entries import load_board, load_boards
        from benchmark.catalogue.browse import stats
        from benchmark.catalogue.cases import CASES_ROOT, load_cases
        from benchmark.tasks.task import Task
        from tests.conftest import write_tiny_task

        load_boards({str(ROOT / "submissions")!r}, check="values")
        folders = __import__("pathlib").Path({str(ROOT / "submissions")!r}).glob("*@*")
        load_board(min(folders, key=lambda f: (len(list(f.glob("*/seed-*"))), f.name)))
        stats(load_cases(CASES_ROOT))
        write_tiny_task(__import__("pathlib").Path({str(tmp_path / "tasks")!r}))
        Task.load("tiny-task", build=True).split("train")
        print("TORCH" if "torch" in sys.modules else "NO-TORCH")
        """
    )
    env = os.environ | {
        "MEDFAIL_TASKS_PATH": str(tmp_path / "tasks"),
        "MEDFAIL_CACHE": str(tmp_path / "cache"),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("NO-TORCH")


def test_import_benchmark_is_light() -> None:
    """The facade imports names on first use (PEP 562): no torch, pandas or pydantic."""
    code = (
        "import sys, benchmark; print(sorted({'torch', 'pandas', 'pydantic'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
    code = "import benchmark; print(benchmark.Task.__module__, benchmark.evaluate.__module__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["benchmark.tasks.task", "benchmark.scoring.evaluate"]
