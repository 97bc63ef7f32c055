"""Leaderboard entries: writing, loading boards that never mix versions, and ranking."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.boards.entries import (
    HEADLINES,
    Board,
    EntryMetadata,
    board_table,
    format_cell,
    format_table,
    load_boards,
    write_entry,
)
from benchmark.common.conventions import metric_range
from benchmark.errors import MedFailError
from benchmark.results.report import (
    BootstrapInfo,
    MetricResult,
    ModelInfo,
    ProbeResult,
    Report,
    TaskInfo,
    ThresholdInfo,
)

TASK = "tiny-task@1.0.0"
SHA = "a" * 64
OTHER_SHA = "b" * 64


def row(
    probe: str, metric: str, value: float, split: str = "ood_test", **keys: str
) -> MetricResult:
    """A metric row with the interval value ± 0.03, cut to the metric's possible range."""
    low, high = metric_range(metric)
    return MetricResult(
        probe=probe,
        metric=metric,
        split=split,
        value=value,
        ci_low=max(value - 0.03, low),
        ci_high=min(value + 0.03, high),
        **keys,
    )


def make_report(
    task: str = TASK,
    sha: str = SHA,
    *,
    auroc: float = 0.8,
    ece: float = 0.05,
    worst: tuple[float, float] = (0.7, 0.75),
    eod: tuple[float, float] = (0.1, 0.2),
    drop: float = 0.1,
) -> Report:
    """A small report with known numbers; ``worst``/``eod`` are per attribute (sex, age)."""
    task_id, _, version = task.partition("@")
    fairness = [
        row("fairness", "worst_group_auroc", worst[0], attribute="sex"),
        row("fairness", "worst_group_auroc", worst[1], attribute="age"),
        row("fairness", "worst_group_auroc", 0.01, attribute="sex", group="M"),
        row("fairness", "eod_sum", eod[0], attribute="sex"),
        row("fairness", "eod_sum", eod[1], attribute="age"),
        row("fairness", "eod_sum", 0.99, attribute="age", group="old"),
    ]
    probes = [
        ProbeResult(
            name="performance",
            config={},
            metrics=[
                row("performance", "auroc", auroc),
                row("performance", "auroc", 0.99, split="id_test"),
            ],
        ),
        ProbeResult(
            name="calibration", config={}, metrics=[row("calibration", "ece_equal_mass", ece)]
        ),
        ProbeResult(name="fairness", config={}, metrics=fairness),
        ProbeResult(
            name="shift", config={}, metrics=[row("shift", "shift_robustness_auroc", drop)]
        ),
    ]
    return Report(
        medfail_version="0.1.0",
        created_at="2026-11-23T00:00:00Z",
        task=TaskInfo(
            id=task_id,
            version=version,
            content_sha256=sha,
            spec_sha256="c" * 64,
            classes=["n", "p"],
        ),
        model=ModelInfo(name="mlp", adapter="torch"),
        seeds={"model": 0},
        bootstrap=BootstrapInfo(n_boot=1000, level=0.95, seed=0, unit="patient", strata=None),
        threshold=ThresholdInfo(rule="youden", value=0.5),
        splits={"id_test": 100, "ood_test": 50},
        probes=probes,
        timings={},
    )


def make_metadata(
    name: str, task: str = TASK, sha: str = SHA, seeds: tuple[int, ...] = (0, 1)
) -> EntryMetadata:
    return EntryMetadata(
        name=name,
        method="erm",
        model="tabular-mlp",
        task=task,
        task_content_sha256=sha,
        seeds=list(seeds),
        selection_rule="best val auroc",
        config={"lr": 0.001, "layers": [64, 64]},
        flags={"extra_data": False, "uses_group_labels": True},
        submitted_by="tests",
        medfail_version="0.1.0",
        created_at="2026-11-23T00:00:00Z",
    )


def add_entry(root: Path, name: str, task: str = TASK, sha: str = SHA, **numbers: float) -> Path:
    """An entry with seeds 0 and 1 whose reports carry the same numbers."""
    reports = {k: make_report(task, sha, **numbers) for k in (0, 1)}
    return write_entry(root, make_metadata(name, task, sha), reports)


def board_of(root: Path, task: str = TASK) -> Board:
    return next(b for b in load_boards(root) if b.task == task)


def test_round_trip(tmp_path: Path) -> None:
    model_file = tmp_path / "weights.pt"
    model_file.write_bytes(b"weights")
    metadata = make_metadata("mlp-erm")
    reports = {0: make_report(auroc=0.8), 1: make_report(auroc=0.82)}
    folder = write_entry(tmp_path / "subs", metadata, reports, extra_files={1: [model_file]})
    assert folder == tmp_path / "subs" / TASK / "mlp-erm"
    assert (folder / "seed-1" / "weights.pt").read_bytes() == b"weights"
    [board] = load_boards(tmp_path / "subs")
    assert (board.task, board.content_sha256, board.problems) == (TASK, SHA, [])
    [entry] = board.entries
    assert entry.metadata == metadata
    assert entry.reports == reports


def test_write_refuses_reports_of_another_version_or_build(tmp_path: Path) -> None:
    metadata = make_metadata("mlp-erm")
    with pytest.raises(
        MedFailError, match=r"seed 1: report for task tiny-task@2\.0\.0, not tiny-task@1\.0\.0"
    ):
        write_entry(tmp_path, metadata, {0: make_report(), 1: make_report("tiny-task@2.0.0")})
    with pytest.raises(MedFailError, match="seed 0: report for task content sha256 bbbb"):
        write_entry(tmp_path, metadata, {0: make_report(sha=OTHER_SHA), 1: make_report()})
    with pytest.raises(MedFailError, match=r"metadata lists seed\(s\) \[1\] without a report"):
        write_entry(tmp_path, metadata, {0: make_report()})
    assert not (tmp_path / TASK).exists()


def test_board_excludes_entries_of_another_version_or_build(tmp_path: Path) -> None:
    add_entry(tmp_path, "good-a", auroc=0.8)
    add_entry(tmp_path, "good-b", auroc=0.9)
    add_entry(tmp_path, "other-build", sha=OTHER_SHA, auroc=0.95)
    swapped = add_entry(tmp_path, "swapped", auroc=0.99)
    make_report("tiny-task@2.0.0").save(swapped / "seed-1")
    add_entry(tmp_path, "good-v2", task="tiny-task@2.0.0")
    boards = load_boards(tmp_path)
    assert [b.task for b in boards] == [TASK, "tiny-task@2.0.0"]
    board = boards[0]
    assert board.content_sha256 == SHA
    assert [e.metadata.name for e in board.entries] == ["good-a", "good-b"]
    assert len(board.problems) == 2
    assert board.problems[0].startswith(
        "entry 'swapped' excluded: seed 1: report for task tiny-task@2.0.0"
    )
    assert board.problems[1].startswith(
        "entry 'other-build' excluded: its task content sha256 differs from the board's (bbbb"
    )
    assert list(board_table(board)["entry"]) == ["good-b", "good-a"]
    assert [e.metadata.name for e in boards[1].entries] == ["good-v2"]


def test_metadata_task_must_match_board_folder(tmp_path: Path) -> None:
    folder = add_entry(tmp_path, "moved", task="tiny-task@2.0.0")
    (tmp_path / TASK).mkdir()
    folder.rename(tmp_path / TASK / "moved")
    board = board_of(tmp_path)
    assert board.entries == []
    assert board.problems == [
        "entry 'moved' excluded: metadata for task tiny-task@2.0.0 in the tiny-task@1.0.0 board"
    ]


def test_digest_tie_excludes_everyone(tmp_path: Path) -> None:
    add_entry(tmp_path, "one")
    add_entry(tmp_path, "two", sha=OTHER_SHA)
    board = board_of(tmp_path)
    assert (board.content_sha256, board.entries) == (None, [])
    assert [p.split(":")[0] for p in board.problems] == [
        "entry 'one' excluded",
        "entry 'two' excluded",
    ]
    assert all("no majority" in p for p in board.problems)


def test_seed_folders_must_match_metadata(tmp_path: Path) -> None:
    folder = add_entry(tmp_path, "extra-seed")
    make_report().save(folder / "seed-7")
    board = board_of(tmp_path)
    assert board.entries == []
    assert "report(s) for seed(s) [7] not in the metadata seeds [0, 1]" in board.problems[0]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("name: [unclosed", "not valid YAML"),
        ("- a list\n", "must be a YAML mapping"),
        ("name: bad\n", "metadata.yaml: method: Field required"),
    ],
)
def test_malformed_files_are_problems_not_crashes(tmp_path: Path, text: str, reason: str) -> None:
    add_entry(tmp_path, "fine")
    broken = add_entry(tmp_path, "broken")
    (broken / "metadata.yaml").write_text(text)
    board = board_of(tmp_path)
    assert [e.metadata.name for e in board.entries] == ["fine"]
    [problem] = board.problems
    assert problem.startswith("entry 'broken' excluded:") and reason in problem


def test_malformed_report_is_a_problem(tmp_path: Path) -> None:
    broken = add_entry(tmp_path, "broken")
    (broken / "seed-0" / "report.json").write_text("{not json")
    [problem] = board_of(tmp_path).problems
    assert (
        problem.startswith("entry 'broken' excluded:") and "not a valid MedFail report" in problem
    )


def test_misnamed_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "not-a-ref").mkdir()
    (tmp_path / "README.md").write_text("hello")
    [board] = load_boards(tmp_path)
    assert board.problems == ["folder 'not-a-ref' is not named <task>@<version>"]


def test_boards_sort_by_semantic_version(tmp_path: Path) -> None:
    for version in ("10.0.0", "2.0.0"):
        add_entry(tmp_path, "e", task=f"tiny-task@{version}")
    assert [b.task for b in load_boards(tmp_path)] == ["tiny-task@2.0.0", "tiny-task@10.0.0"]
    assert load_boards(tmp_path / "missing") == []


def test_ranking_honours_direction(tmp_path: Path) -> None:
    add_entry(tmp_path, "sharp", auroc=0.9, ece=0.20, worst=(0.6, 0.8), eod=(0.3, 0.1))
    add_entry(tmp_path, "calibrated", auroc=0.7, ece=0.02, worst=(0.65, 0.9), eod=(0.2, 0.25))
    board = board_of(tmp_path)
    assert list(board_table(board, "performance")["entry"]) == ["sharp", "calibrated"]
    table = board_table(board, "calibration")
    assert list(table["entry"]) == ["calibrated", "sharp"]
    assert list(table["rank"]) == [1, 2]
    # worst-group AUROC is the min over attributes; EOD sum the max (group rows ignored)
    assert table["fairness_mean"].tolist() == pytest.approx([0.65, 0.6])
    assert table["fairness_gap_mean"].tolist() == pytest.approx([0.25, 0.3])
    assert list(board_table(board, "fairness_gap")["entry"]) == ["calibrated", "sharp"]
    with pytest.raises(MedFailError, match="cannot rank by 'speed'"):
        board_table(board, "speed")


def test_entries_selected_on_ood_data_are_ranked_apart(tmp_path: Path) -> None:
    add_entry(tmp_path, "honest", auroc=0.7)
    peeked = make_metadata("peeked").model_copy(
        update={"flags": {"extra_data": False, "uses_ood_val": True}}
    )
    write_entry(tmp_path, peeked, {k: make_report(auroc=0.9) for k in (0, 1)})
    table = board_table(board_of(tmp_path))
    assert list(table["entry"]) == ["honest", "peeked"]  # the better one comes after
    assert list(table["rank"]) == [1, 1] and list(table["apart"]) == [False, True]


def test_missing_values_rank_last(tmp_path: Path) -> None:
    add_entry(tmp_path, "scored", auroc=0.6)
    folder = add_entry(tmp_path, "unscored", auroc=0.9)
    report = make_report()
    perf = report.probes[0]
    undefined = [m.model_copy(update={"value": None, "reason": "undefined"}) for m in perf.metrics]
    no_auroc = report.model_copy(
        update={"probes": [perf.model_copy(update={"metrics": undefined}), *report.probes[1:]]}
    )
    no_auroc.save(folder / "seed-0")
    table = board_table(board_of(tmp_path))
    assert list(table["entry"]) == ["scored", "unscored"]
    assert table["rank"][0] == 1 and table["rank"].isna().tolist() == [False, True]
    assert math.isnan(table["performance_mean"][1])


def test_aggregation_matches_numpy(tmp_path: Path) -> None:
    aurocs = [0.71, 0.78, 0.74]
    reports = {k: make_report(auroc=a) for k, a in enumerate(aurocs)}
    write_entry(tmp_path, make_metadata("three", seeds=(0, 1, 2)), reports)
    table = board_table(board_of(tmp_path)).set_index("entry")
    got = table.loc["three"]
    values = np.array(aurocs)
    assert got["seeds"] == 3
    assert got["performance_mean"] == pytest.approx(np.mean(values))
    assert got["performance_sd"] == pytest.approx(np.std(values, ddof=1))
    assert got["performance_ci_low"] == pytest.approx(np.mean(values - 0.03))
    assert got["performance_ci_high"] == pytest.approx(np.mean(values + 0.03))
    assert got["shift_sd"] == pytest.approx(0.0)


def test_one_seed_has_no_spread(tmp_path: Path) -> None:
    write_entry(tmp_path, make_metadata("solo", seeds=(3,)), {3: make_report(auroc=0.8)})
    table = board_table(board_of(tmp_path))
    assert math.isnan(table["performance_sd"][0])
    shown = format_table(table)
    assert shown["AUROC ↑"][0] == "0.800 [0.770, 0.830]"
    assert list(shown.columns)[-len(HEADLINES) - 1 : -1] == [
        f"{h.label} {'↑' if h.direction == 'higher' else '↓'}" for h in HEADLINES.values()
    ]
    assert shown["intervals withheld"][0] == ""


def test_a_withheld_interval_is_named_with_its_reason(tmp_path: Path) -> None:
    report = make_report(auroc=0.8)
    why = "CI withheld: supported by 4 patients (< 10, too few for 95% coverage)"
    perf = report.probe("performance").metrics
    perf[0] = perf[0].model_copy(update={"ci_low": None, "ci_high": None, "reason": why})
    write_entry(tmp_path, make_metadata("solo", seeds=(3,)), {3: report})
    shown = format_table(board_table(board_of(tmp_path)))
    assert shown["AUROC ↑"][0] == "0.800"
    assert shown["intervals withheld"][0] == f"AUROC, seed 3: {why}"


def test_format_cell() -> None:
    assert format_cell(0.8012, 0.0041, 0.771, 0.829) == "0.801 ± 0.004 [0.771, 0.829]"
    assert format_cell(0.8, math.nan, math.nan, math.nan) == "0.800"
    assert format_cell(math.nan, 0.1, 0.1, 0.2) == "—"


def test_empty_board_table_has_columns(tmp_path: Path) -> None:
    board = Board(TASK, None, [], [], tmp_path)
    table = board_table(board)
    assert table.empty and "performance_mean" in table.columns and table.columns[0] == "rank"
    assert isinstance(format_table(table), pd.DataFrame)


def test_overwrite_is_explicit_and_leaves_no_debris(tmp_path: Path) -> None:
    folder = add_entry(tmp_path, "entry", auroc=0.7)
    with pytest.raises(MedFailError, match="exists; overwrite it explicitly"):
        add_entry(tmp_path, "entry", auroc=0.9)
    assert Report.load(folder / "seed-0").metric("auroc", "ood_test").value == 0.7
    reports = {0: make_report(auroc=0.9)}
    write_entry(tmp_path, make_metadata("entry", seeds=(0,)), reports, overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["metadata.yaml", "seed-0"]
    assert Report.load(folder / "seed-0").metric("auroc", "ood_test").value == 0.9
    debris = [
        p.name for p in (tmp_path / TASK).iterdir() if p.name.startswith((".tmp-", ".trash-"))
    ]
    assert debris == []


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(MedFailError, match="kept no predictions"):
        write_entry(
            tmp_path, make_metadata("entry"), {0: make_report(), 1: make_report()}, predictions=True
        )
    assert [p.name for p in (tmp_path / TASK).iterdir() if not p.name.endswith(".lock")] == []


def test_extra_files_are_checked(tmp_path: Path) -> None:
    clash = tmp_path / "report.json"
    clash.write_text("{}")
    reports = {0: make_report(), 1: make_report()}
    with pytest.raises(MedFailError, match=r"extra file name 'report\.json' is taken"):
        write_entry(tmp_path / "subs", make_metadata("e"), reports, extra_files={0: [clash]})
    with pytest.raises(MedFailError, match="seed 5, which has no report"):
        write_entry(tmp_path / "subs", make_metadata("e"), reports, extra_files={5: [clash]})
    assert not (tmp_path / "subs").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "Bad Name", "should match pattern"),
        ("task", "tiny-task", "is not ID@VERSION"),
        ("task_content_sha256", "abc", "64 lowercase hex digits"),
        ("seeds", [1, 1], "unique and non-negative"),
        ("seeds", [], "at least 1 item"),
    ],
)
def test_metadata_validation(field: str, value: object, message: str) -> None:
    data = make_metadata("ok").model_dump() | {field: value}
    with pytest.raises(ValueError, match=message):
        EntryMetadata.model_validate(data)


def test_entries_scored_under_another_protocol_are_excluded(tmp_path: Path) -> None:
    add_entry(tmp_path, "standard", auroc=0.8)
    odd = add_entry(tmp_path, "few-resamples", auroc=0.95)
    other = make_report()
    boot = other.bootstrap.model_copy(update={"n_boot": 20})
    for seed in (0, 1):
        other.model_copy(update={"bootstrap": boot}).save(odd / f"seed-{seed}")
    add_entry(tmp_path, "also-standard", auroc=0.7)
    board = board_of(tmp_path)
    assert [e.metadata.name for e in board.entries] == ["also-standard", "standard"]
    assert board.problems == [
        "entry 'few-resamples' excluded: its scoring protocol differs from the board's"
    ]


def test_seeds_of_one_entry_must_share_a_protocol(tmp_path: Path) -> None:
    odd = add_entry(tmp_path, "mixed", auroc=0.95)
    other = make_report()
    other.model_copy(update={"bootstrap": other.bootstrap.model_copy(update={"level": 0.5})}).save(
        odd / "seed-1"
    )
    board = board_of(tmp_path)
    assert board.entries == []
    assert "different protocols" in board.problems[0]


def test_findings_in_a_probe_config_are_not_part_of_the_protocol() -> None:
    from benchmark.boards.entries import protocol

    def with_adversarial(config: dict) -> Report:
        report = make_report()
        probe = ProbeResult(name="adversarial", config=config, metrics=[])
        return report.model_copy(update={"probes": [*report.probes, probe]})

    base = {"eps": [0.0, 4 / 255], "attacks": ["pgd"]}
    masked = with_adversarial(base | {"gradient_masking": ["input gradients are exactly zero"]})
    clean = with_adversarial(base | {"gradient_masking": []})
    assert protocol(masked) == protocol(clean)  # a badge is a finding about the model
    assert protocol(with_adversarial(base | {"attacks": ["square"]})) != protocol(clean)

    def with_explanation(config: dict) -> Report:
        report = make_report()
        probe = ProbeResult(name="explanation", config=config, metrics=[])
        return report.model_copy(update={"probes": [*report.probes, probe]})

    settings = {"methods": ["gradcam"], "max_samples": 512}
    passed = with_explanation(settings | {"measured": {"sanity": {"gradcam": {"passed": True}}}})
    failed = with_explanation(settings | {"measured": {"sanity": {"gradcam": {"passed": False}}}})
    assert protocol(passed) == protocol(failed)  # what the probe measured: a finding
    assert protocol(with_explanation(settings | {"max_samples": 64})) != protocol(passed)


def test_gallery_images_are_plain_small_pngs(tmp_path: Path) -> None:
    from benchmark.boards.entries import MAX_GALLERY_BYTES, gallery_images

    reports = {0: make_report(), 1: make_report(auroc=0.82)}
    folder = write_entry(tmp_path / "subs", make_metadata("mlp-erm"), reports)
    gallery = folder / "seed-0" / "gallery"
    gallery.mkdir()
    (gallery / "a.png").write_bytes(b"png")
    (gallery / "big.png").write_bytes(b"x" * (MAX_GALLERY_BYTES + 1))
    (gallery / "note.txt").write_text("not an image")
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"secret")
    (gallery / "link.png").symlink_to(outside)
    [board] = load_boards(tmp_path / "subs")
    assert [p.name for p in gallery_images(board.entries[0])] == ["a.png"]


def test_copies_of_one_model_cannot_outvote_other_models(tmp_path: Path) -> None:
    """Three copies of one entry scored under another protocol used to win the majority
    and exclude the honest entries; copies of one model now count once."""

    def entry(name: str, model: str, rule: str = "youden") -> None:
        reports = {
            k: make_report().model_copy(
                update={
                    "model": ModelInfo(name=name, adapter="torch", sha256=model * 64),
                    "threshold": ThresholdInfo(rule=rule, value=0.5),
                }
            )
            for k in (0, 1)
        }
        write_entry(tmp_path, make_metadata(name), reports)

    entry("honest-a", "a")
    entry("honest-b", "b")
    for i in range(3):
        entry(f"puppet-{i}", "c", rule="fixed")
    board = board_of(tmp_path)
    assert sorted(e.metadata.name for e in board.entries) == ["honest-a", "honest-b"]
    assert sum("puppet" in p for p in board.problems) == 3
