"""Checks that a rich table reads at 80 columns (shared by the table tests)."""

from __future__ import annotations

import io
import re

from rich.console import Console
from rich.table import Table

#: A value and its interval, as the tables print them.
CI = re.compile(r"-?\d+\.\d{3} \[[-+]?\d+\.\d{3}, [-+]?\d+\.\d{3}\]")


def render(table: Table) -> str:
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


def check_fits(table: Table) -> str:
    """``table`` at width 80: no line is longer, nothing is cut with an ellipsis, every
    header is whole on one line, and every cell that holds an interval shows it whole."""
    text = render(table)
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "…" not in text, text
    lines = text.splitlines()
    for column in table.columns:
        assert any(str(column.header) in line for line in lines), (column.header, text)
        for cell in column.cells:
            if CI.search(str(cell)):  # the whole interval, on one printed line
                assert any(str(cell) in line for line in lines), (cell, text)
    return text
