"""MedFail's tests, in folders that mirror benchmark/'s subpackages."""

from pathlib import Path

#: The repository root (tests/ sits in it).
REPO = Path(__file__).resolve().parent.parent
