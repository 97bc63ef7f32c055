"""The Streamlit leaderboard, run headless with AppTest against tmp submission folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests import REPO
from tests.boards.test_submissions import TASK, add_entry, make_report

APP = REPO / "leaderboard" / "app.py"


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time (ns)."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def run_app(root: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("MEDFAIL_SUBMISSIONS", str(root))
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_two_versions_two_tables_and_mixed_entry_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_entry(tmp_path, "sharp", auroc=0.9, ece=0.2)
    add_entry(tmp_path, "calibrated", auroc=0.7, ece=0.02)
    mixed = add_entry(tmp_path, "mixed")
    make_report("tiny-task@2.0.0").save(mixed / "seed-0")
    add_entry(tmp_path, "next", task="tiny-task@2.0.0")
    before = snapshot(tmp_path)

    at = run_app(tmp_path, monkeypatch)
    assert [h.value for h in at.header] == [TASK, "tiny-task@2.0.0"]
    problems, *tables = [d.value for d in at.dataframe]
    assert [list(t["entry"]) for t in tables] == [["sharp", "calibrated"], ["next"]]
    assert tables[0]["AUROC ↑"][0] == "0.900 ± 0.000 [0.870, 0.930]"
    [error] = at.error
    assert error.value.startswith("1 problem(s) on this board")
    [problem] = problems["problem"]
    assert problem.startswith("entry 'mixed' excluded: seed 0: report for task tiny-task@2.0.0")
    assert any("never mixed" in m.value for m in at.markdown)

    at.selectbox[0].select("calibration").run()
    assert not at.exception
    assert list(at.dataframe[1].value["entry"]) == ["calibrated", "sharp"]
    assert snapshot(tmp_path) == before


def test_empty_folder_shows_info(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = run_app(tmp_path, monkeypatch)
    [info] = at.info
    assert info.value == "No submissions in this folder yet."
    assert at.text[0].value == f"Submissions: {tmp_path}"
    assert len(at.dataframe) == 0
    assert list(tmp_path.iterdir()) == []


def test_dir_argument_wins_over_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_entry(tmp_path / "subs", "only")
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr("sys.argv", ["app.py", "--dir", str(tmp_path / "subs")])
    at = run_app(tmp_path / "empty", monkeypatch)
    assert list(at.dataframe[0].value["entry"]) == ["only"]


def test_text_from_files_is_never_rendered_as_markdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crafted folder or entry name must not become a link in a header or error box."""
    link = "[click me](https:evil.example)"
    add_entry(tmp_path, "honest")
    (tmp_path / f"{link}@1.0.0").mkdir()
    (tmp_path / TASK / link).mkdir()  # an entry folder named like a link
    at = run_app(tmp_path, monkeypatch)
    markdown_bodies = [
        e.value
        for kind in ("header", "markdown", "caption", "error", "warning", "info")
        for e in getattr(at, kind)
    ]
    assert not any("](https:evil.example)" in body for body in markdown_bodies)
    assert f"{link}@1.0.0" in [t.value for t in at.text]  # shown, as plain text
    problems = [p for d in at.dataframe if "problem" in d.value for p in d.value["problem"]]
    assert any(link in p for p in problems)  # table cells are plain text


def test_an_entry_s_gallery_is_shown_under_its_board(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from benchmark.results.gallery import write_gallery

    entry = add_entry(tmp_path, "explained")
    add_entry(tmp_path, "plain")
    image = np.linspace(0, 1, 16 * 16).reshape(16, 16)
    lesion = image > 0.9
    item = {"split": "ood_test", "sample_id": "s1", "image": image, "maps": {"gradcam": image}}
    write_gallery(
        [item | {"lesion": lesion, "raters": None, "shortcut": None}], entry / "seed-0" / "gallery"
    )
    at = run_app(tmp_path, monkeypatch)
    galleries = [e for e in at.expander if e.label.startswith("Explanation gallery")]
    assert [e.label for e in galleries] == ["Explanation gallery: explained"]  # not "plain"
    shown = list(at.dataframe[0].value.columns)
    assert "Grad-CAM Dice to lesion ↑" in shown and "IG mass on shortcut ↓" in shown
