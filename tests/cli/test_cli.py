"""The medfail command line, run as a user would (in-process and as a console script)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from benchmark.cli import app
from tests.conftest import write_tiny_task

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_build_verify_list_info(tiny: Path) -> None:
    code, text = run("tasks", "build", "tiny-task")
    assert code == 0, text
    assert "using the newest draft 1.0.0" in text
    assert "tiny-task@1.0.0: built" in text
    code, text = run("tasks", "pin", "tiny-task@1.0.0")
    assert code == 0 and "released with manifest_sha256" in text
    code, text = run("tasks", "build", "tiny-task")
    assert "using 1.0.0, the newest released version" in text
    assert "already built and verified" in text
    code, text = run("tasks", "verify", "tiny-task@1.0.0")
    assert code == 0 and "6 files verified" in text
    code, text = run("tasks", "list")
    row = next(line for line in text.splitlines() if "tiny-task@1.0.0" in line)
    assert code == 0 and row.split()[-2:] == ["released", "verified"]
    code, text = run("tasks", "info", "tiny-task@1.0.0", "--raw")
    assert code == 0 and "## Protocol" in text and "| ood_test | away |" in text


def test_publish_pull_cli(tiny: Path, tmp_path: Path) -> None:
    assert run("tasks", "build", "tiny-task")[0] == 0
    remote = tmp_path / "remote"
    code, text = run("tasks", "publish", "tiny-task@1.0.0", "--to", str(remote))
    assert code == 0, text
    code, text = run("tasks", "pull", "tiny-task@1.0.0", "--from", str(remote))
    assert code == 0 and "pulled and verified 6 files" in text


def console(*args: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, **env_extra}
    script = Path(sys.executable).parent / "medfail"
    return subprocess.run([str(script), *args], capture_output=True, text=True, env=env)


def test_errors_are_one_line_without_traceback(tiny: Path) -> None:
    done = console("tasks", "verify", "nope", env_extra={})
    assert done.returncode == 1
    pattern = r"error: unknown task 'nope'; \d+ tasks are known: medfail tasks list"
    assert re.fullmatch(pattern, done.stderr.strip())
    assert "Traceback" not in done.stderr


def test_debug_shows_the_traceback(tiny: Path) -> None:
    done = console("--debug", "tasks", "verify", "nope", env_extra={})
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "TaskNotFoundError" in done.stderr


def test_verify_reports_damage_by_file(tiny: Path) -> None:
    assert run("tasks", "build", "tiny-task")[0] == 0
    from benchmark.tasks.cache import task_dir

    (task_dir("tiny-task", "1.0.0") / "data" / "val-00000-of-00001.parquet").unlink()
    done = console("tasks", "verify", "tiny-task@1.0.0", env_extra={})
    assert done.returncode == 1
    assert "data/val-00000-of-00001.parquet: missing" in done.stderr


def test_publish_and_pull_without_a_version_use_the_newest_released(
    tiny: Path, tmp_path: Path
) -> None:
    """As the README says for every ID[@VERSION] argument (it used to be refused)."""
    assert run("tasks", "pin", "tiny-task@1.0.0")[0] == 0
    remote = tmp_path / "remote"
    code, text = run("tasks", "publish", "tiny-task", "--to", str(remote))
    assert code == 0, text
    assert "using 1.0.0, the newest released version" in text
    assert (remote / "tiny-task" / "1.0.0" / "manifest.json").is_file()
    code, text = run("tasks", "pull", "tiny-task", "--from", str(remote))
    assert code == 0, text
    assert "tiny-task@1.0.0: pulled and verified" in text


def test_pulling_an_unknown_task_needs_a_version(tiny: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["tasks", "pull", "mystery-task", "--from", str(tmp_path)])
    assert result.exit_code != 0
    assert "name one: medfail tasks pull mystery-task@VERSION" in str(result.exception)


def test_ctrl_c_during_start_up_is_one_line() -> None:
    """Ctrl-C while the CLI's heavy modules import: one line and exit 130, no traceback.
    The interrupt is raised deterministically by an import hook on typer."""
    code = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, *args):\n"
        "        if name == 'typer':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "from benchmark.console import main\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 130
    assert result.stderr == "error: interrupted\n"


def test_ctrl_c_during_a_command_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import benchmark.cli.root as cli

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "app", interrupted)
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 130
    assert capsys.readouterr().err.strip() == "error: interrupted"


def test_rich_markup_in_user_text_is_printed_verbatim(tmp_path: Path, monkeypatch) -> None:
    import subprocess
    import sys

    root = tmp_path / "tasks"
    path = write_tiny_task(root)
    path.write_text(path.read_text().replace("reference: F", 'reference: "[/x]"'))
    monkeypatch.setenv("MEDFAIL_TASKS_PATH", str(root))
    script = Path(sys.executable).parent / "medfail"
    done = subprocess.run(
        [str(script), "tasks", "build", "tiny-task@1.0.0"], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "[/x]" in done.stderr and "Traceback" not in done.stderr


def test_the_leaderboard_listens_on_this_machine_only_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr("subprocess.call", lambda cmd: calls.append(cmd) or 0)
    for extra in ([], ["--address", "0.0.0.0"]):
        result = runner.invoke(app, ["leaderboard", "--dir", str(tmp_path), *extra])
        assert result.exit_code == 0, result.output
    first, second = calls
    assert first[first.index("--server.address") + 1] == "127.0.0.1"
    assert second[second.index("--server.address") + 1] == "0.0.0.0"


@pytest.mark.parametrize(
    ("option", "typo", "hint"),
    [
        ("--domain", "radiolgy", "radiology"),
        ("--dimension", "shfit", "shift"),
        ("--layer", "dta", "data"),
    ],
)
def test_an_unknown_catalogue_filter_is_an_error_with_suggestions(
    option: str, typo: str, hint: str
) -> None:
    """It used to answer "0 cases" silently."""
    result = runner.invoke(app, ["cases", "list", option, typo])
    assert result.exit_code != 0
    assert f"did you mean {hint}?" in str(result.exception)


def test_tasks_list_fits_80_columns_and_has_json_and_csv(tiny: Path) -> None:
    import csv
    import io
    import json

    result = runner.invoke(app, ["tasks", "list"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in result.output  # no header or cell cut
    assert any(line.split()[:1] == ["tiny-task@1.0.0"] for line in lines)
    records = json.loads(runner.invoke(app, ["tasks", "list", "--json"]).output)
    tiny_row = next(r for r in records if r["task"] == "tiny-task")
    assert tiny_row["release"] == "draft" and tiny_row["build"] == "not built"
    assert tiny_row["taxonomy"] == "data/distribution-shift/site"
    rows = list(csv.DictReader(io.StringIO(runner.invoke(app, ["tasks", "list", "--csv"]).output)))
    assert [r["task"] for r in rows] == [r["task"] for r in records]


def test_every_command_is_listed_whole_in_help_at_80_columns() -> None:
    """`medfail --help` and each group's help list every command on one line, without
    the "..." of a cut description (each command has a short help of at most 55
    characters). Typer builds on its own copy of click: groups are found by duck typing."""
    import typer

    from benchmark.cli import app

    def walk(group: Any) -> list[Any]:
        ctx = group.make_context(group.name or "medfail", [], resilient_parsing=True)
        found = []
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            found.append(cmd)
            if hasattr(cmd, "list_commands"):
                found += walk(cmd)
        return found

    commands = walk(typer.main.get_command(app))
    assert len(commands) >= 20
    for cmd in commands:
        short = cmd.get_short_help_str(limit=55)
        assert short and not short.endswith("..."), (cmd.name, short)
