"""The documentation's promises: links resolve, the task-format reference is current, and
the README stays a short front door."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from urllib.parse import unquote

from benchmark.tasks.spec import TaskSpec
from benchmark.tasks.spec_reference import render_reference

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
TASK_FORMAT = DOCS / "task-format.md"
SCRIPT = ROOT / "benchmarks" / "release" / "task_format.py"
MAX_README_LINES = 200

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line)
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: link text kept, punctuation dropped, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 for repeats."""
    seen: dict[str, int] = {}
    out = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if match is None:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def relative_links(path: Path) -> list[str]:
    """Link targets in prose (not in code) that point inside the repository."""
    found = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        for target in LINK.findall(CODE_SPAN.sub("", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, mailto:, ...
                continue
            found.append(target)
    return found


def broken_links(path: Path) -> list[str]:
    """``page: target: why`` for each relative link whose file or heading does not exist."""
    problems = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not dest.is_file():
            problems.append(f"{path.name}: {target}: no such file")
        elif anchor and dest.suffix == ".md" and unquote(anchor) not in anchors(dest):
            problems.append(f"{path.name}: {target}: no heading #{anchor}")
    return problems


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("task_format_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- (a) links ------------------------------------------------------------------------------


def test_every_relative_link_resolves() -> None:
    links = [t for page in pages() for t in relative_links(page)]
    assert len(links) > 20, "the link finder found almost nothing: is its pattern broken?"
    assert any("#" in t for t in links), "no anchored link was checked"
    problems = [
        f"{page.parent.relative_to(ROOT)}/{p}" for page in pages() for p in broken_links(page)
    ]
    assert not problems, "\n".join(problems)


def test_the_link_checker_catches_a_broken_file_and_a_broken_anchor(tmp_path: Path) -> None:
    (tmp_path / "b.md").write_text("# Title\n\n## Models (`--model SPEC`)\n", encoding="utf-8")
    page = tmp_path / "a.md"
    page.write_text(
        "[ok](b.md#models---model-spec) [gone](c.md) [bad](b.md#nope) `[code](x.md)`\n"
        "```\n[fenced](y.md)\n```\n[web](https://example.org/z.md)\n",
        encoding="utf-8",
    )
    assert relative_links(page) == ["b.md#models---model-spec", "c.md", "b.md#nope"]
    assert broken_links(page) == [
        "a.md: c.md: no such file",
        "a.md: b.md#nope: no heading #nope",
    ]


def test_the_readme_links_every_docs_page() -> None:
    linked = {
        (README.parent / t.partition("#")[0]).resolve()
        for t in relative_links(README)
        if t.partition("#")[0]
    }
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert not missing, f"README.md does not link {missing}"


# -- (b) the generated task-format reference -----------------------------------------------


def test_task_format_is_what_the_script_writes(tmp_path: Path) -> None:
    script = load_script()
    written = script.write(tmp_path / "task-format.md")
    assert written.read_bytes() == TASK_FORMAT.read_bytes(), (
        "docs/task-format.md is stale: run .venv/bin/python benchmarks/release/task_format.py"
    )
    assert script.page() == script.HEADER + render_reference()
    assert "benchmarks/release/task_format.py" in script.HEADER.splitlines()[0]


def test_the_reference_is_deterministic_and_names_every_field() -> None:
    text = render_reference()
    assert text == render_reference()
    for name in TaskSpec.model_fields:
        assert f"| `{name}` |" in text, f"top-level field {name!r} is missing"
    for path in ("label.rule.horizon", "splits.domains.<key>.values", "validity.level"):
        assert f"`{path}`" in text, path


# -- (c) the README stays short -------------------------------------------------------------


def test_readme_is_at_most_200_lines() -> None:
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines; move detail into docs/"
