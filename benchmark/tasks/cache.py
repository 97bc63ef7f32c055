"""Where built tasks live: ``$MEDFAIL_CACHE`` or the user cache dir.

Layout: ``<root>/tasks/<id>/<version>/`` holding ``manifest.json``, ``README.md`` (the
card), ``spec.yaml`` and ``data/<split>-<i>-of-<n>.parquet``.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_CACHE = "MEDFAIL_CACHE"


def cache_root() -> Path:
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("medfail"))


def task_dir(task_id: str, version: str, root: Path | None = None) -> Path:
    return (root or cache_root()) / "tasks" / task_id / version
