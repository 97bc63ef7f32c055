"""Property-based fuzzing of the parsers that read files from outside (hypothesis).

Run one target per process, under a memory limit and a time limit set by the caller
(``tests/test_fuzz_parsers.py``)::

    python -m tests.project.fuzz_targets TARGET MAX_EXAMPLES

The property: any input either parses or raises a MedFailError with a non-empty message
(one line, except a spec's one-line-per-problem list); never another exception, a hang or
a memory blow-up. Inputs mix random text with mutations of valid files and known hostile
snippets, so the search reaches deep into each schema, not only the tokenizer.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark.errors import MedFailError

HOSTILE_SNIPPETS = [
    "&a [1, 2]",
    "*a",
    "[" * 200 + "]" * 200,
    "{" * 200 + "}" * 200,
    "2026-02-30",
    "? [a, b]\n: 1",
    "!!python/object:os.system ls",
    "!!binary AAAA",
    "1e308",
    "-.inf",
    ".nan",
    "\x00",
    "\ud7ff",
    "'unterminated",
    "- - - -",
    "a: 1\na: 2",
]


def _mutated(base: str) -> st.SearchStrategy[str]:
    """``base`` with one slice replaced by random text or a hostile snippet."""
    insert = st.one_of(st.text(max_size=40), st.sampled_from(HOSTILE_SNIPPETS))

    @st.composite
    def build(draw: st.DrawFn) -> str:
        i = draw(st.integers(0, len(base)))
        j = draw(st.integers(i, min(len(base), i + 60)))
        return base[:i] + draw(insert) + base[j:]

    return build()


def _yaml_values() -> st.SearchStrategy[object]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
        ),
        max_leaves=30,
    )


def _texts(base: str) -> st.SearchStrategy[str | bytes]:
    import yaml

    return st.one_of(
        _mutated(base),
        st.text(max_size=300),
        st.binary(max_size=300),
        _yaml_values().map(lambda v: yaml.safe_dump(v)),
    )


def _spec_text() -> str:
    from tests.conftest import TINY_SPEC

    return textwrap.dedent(TINY_SPEC.format(version="1.0.0", shard_rows=1000))


def _check(error: MedFailError, multiline: bool = False) -> None:
    message = str(error)
    assert message.strip(), f"{type(error).__name__} without a message"
    assert multiline or "\n" not in message, f"not one line: {message!r}"


def spec() -> Callable[[], None]:
    from benchmark.tasks.spec import spec_from_text

    @given(_texts(_spec_text()))
    def run(text: str | bytes) -> None:
        try:
            spec_from_text(text, "fuzz.yaml")
        except MedFailError as e:
            _check(e, multiline=True)

    return run


def metadata() -> Callable[[], None]:
    import yaml

    from benchmark.boards.entries import read_metadata
    from tests.boards.test_submissions import make_metadata

    base = yaml.safe_dump(make_metadata("entry").model_dump(mode="json"), sort_keys=False)
    folder = Path(tempfile.mkdtemp())

    @given(_texts(base))
    def run(text: str | bytes) -> None:
        path = folder / "metadata.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "replace"))
        try:
            read_metadata(path)
        except MedFailError as e:
            _check(e)

    return run


def report() -> Callable[[], None]:
    from benchmark.results.report import Report
    from tests.boards.test_submissions import make_report

    base = make_report().model_dump_json()
    values = st.one_of(
        _yaml_values(), st.sampled_from([1e308, -3.0, 5.0, float("nan"), 10**400, "x" * 50])
    )

    @st.composite
    def field_swapped(draw: st.DrawFn) -> bytes:
        data = json.loads(base)
        node = data
        for _ in range(draw(st.integers(1, 6))):  # walk down, then replace one value
            if isinstance(node, dict) and node:
                key = draw(st.sampled_from(sorted(node)))
            elif isinstance(node, list) and node:
                key = draw(st.integers(0, len(node) - 1))
            else:
                break
            if not isinstance(node[key], dict | list):
                break
            node = node[key]
        if isinstance(node, dict) and node:
            node[draw(st.sampled_from(sorted(node)))] = draw(values)
        return json.dumps(data, allow_nan=True).encode()

    folder = Path(tempfile.mkdtemp())

    @given(st.one_of(field_swapped(), _mutated(base).map(str.encode), st.binary(max_size=200)))
    def run(raw: bytes) -> None:
        (folder / "report.json").write_bytes(raw)
        try:
            Report.load(folder)
        except MedFailError as e:
            _check(e)

    return run


def predictions() -> Callable[[], None]:
    from benchmark.models.loading import load_model
    from benchmark.tasks.task import Task
    from tests.conftest import write_tiny_task

    root = Path(tempfile.mkdtemp())
    os.environ["MEDFAIL_CACHE"] = str(root / "cache")
    os.environ["MEDFAIL_TASKS_PATH"] = str(root / "tasks")
    write_tiny_task(root / "tasks")
    task = Task.load("tiny-task", build=True)
    ids = task.frame("val")["sample_id"].tolist()[:5]
    base = "sample_id,proba_neg,proba_pos,score\n" + "".join(f"{i},0.25,0.75,0.75\n" for i in ids)

    @given(st.one_of(_mutated(base), st.text(max_size=200), st.binary(max_size=200)))
    def run(text: str | bytes) -> None:
        path = root / "preds.csv"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "replace"))
        try:
            load_model(str(path), task)
        except MedFailError as e:
            _check(e)

    return run


TARGETS = {"spec": spec, "metadata": metadata, "report": report, "predictions": predictions}


def main() -> None:
    target, examples = sys.argv[1], int(sys.argv[2])
    run = TARGETS[target]()
    settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,  # the same inputs on every CI run; raise MAX_EXAMPLES to search more
        database=None,
        suppress_health_check=list(HealthCheck),
    )(run)()
    print(f"fuzzed {target}: {examples} examples, no failure")


if __name__ == "__main__":
    main()
