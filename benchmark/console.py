"""The ``medfail`` console entry point, kept tiny: the command line's heavy imports happen
inside :func:`main`, so Ctrl-C during start-up is one line, not a traceback, and a closed
pipe (``| head``) ends the command without an error."""

from __future__ import annotations

import signal
import sys


def main() -> None:
    # `medfail ... --csv | head`: when the reader goes away, end quietly as Unix tools do
    # (outputs are written to a temp file and renamed, so nothing is left half-written)
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        from benchmark.cli.root import main as run
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    run()
