"""The failure-case catalogue: schema, links to tasks, statistics, the export and the page."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from benchmark.boards.entries import CASE_DIMENSIONS, HEADLINES, rank_for
from benchmark.catalogue.browse import select, stats, unknown_tasks
from benchmark.catalogue.cases import (
    CASES_ROOT,
    Case,
    cases_reproduced_by,
    is_mirror,
    load_case,
    load_cases,
    process_words,
)
from benchmark.catalogue.taxonomy import Modality, all_paths
from benchmark.cli import app
from benchmark.errors import CaseError, ManifestMismatchError
from benchmark.hub import transport as hub
from benchmark.hub.catalogue_dataset import DATA_FILE, catalogue_spec_from_text, export
from benchmark.tasks.registry import discover, read_spec
from benchmark.tasks.spec import version_key
from benchmark.tasks.validity import shows_no_failure
from tests import REPO

EXAMPLE = CASES_ROOT / "radiology" / "zech-2018-pneumonia-hospital-confounding.yaml"
PAGE = REPO / "leaderboard" / "pages" / "catalogue.py"


@pytest.fixture(scope="module")
def cases() -> list:
    return load_cases(CASES_ROOT)


def test_at_least_60_confirmed_cases_with_6_per_domain(cases: list) -> None:
    confirmed = [c for c in cases if c.confirmed]
    assert len(confirmed) >= 60
    per_domain = stats(confirmed).by_domain
    assert set(per_domain) == set(Modality.__args__)
    assert min(per_domain.values()) >= 6, per_domain
    assert all(c.sources and c.verification for c in confirmed)


def _prose(case: Case) -> str:
    """Every text field of a case, links left out."""
    links = {"sources": {"__all__": {"doi", "arxiv", "url"}}}
    return json.dumps(case.model_dump(exclude=links), ensure_ascii=False)


def test_cases_state_evidence_and_cite_canonical_records(cases: list) -> None:
    """No shipped case narrates how its sources were read, and none rests on a mirror."""
    assert [(c.id, w) for c in cases for w in process_words(_prose(c))] == []
    assert [s.url for c in cases for s in c.sources if s.url and is_mirror(s.url)] == []


def test_links_hold_both_ways(cases: list) -> None:
    """Every reproduced_by names a real task, every taxonomy path exists, and the card of a
    task lists exactly the cases that name it."""
    assert unknown_tasks(cases, set(discover())) == []
    valid = set(all_paths())
    assert all(p in valid for c in cases for p in c.taxonomy)
    from benchmark.tasks.card import _documented

    for task_id in discover():
        named = {c.id for c in cases if any(r.task == task_id for r in c.reproduced_by)}
        card = _documented(task_id)
        assert named == {c.id for c, _ in cases_reproduced_by(task_id)}
        assert all(f"`{case_id}`" in card for case_id in named)
        listed = {line.split("`")[1] for line in card.splitlines() if line.startswith("- `")}
        assert listed == named


def test_no_case_is_reproduced_by_a_task_that_found_no_failure(cases: list) -> None:
    """A task whose newest release is a negative result reproduces no failure case."""
    newest = {
        task_id: read_spec(versions[max(versions, key=version_key)])
        for task_id, versions in discover().items()
    }
    negative = {task_id for task_id, spec in newest.items() if shows_no_failure(spec)}
    assert {"ncctg-lung-mortality-site", "whas500-mortality-subgroups"} <= negative
    linked = sorted((c.id, r.task) for c in cases for r in c.reproduced_by if r.task in negative)
    assert linked == []


def test_a_case_board_ranks_by_the_dimension_the_case_is_about() -> None:
    assert rank_for(["calibration", "shift"]) == "calibration"
    assert rank_for(["workflow", "subgroup-bias"]) == "fairness"
    assert rank_for(["shift"]) == "shift" and rank_for(["shortcut"]) == "performance"
    assert set(CASE_DIMENSIONS.values()) <= set(HEADLINES)


def test_a_built_card_lists_its_cases(tiny_task: object) -> None:
    from benchmark.tasks.task import Task

    task = Task.load("synth-cxr-shortcut", build=True)
    for case, _ in cases_reproduced_by("synth-cxr-shortcut"):
        assert f"`{case.id}`" in task.card
    assert "## Documented failures" in task.card


def _write(tmp_path: Path, edit: dict, name: str | None = None) -> Path:
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")) | edit
    folder = tmp_path / raw["domain"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name or raw['id']}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"sources": []}, r"sources: List should have at least 1 item"),
        (
            {"sources": [{"authors": "A B", "title": "Title", "venue": "Venue", "year": 2020}]},
            r"at least one of doi, arxiv or url",
        ),
        ({"taxonomy": ["data/distribution-shift/weather"]}, r"unknown taxonomy path"),
        ({"domain": "cardiology"}, r"domain: Input should be"),
        ({"dimensions": ["vibes"]}, r"dimensions\.0"),
        (
            {
                "sources": [
                    {
                        "authors": "A B",
                        "title": "Title",
                        "venue": "Venue",
                        "year": 2020,
                        "doi": "https://doi.org/10.1/x",
                    }
                ]
            },
            r"not a DOI",
        ),
        (
            {"verification": "Abstract read on PMC through the search tool; figures match."},
            r"verification: Value error, describes how a source was read \('Abstract read', "
            r"'search tool'\)",
        ),
        (
            {"mitigation": {"reported": "None; the rest was cut off in the text seen."}},
            r"mitigation\.reported: .*'cut off in the', 'text seen'",
        ),
        (
            {"figures": ["AUC 0.63 (seen quoted on a PubMed mirror)"]},
            r"figures: .*'seen quoted', 'PubMed mirror'",
        ),
        (
            {
                "sources": [
                    {
                        "authors": "A B",
                        "title": "Title",
                        "venue": "Venue",
                        "year": 2020,
                        "url": "https://medluna.com/article/28379439",
                    }
                ]
            },
            r"sources\.0: .*the only link is a mirror \(https://medluna\.com/",
        ),
        (
            {
                "sources": [
                    {
                        "authors": "Authors not shown in the excerpts seen",
                        "title": "Title",
                        "venue": "Venue",
                        "year": 2020,
                        "doi": "10.1000/x",
                    }
                ]
            },
            r"sources\.0\.authors: .*'not shown in the excerpts'",
        ),
    ],
)
def test_schema_errors_name_the_file_and_field(tmp_path: Path, edit: dict, message: str) -> None:
    path = _write(tmp_path, edit)
    with pytest.raises(CaseError, match=message) as info:
        load_case(path) if path.parent.name == "radiology" else load_cases(tmp_path)
    assert str(path.name) in str(info.value)


def test_clinical_wording_and_a_mirror_beside_a_doi_are_accepted(tmp_path: Path) -> None:
    """The process-word patterns leave clinical text alone, and a mirror may stand beside a
    DOI (the DOI is the link a reader opens)."""
    clinical = (
        "The bleed was not seen on CT; 27 radiologists read 50 mammograms; payment was cut off "
        "for rehab; devices were not shown to perform equally; median lead time 24 hours; the "
        "task mirrors a skin-type I bias."
    )
    source = {"authors": "A B", "title": "Title", "venue": "Venue", "year": 2020}
    source["doi"] = "10.1000/x"
    mirrored = source | {"url": "https://www.scribd.com/document/1"}
    case = load_case(_write(tmp_path, {"what_failed": clinical, "sources": [mirrored]}))
    assert case.sources[0].link == "https://doi.org/10.1000/x"
    assert process_words(clinical) == []


def test_duplicate_ids_and_misplaced_files_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, {})
    _write(tmp_path, {}, name="copy")
    with pytest.raises(CaseError, match="file name must be the case id"):
        load_cases(tmp_path)
    (tmp_path / "radiology" / "copy.yaml").unlink()
    _write(tmp_path, {"domain": "pathology"})  # the same id again, in its own domain folder
    with pytest.raises(CaseError, match="duplicate case id 'zech-2018"):
        load_cases(tmp_path)
    misplaced = tmp_path / "radiology" / "zech-2018-pneumonia-hospital-confounding.yaml"
    misplaced.write_text(misplaced.read_text().replace("domain: radiology", "domain: pathology"))
    with pytest.raises(CaseError, match="belongs in cases/pathology/"):
        load_case(misplaced)


def test_filters_and_stats(cases: list) -> None:
    radiology = select(cases, domain="radiology")
    assert radiology and all(c.domain == "radiology" for c in radiology)
    data = select(cases, layer="data")
    assert all(any(p.startswith("data") for p in c.taxonomy) for c in data)
    assert len(select(cases, reproduced=True)) + len(select(cases, reproduced=False)) == len(cases)
    s = stats(cases)
    assert sum(s.by_domain.values()) == len(cases)
    assert s.by_layer_domain["data"]["radiology"] == len(select(radiology, layer="data"))


def test_cli_list_show_stats(cases: list) -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["cases", "list", "--domain", "radiology", "--reproduced"])
    assert shown.exit_code == 0
    assert "zech-2018" in shown.output
    one = runner.invoke(app, ["cases", "show", "zech-2018-pneumonia-hospital-confounding"])
    assert one.exit_code == 0 and "doi.org/10.1371/journal.pmed.1002683" in one.output
    missing = runner.invoke(app, ["cases", "show", "zech-2018"])
    assert missing.exit_code != 0 and "did you mean" in str(missing.exception)
    st = runner.invoke(app, ["cases", "stats"], env={"COLUMNS": "200"})
    assert st.exit_code == 0 and "with no reproducing task" in st.output
    for c in stats(cases).unreproduced:
        assert c.id in st.output


def test_export_is_byte_identical_readable_and_travels_like_a_task(tmp_path: Path) -> None:
    import datasets

    first = export(out=tmp_path / "a")
    export(out=tmp_path / "b")
    for rel in [*first.files, *first.extras, "manifest.json"]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    table = pq.read_table(tmp_path / "a" / DATA_FILE)
    assert table.num_rows == len(load_cases(CASES_ROOT))
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "a" / DATA_FILE), split="train")
    assert ds.num_rows == table.num_rows and "reproduced_by" in ds.column_names
    mirror = tmp_path / "mirror"
    assert "medfail-cases" in hub.publish(tmp_path / "a", str(mirror))
    pulled = hub.pull("medfail-cases", first.version, str(mirror), parse=catalogue_spec_from_text)
    assert pulled.content_sha256 == first.content_sha256


def test_a_released_catalogue_refuses_changed_cases(tmp_path: Path) -> None:
    root = tmp_path / "cases"
    shutil.copytree(CASES_ROOT, root)
    built = export(root, out=tmp_path / "one")
    spec = yaml.safe_load((root / "catalogue.yaml").read_text())
    spec["manifest_sha256"] = built.content_sha256
    (root / "catalogue.yaml").write_text(yaml.safe_dump(spec))
    export(root, out=tmp_path / "two")  # the pin holds
    case = root / "radiology" / EXAMPLE.name
    case.write_text(case.read_text().replace("title: ", "title: Edited - ", 1))
    with pytest.raises(ManifestMismatchError, match="immutable"):
        export(root, out=tmp_path / "three")
    assert not (tmp_path / "three").exists()


def test_the_catalogue_page_renders_filters_and_shows_a_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDFAIL_SUBMISSIONS", str(tmp_path))
    at = AppTest.from_file(str(PAGE), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Failure-case catalogue"
    n_all = len(load_cases(CASES_ROOT))
    assert f"{n_all} cases" in at.subheader[0].value
    at.selectbox[0].select("pathology").run()
    n_path = len(select(load_cases(CASES_ROOT), domain="pathology"))
    assert f"{n_path} cases" in at.subheader[0].value
    assert any("## Sources" in m.value or "Sources" in m.value for m in at.markdown)
