"""The MedFail leaderboard: one ranked table per task version, read-only.

Run ``streamlit run leaderboard/app.py [-- --dir PATH]``. The submissions folder is
``--dir``, else ``$MEDFAIL_SUBMISSIONS``, else ``submissions/`` beside this folder.
The app only reads: it never writes to the submissions folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent))  # boards.py, also under AppTest

from boards import checked_boards, render_board, submissions_root

from benchmark.boards.entries import HEADLINES
from benchmark.common.conventions import CI_PROTOCOL

ABOUT = (
    "Cells read **mean ± SD [CI low, CI high]** over an entry's seeds: SD is the sample "
    "standard deviation across seeds; the interval is the mean over seeds of each seed's "
    "95% bootstrap interval, not an interval of the mean. Each table is one task version "
    "and one task build (content sha256): versions are never mixed, and an entry scored on "
    "another version or build is excluded and named. ↑ higher is better, ↓ lower is better."
)


def main() -> None:
    st.set_page_config(page_title="MedFail leaderboard", layout="wide")
    st.title("MedFail leaderboard")
    root = submissions_root(sys.argv[1:])
    st.text(f"Submissions: {root}")  # a path from the command line: plain text
    boards = checked_boards(root)
    if not boards:
        st.info("No submissions in this folder yet.")
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
