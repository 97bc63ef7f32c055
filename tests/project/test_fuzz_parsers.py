"""The parsers of outside files, fuzzed with hypothesis (tests/fuzz_targets.py), each in its
own process under a 2 GiB address-space limit and a time limit: any input parses or gives a
MedFailError, never a traceback, a hang or a memory blow-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import REPO
from tests.project.fuzz_targets import TARGETS

ROOT = REPO
#: Examples per target on every run (derandomized); the time limit bounds a hang.
EXAMPLES, TIME_LIMIT_S, MEMORY_LIMIT = 300, 600, 2 << 30

LIMITED = (
    "import resource, runpy, sys; "
    f"resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_LIMIT}, {MEMORY_LIMIT})); "
    "sys.argv = ['fuzz_targets', *sys.argv[1:]]; "
    "runpy.run_module('tests.project.fuzz_targets', run_name='__main__')"
)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_parser_survives_fuzzing(target: str, tmp_path: Path) -> None:
    env = os.environ | {"MEDFAIL_CACHE": str(tmp_path / "cache"), "MEDFAIL_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", LIMITED, target, str(EXAMPLES)],
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT_S,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    assert f"fuzzed {target}: {EXAMPLES} examples, no failure" in result.stdout
