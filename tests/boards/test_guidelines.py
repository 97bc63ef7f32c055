"""Guidelines: generated from the entries, byte-identical when regenerated."""

from __future__ import annotations

from pathlib import Path

import pytest

from baselines import sweep
from benchmark.boards.guidelines import Finding, Headline, headline, kind_of, write_guidelines
from benchmark.tasks.registry import resolve
from benchmark.tasks.task import Task
from tests import REPO


def test_the_committed_guidelines_regenerate_byte_for_byte(tmp_path: Path) -> None:
    committed = REPO / "docs" / "guidelines.md"
    out = tmp_path / "docs" / "guidelines.md"
    # the same relative layout as the repository, so the links come out the same
    (tmp_path / "submissions").symlink_to(REPO / "submissions")
    write_guidelines(tmp_path / "submissions", out, workers=2)  # boards in parallel
    assert out.read_bytes() == committed.read_bytes(), "run: medfail guidelines"


def test_headlines_and_kinds_follow_the_task_claims() -> None:
    fairness = resolve("synth-derm-skin-tone").spec
    head = headline(fairness)
    assert (head.probe, head.metric, head.attribute, head.group) == (
        "fairness",
        "auroc_gap",
        "tone_group",
        "dark",
    )
    assert head.better == 1  # the claim is a negative gap: toward zero is up
    assert kind_of(fairness) == "Subgroup underrepresentation"
    drift = resolve("synth-icu-sensor-drift").spec
    assert headline(drift).metric == "accuracy" and kind_of(drift) == "Sensor drift"
    site = resolve("ncctg-lung-mortality-site").spec
    assert (headline(site).metric, headline(site).split) == ("auroc", "ood_test")


@pytest.mark.parametrize(
    ("better", "low", "high", "verdict"),
    [
        (1, 0.01, 0.05, "helps"),
        (1, -0.05, -0.01, "hurts"),
        (1, -0.01, 0.02, "no clear difference"),
        (-1, -0.05, -0.01, "helps"),
        (-1, 0.01, 0.05, "hurts"),
        (1, None, None, "no interval"),
    ],
)
def test_verdicts_read_the_interval_on_the_better_side(
    better: int, low: float | None, high: float | None, verdict: str
) -> None:
    head = Headline("performance", "auroc", "ood_test", None, None, better)
    finding = Finding("k", "t@1.0.0", "m", "mlp", "x", "x-mlp", [0], [], head, 0.0, low, high, None)
    assert not finding.costs_id
    assert finding.verdict == verdict


def test_guidelines_of_fresh_entries_name_every_comparison(tiny: Path, tmp_path: Path) -> None:
    task = Task.load("tiny-task", build=True)
    root = tmp_path / "subs"
    planned = sweep.plan([task], ["erm", "mixup", "group-dro"], ["mlp"], [0, 1], n_boot=50)
    sweep.run(planned.cells, root, serial=True)
    out = tmp_path / "docs" / "guidelines.md"
    _, found = write_guidelines(root, out)
    first = out.read_bytes()
    assert {f.method for f in found} == {"mixup", "group-dro"}
    text = first.decode()
    assert "## Site and scanner shift" in text
    assert "](../subs/tiny-task@1.0.0/mixup-mlp/metadata.yaml)" in text
    write_guidelines(root, out)
    assert out.read_bytes() == first


def test_a_gain_under_shift_bought_on_id_test_is_marked() -> None:
    head = Headline("performance", "auroc", "ood_test", None, None, 1)
    costly = Finding(
        "k",
        "t@1.0.0",
        "m",
        "cnn",
        "x",
        "x-cnn",
        [0],
        [],
        head,
        0.2,
        0.1,
        0.3,
        None,
        clean=(-0.3, -0.4, -0.2),
    )
    assert costly.verdict == "helps" and costly.costs_id


def test_the_summary_tells_no_effect_from_no_interval() -> None:
    from benchmark.boards.guidelines import _summary

    head = Headline("performance", "auroc", "ood_test", None, None, 1)

    def finding(task: str, low: float | None, high: float | None) -> Finding:
        return Finding(
            "k", task, "m", "mlp", "dann", "dann-mlp", [0], [], head, 0.0, low, high, None
        )

    text = _summary([finding("a@1.0.0", -0.1, 0.1), finding("b@1.0.0", None, None)])
    assert "**No method beat ERM** on a@1.0.0." in text
    assert "No interval on b@1.0.0: too few patients" in text and "Beat ERM" not in text
    assert "**Beat ERM** (1 of 1 comparisons): dann (mlp) on a@1.0.0" in _summary(
        [finding("a@1.0.0", 0.01, 0.1)]
    )


def test_a_fairness_gap_pushed_past_zero_and_grown_overshoots() -> None:
    head = Headline("fairness", "auroc_gap", "ood_test", "sex", "F", 1)

    def finding(a: float, b: float) -> Finding:
        return Finding(
            "k",
            "t@1.0.0",
            "m",
            "mlp",
            "x",
            "x-mlp",
            [0],
            [],
            head,
            a - b,
            0.05,
            0.4,
            None,
            values=(a, b),
        )

    assert finding(0.25, -0.10).verdict == "overshoots"  # |gap| grew on the other side
    assert finding(0.05, -0.10).verdict == "helps"  # past zero, but smaller
    assert finding(-0.02, -0.10).verdict == "helps"


def test_single_seed_verdicts_are_marked_provisional() -> None:
    from benchmark.boards.guidelines import _row, _summary

    head = Headline("performance", "auroc", "ood_test", None, None, 1)
    one = Finding(
        "k", "t@1.0.0", "m", "cnn", "dann", "dann-cnn", [0], [], head, 0.02, 0.01, 0.03, None
    )
    three = Finding(
        "k", "t@1.0.0", "m", "cnn", "dann", "dann-cnn", [0, 1, 2], [], head, 0.02, 0.01, 0.03, None
    )
    assert "**helps** (1 seed)" in _row(one, "x") and "(1 seed)" not in _row(three, "x")
    assert "+0.020 [+0.010, +0.030] (1 seed)" in _summary([one])
