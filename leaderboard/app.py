"""The MedFail leaderboard: one ranked table per task version, read-only.

Run ``streamlit run leaderboard/app.py [-- --dir PATH]``. The submissions folder is
``--dir``, else ``$MEDFAIL_SUBMISSIONS``, else ``submissions/`` beside this folder.
The app only reads: it never writes to the submissions folder.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import streamlit as st

from benchmark.definitions import CI_PROTOCOL
from benchmark.submissions import (
    HEADLINES,
    Board,
    board_table,
    format_table,
    headline_split,
    load_boards,
)

ENV_SUBMISSIONS = "MEDFAIL_SUBMISSIONS"
DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "submissions"

ABOUT = (
    "Cells read **mean ± SD [CI low, CI high]** over an entry's seeds: SD is the sample "
    "standard deviation across seeds; the interval is the mean over seeds of each seed's "
    "95% bootstrap interval, not an interval of the mean. Each table is one task version "
    "and one task build (content sha256): versions are never mixed, and an entry scored on "
    "another version or build is excluded and named. ↑ higher is better, ↓ lower is better."
)


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


def main() -> None:
    st.set_page_config(page_title="MedFail leaderboard", layout="wide")
    st.title("MedFail leaderboard")
    root = submissions_root(sys.argv[1:])
    st.caption(f"Submissions: `{root}`")
    boards = load_boards(root)
    if not boards:
        st.info(f"No submissions in {root} yet.")
        return
    st.markdown(ABOUT)
    with st.expander("Bootstrap protocol"):
        st.write(CI_PROTOCOL)
    rank_by = st.selectbox(
        "Rank by", list(HEADLINES), format_func=lambda d: f"{d}: {HEADLINES[d].label}"
    )
    for board in boards:
        render_board(board, rank_by)


main()
