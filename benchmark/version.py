"""MedFail's version, read once from the installed package metadata (no other import)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("medfail")
except PackageNotFoundError:  # running from a checkout that is not installed
    __version__ = "0+unknown"
