"""The ``medfail`` command line: one module per command group (``tasks``, ``cases``,
``scoring``, ``baselines``, ``leaderboard``), the shared helpers in ``common`` and the
result tables in ``tables``; ``root`` assembles them into the ``medfail`` app."""

from __future__ import annotations

from benchmark.cli.root import app, main

__all__ = ["app", "main"]
