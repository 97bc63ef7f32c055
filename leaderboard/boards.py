"""What the leaderboard's pages share: where the submissions are, and one board's table.

Text that comes from files (folder names, entry names, the reasons an entry was excluded)
is shown only in elements that do not render Markdown: plain text and table cells.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd
import streamlit as st

from benchmark.boards.entries import (
    HEADLINES,
    Board,
    board_table,
    format_table,
    gallery_images,
    headline_split,
    load_boards,
)
from benchmark.tasks.spec import is_valid_ref

ENV_SUBMISSIONS = "MEDFAIL_SUBMISSIONS"
DEFAULT_ROOT = Path("submissions")  # in the folder the app is started from


def submissions_root(argv: list[str]) -> Path:
    """``--dir`` from ``argv`` (unknown arguments are ignored), else the environment."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--dir", type=Path)
    args, _ = parser.parse_known_args(argv)
    return args.dir or Path(os.environ.get(ENV_SUBMISSIONS) or DEFAULT_ROOT)


def snapshot(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Every file under ``root`` with its size and modification time: what the boards
    depend on, so a changed, added or removed file invalidates the cache."""
    files = (p for p in root.rglob("*") if p.is_file()) if root.is_dir() else ()
    return tuple(sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))


@st.cache_resource(max_entries=4, show_spinner="Recomputing every stored number...")
def _checked_boards(root: str, files: tuple[tuple[str, int, int], ...]) -> list[Board]:
    return load_boards(Path(root))


def checked_boards(root: Path) -> list[Board]:
    """:func:`load_boards` with every number recomputed, cached until a file changes."""
    return _checked_boards(str(root), snapshot(root))


def board_title(board: Board) -> str | None:
    """The header of a board: its ``ID@VERSION`` (a safe alphabet), or None when the folder
    is not named like one (its raw name is then shown as plain text)."""
    task_id, _, version = board.task.partition("@")
    return board.task if is_valid_ref(task_id, version) else None


def render_board(board: Board, rank_by: str, *, galleries: bool = True) -> None:
    """One board: its problems, the ranked table and (``galleries``) each entry's
    explanation overlays."""
    title = board_title(board)
    st.header(title or "A folder that is not a task version")
    if title is None:
        st.text(board.task)
    if board.problems:
        st.error(f"{len(board.problems)} problem(s) on this board; excluded entries are named:")
        st.dataframe(pd.DataFrame({"problem": board.problems}), hide_index=True)
    for note in board.notes:
        st.info(note)
    if not board.entries:
        st.warning("No entry on this board can be ranked.")
        return
    split = headline_split(board)
    st.caption(
        f"ranked by {HEADLINES[rank_by].label} · task content sha256 `{board.content_sha256}` · "
        f"headline split `{split}` (shift: relative AUROC drop from id_test to ood_test)"
    )
    st.dataframe(format_table(board_table(board, rank_by)), hide_index=True)
    for entry in board.entries if galleries else []:
        images = gallery_images(entry)
        if images:
            name = entry.metadata.name.replace("_", "\\_")  # [a-z0-9._-]: no other Markdown
            with st.expander(f"Explanation gallery: {name}"):
                st.caption(
                    "Per image: the image; each attribution method's positive map (red to "
                    "yellow); the lesion mask (green outline) and the shortcut's pixels "
                    "(magenta); the raters' masks (one colour each). First seed."
                )
                st.image([str(p) for p in images], caption=[p.stem for p in images])
