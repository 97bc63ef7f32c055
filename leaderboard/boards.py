"""What the leaderboard's pages share: where the submissions are, and one board's table."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import streamlit as st

from benchmark.submissions import Board, board_table, format_table, headline_split

ENV_SUBMISSIONS = "MEDFAIL_SUBMISSIONS"
DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "submissions"


def submissions_root(argv: list[str]) -> Path:
    """``--dir`` from ``argv`` (unknown arguments are ignored), else the environment."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--dir", type=Path)
    args, _ = parser.parse_known_args(argv)
    return args.dir or Path(os.environ.get(ENV_SUBMISSIONS) or DEFAULT_ROOT)


def render_board(board: Board, rank_by: str) -> None:
    st.header(board.task)
    for problem in board.problems:
        st.error(problem)
    if not board.entries:
        st.warning(f"{board.task}: no entry can be ranked.")
        return
    split = headline_split(board)
    st.caption(
        f"task content sha256 `{board.content_sha256}` · headline split `{split}` "
        f"(shift: relative AUROC drop from id_test to ood_test)"
    )
    st.dataframe(format_table(board_table(board, rank_by)), hide_index=True)
