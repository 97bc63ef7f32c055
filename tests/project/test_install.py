"""A non-editable install carries everything a user needs: the task specs, the failure
cases and the leaderboard app travel as package data, found through importlib.resources.

The wheel is built from this checkout and installed, without its dependencies, into a
fresh virtual environment that borrows them from the running one (no download); the
commands then run from an empty folder, so nothing can be found through the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        " ".join(args) + "\n" + result.stdout[-3000:] + result.stderr[-3000:]
    )
    return result.stdout


def test_a_wheel_install_lists_tasks_and_scores_a_model(tmp_path: Path) -> None:
    env = os.environ | {"MEDFAIL_CACHE": str(tmp_path / "cache"), "PIP_NO_INDEX": "1"}
    env.pop("MEDFAIL_TASKS_PATH", None)
    wheels = tmp_path / "wheels"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        tmp_path,
        env,
    )
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    site = next((venv / "lib").glob("python3*/site-packages"))
    # the dependencies come from the running environment, after the venv's own packages
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = venv / "bin" / "python"
    [wheel] = wheels.glob("medfail-*.whl")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            str(wheel),
        ],
        tmp_path,
        env,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = run([str(python), "-c", "import benchmark; print(benchmark.__file__)"], work, env)
    assert where.startswith(str(site)), where  # the wheel's copy, not the checkout

    medfail = str(venv / "bin" / "medfail")
    listing = run([medfail, "tasks", "list"], work, env)
    assert "flchain-mortality-temporal" in listing and "synth-cxr-shortcut" in listing
    train = (
        "import skops.io as sio; from baselines.tabular import GBMConfig, train_gbm; "
        "from benchmark.tasks.task import Task; "
        "t = Task.load('whas500-mortality-subgroups', build=True); "
        "sio.dump(train_gbm(t, 0, GBMConfig(max_iter=20)), 'gbm.skops')"
    )
    run([str(python), "-c", train], work, env)
    run(
        [
            medfail,
            "evaluate",
            "--task",
            "whas500-mortality-subgroups",
            "--model",
            "gbm.skops",
            "--out",
            "report",
            "--n-boot",
            "40",
        ],
        work,
        env,
    )
    assert (work / "report" / "report.json").is_file()
    cases = run([medfail, "cases", "stats"], work, env)
    assert "84 cases" in cases
    app = run(
        [
            str(python),
            "-c",
            "from benchmark.bundled import bundled; "
            "print((bundled('leaderboard') / 'app.py').is_file())",
        ],
        work,
        env,
    )
    assert app.strip() == "True"
