"""The ``medfail`` console entry point, kept tiny: the command line's heavy imports happen
inside :func:`main`, so Ctrl-C during start-up is one line, not a traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from benchmark.cli.root import main as run
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    run()
