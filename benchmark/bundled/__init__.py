"""Data that ships with the package: the built-in task specs (``tasks/``), the failure-case
catalogue (``cases/``) and the leaderboard app (``leaderboard/``).

They live at the repository's top level (the project's layout); these links make them
package data, so a non-editable install carries them and code finds them with
``importlib.resources`` instead of paths relative to a source checkout.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def bundled(name: str) -> Path:
    """The folder ``name`` (``tasks``, ``cases`` or ``leaderboard``) as a file-system path."""
    return Path(str(files(__name__) / name)).resolve()
