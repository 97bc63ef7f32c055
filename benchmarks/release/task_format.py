"""Write docs/task-format.md, the task-format reference rendered from the spec schema.

Run: ``.venv/bin/python benchmarks/release/task_format.py`` after changing
``benchmark/tasks/spec.py``. ``--check`` writes nothing and exits 1 when the file is stale;
``--out PATH`` writes elsewhere. ``tests/project/test_docs.py`` checks the file is current.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.tasks.spec_reference import render_reference

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "docs" / "task-format.md"
COMMAND = ".venv/bin/python benchmarks/release/task_format.py"
HEADER = f"> Generated from `benchmark/tasks/spec.py` by `{COMMAND}`; do not edit by hand.\n\n"


def page() -> str:
    """The full text of docs/task-format.md: the header line, then the reference."""
    return HEADER + render_reference()


def write(path: Path = TARGET) -> Path:
    """Write :func:`page` to ``path`` as UTF-8 with ``\\n`` line ends; return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(page().encode("utf-8"))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=TARGET, help="file to write")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args()
    if args.check:
        current = args.out.read_bytes() if args.out.is_file() else b""
        if current != page().encode("utf-8"):
            print(f"{args.out} is stale: run {COMMAND}", file=sys.stderr)
            return 1
        print(f"{args.out} is current")
        return 0
    print(f"wrote {write(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
