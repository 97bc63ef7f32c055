"""``medfail leaderboard``: the Streamlit app on a submissions folder (read-only)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from benchmark.bundled import bundled
from benchmark.cli.common import (
    out,
)
from benchmark.errors import (
    MedFailError,
)


def leaderboard_cmd(
    root: Path = typer.Option(
        Path("submissions"), "--dir", help="Submissions root (default: ./submissions)."
    ),
    port: int = typer.Option(8501, "--port"),
    address: str = typer.Option(
        "127.0.0.1",
        "--address",
        help="Interface to listen on; the default is this machine only. Use 0.0.0.0 to "
        "expose it to the network on purpose.",
    ),
) -> None:
    """Launch the Streamlit leaderboard (read-only) on a submissions folder."""
    import subprocess

    app_file = bundled("leaderboard") / "app.py"
    if not app_file.is_file():
        raise MedFailError(f"the leaderboard app is missing at {app_file}; reinstall MedFail")
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_file),
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--",
        "--dir",
        str(root.resolve()),
    ]
    out.print(f"leaderboard on http://{address}:{port} (Ctrl-C to stop): {root}", soft_wrap=True)
    sys.exit(subprocess.call(cmd))
