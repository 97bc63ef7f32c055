"""The failure-case catalogue: filter by domain, layer and dimension; a layer x domain
heatmap; each case with its source links and the leaderboards of the tasks reproducing it.

A page of the leaderboard app (``streamlit run leaderboard/app.py``); read-only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # leaderboard/, for boards.py

from boards import checked_boards, render_board, submissions_root

from benchmark.boards.entries import rank_for
from benchmark.catalogue.browse import render_case, select, stats
from benchmark.catalogue.cases import CASES_ROOT, load_cases
from benchmark.catalogue.taxonomy import LAYERS


def main() -> None:
    st.set_page_config(page_title="MedFail failure cases", layout="wide")
    st.title("Failure-case catalogue")
    cases = load_cases(CASES_ROOT)
    s = stats(cases)
    st.caption(
        f"{s.n} documented failures; {s.n - len(s.unreproduced)} reproduced by a MedFail task. "
        "Figures are quoted exactly from the cited sources."
    )
    left, mid, right = st.columns(3)
    domain = left.selectbox("Domain", ["all", *s.by_domain])
    layer = mid.selectbox("Taxonomy layer", ["all", *LAYERS])
    dimension = right.selectbox("Dimension", ["all", *s.by_dimension])
    chosen = select(
        cases,
        domain=None if domain == "all" else domain,
        layer=None if layer == "all" else layer,
        dimension=None if dimension == "all" else dimension,
    )
    heat = pd.DataFrame(stats(chosen).by_layer_domain).T if chosen else pd.DataFrame()
    if not heat.empty:
        st.plotly_chart(
            px.imshow(
                heat,
                text_auto=True,
                aspect="auto",
                color_continuous_scale="Reds",
                labels={"x": "domain", "y": "layer", "color": "cases"},
            ),
        )
    table = pd.DataFrame(
        {
            "case": [c.id for c in chosen],
            "year": [c.year for c in chosen],
            "domain": [c.domain for c in chosen],
            "dimensions": [", ".join(c.dimensions) for c in chosen],
            "source": [c.sources[0].link for c in chosen],
            "reproduced by": [", ".join(r.task for r in c.reproduced_by) for c in chosen],
        }
    )
    st.subheader(f"{len(chosen)} cases")
    st.dataframe(table, hide_index=True, column_config={"source": st.column_config.LinkColumn()})
    if not chosen:
        return
    case_id = st.selectbox("Case", [c.id for c in chosen])
    case = next(c for c in chosen if c.id == case_id)
    st.markdown(render_case(case))
    boards = {b.task.split("@")[0]: b for b in checked_boards(submissions_root(sys.argv[1:]))}
    for r in case.reproduced_by:
        board = boards.get(r.task)
        if board is None:
            st.info(
                f"{r.task}: no leaderboard entries yet (medfail baselines run --task {r.task})."
            )
        else:
            render_board(
                board, rank_for(case.dimensions), galleries=False
            )  # the main page has them


main()
