"""The ``medfail`` command line (typer + rich): the root app and its command groups.

Errors print as one line per problem; ``medfail --debug ...`` shows the traceback."""

from __future__ import annotations

import sys

import typer

from benchmark.cli.baselines import baselines_app, demo, guidelines_cmd
from benchmark.cli.cases import cases_app
from benchmark.cli.common import (
    print_error,
    state,
)
from benchmark.cli.leaderboard import leaderboard_cmd
from benchmark.cli.scoring import compare_cmd, evaluate_cmd, stability_cmd
from benchmark.cli.stress import stress_cmd
from benchmark.cli.sweep import sweep_cmd
from benchmark.cli.tasks import tasks_app
from benchmark.errors import (
    MedFailError,
)

app = typer.Typer(
    help="MedFail: benchmark tasks for the ways deep learning fails in healthcare.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)

# one line each in `medfail --help` (at most 55 characters, so 80 columns show them whole)
app.add_typer(tasks_app, name="tasks", short_help="List, build, verify, publish and pull tasks.")
app.add_typer(cases_app, name="cases", short_help="The catalogue of real failure cases.")
app.add_typer(baselines_app, name="baselines", short_help="Train and score the baselines.")
app.command("evaluate", short_help="Score a model on a task, every number with a CI.")(evaluate_cmd)
app.command("compare", short_help="Paired differences A - B, with CIs.")(compare_cmd)
app.command("stability", short_help="Do an entry's seeds agree on SHAP importance?")(stability_cmd)
app.command(
    "sweep",
    context_settings={"allow_extra_args": True},
    short_help="Every method x task x seed, on Ray; resumable.",
)(sweep_cmd)
app.command(
    "stress",
    context_settings={"allow_extra_args": True},
    short_help="Many seeds of one recipe: spread ID vs OOD.",
)(stress_cmd)
app.command("guidelines", short_help="Which methods beat ERM, per failure kind.")(guidelines_cmd)
app.command("leaderboard", short_help="Open the leaderboard (Streamlit, read-only).")(
    leaderboard_cmd
)
app.command(
    "demo",
    context_settings={"allow_extra_args": True},
    short_help="The main job, offline: build, train, score, rank.",
)(demo)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    state["debug"] = debug


def main() -> None:
    """Console entry point: MedFail errors become one line each, exit status 1; Ctrl-C is
    one line and exit status 130."""
    try:
        app()
    except (MedFailError, OSError) as e:
        if state["debug"]:
            raise
        print_error(str(e) or type(e).__name__)
        sys.exit(1)
    except KeyboardInterrupt:
        if state["debug"]:
            raise
        print_error("interrupted")
        sys.exit(130)
