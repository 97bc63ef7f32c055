"""The sweep: planning, resuming, failing cells, reproducibility, and a kill mid-way."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from baselines import sweep
from baselines.methods import families
from benchmark.boards.entries import load_boards, read_metadata
from benchmark.errors import MedFailError
from benchmark.tasks.task import Task


def test_plan_lists_applicable_cells_and_refuses_bad_requests(tiny_task: Task) -> None:
    planned = sweep.plan([tiny_task], ["erm", "group-dro"], None, [0, 1])
    assert {(c.entry, c.seed) for c in planned.cells} == {
        (e, s) for e in ("erm-mlp", "erm-gbm", "erm-logistic", "group-dro-mlp") for s in (0, 1)
    }
    every = sweep.plan([tiny_task], None, None, [0])  # all methods: the others skipped
    assert any(s.startswith("dann") and "ood_val" in s for s in every.skipped)
    assert {c.method for c in every.cells} >= {"erm", "fairlearn-eg-dp", "threshold-optimizer"}
    keys = {c.key for c in planned.cells}
    assert len(keys) == len(planned.cells)  # seed and config are in the key
    with pytest.raises(MedFailError, match="unknown method 'dro'"):
        sweep.plan([tiny_task], ["dro"], None, [0])
    with pytest.raises(MedFailError, match="coral adapts to the unlabelled inputs of ood_val"):
        sweep.plan([tiny_task], ["coral"], None, [0])
    with pytest.raises(MedFailError, match="unknown model family 'cnn'"):
        sweep.plan([tiny_task], ["erm"], ["cnn"], [0])
    with pytest.raises(MedFailError, match="at least one seed"):
        sweep.plan([tiny_task], ["erm"], None, [])


@pytest.fixture
def on_path(tiny: Path) -> Task:
    """The tiny task, findable by name (cells load their task by ``ID@VERSION``)."""
    return Task.load("tiny-task", build=True)


def test_a_serial_sweep_files_entries_resumes_and_records_failures(
    on_path: Task, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny_task = on_path
    planned = sweep.plan([tiny_task], ["erm", "mixup"], ["mlp"], [0, 1], n_boot=50)
    real = sweep.families

    def broken(method: str, *a: object, **k: object) -> object:
        if method == "mixup":
            raise RuntimeError("disk full")
        return real(method, *a, **k)

    monkeypatch.setattr(sweep, "families", broken)
    heard: list[str] = []
    out = tmp_path / "subs"
    result = sweep.run(planned.cells, out, serial=True, update=lambda w, p: heard.append(w))
    assert (result.done, result.failed) == (2, 2) and len(heard) == 4
    failed = sorted((out / sweep.FAILED_DIR).glob("*.json"))
    assert len(failed) == 2
    record = json.loads(failed[0].read_text())
    assert record["error"].startswith("RuntimeError: disk full") and "mixup" in record["label"]
    assert not (out / tiny_task.spec.ref / "mixup-mlp").exists()  # nothing half-written

    monkeypatch.setattr(sweep, "families", real)
    again = sweep.run(planned.cells, out, serial=True)
    assert (again.total, again.done, again.failed) == (2, 2, 0)  # only the failed cells
    assert not list((out / sweep.FAILED_DIR).glob("*.json"))
    assert sweep.run(planned.cells, out, serial=True).total == 0

    (board,) = load_boards(out)  # every stored number recomputed from predictions
    assert not board.problems and {e.metadata.name for e in board.entries} == {
        "erm-mlp",
        "mixup-mlp",
    }
    meta = read_metadata(out / tiny_task.spec.ref / "erm-mlp" / "metadata.yaml")
    assert meta.seeds == [0, 1] and set(meta.config["sweep"]["cells"]) == {"0", "1"}
    assert meta.config["sweep"]["threads"] == 1 and meta.config["num_threads"] == 1
    assert all(s > 0 for s in meta.config["sweep"]["seconds"].values())
    assert [verdict for _, verdict in sweep.verify(out, 2)] == ["same", "same"]


def test_verify_notices_a_model_that_does_not_reproduce(on_path: Task, tmp_path: Path) -> None:
    tiny_task = on_path
    planned = sweep.plan([tiny_task], ["erm"], ["logistic"], [0], n_boot=50)
    sweep.run(planned.cells, tmp_path, serial=True)
    path = tmp_path / tiny_task.spec.ref / "erm-logistic" / "metadata.yaml"
    text = path.read_text()
    sha = read_metadata(path).config["sweep"]["model_sha256"]["0"]
    path.write_text(text.replace(sha, "0" * 64))
    assert sweep.verify(tmp_path, 1) == [(f"{tiny_task.spec.ref} erm-logistic seed 0", "different")]
    key = read_metadata(path).config["sweep"]["cells"]["0"]
    path.write_text(path.read_text().replace(key, "f" * 24))  # planned otherwise today
    assert sweep.verify(tmp_path, 1)[0][1] == "stale"


def test_families_give_identical_model_files_for_a_seed(tiny_task: Task, tmp_path: Path) -> None:
    """Each family's file depends on the model alone (safetensors and skops do not order
    or name their contents reproducibly by themselves; baselines.saving fixes that)."""
    for method in ("erm", "mixup", "fairlearn-eg-eo"):
        for fam in families(method, tiny_task, threads=1):
            made = []
            for copy in "ab":
                folder = tmp_path / f"{copy}-{method}-{fam.name}"
                folder.mkdir()
                made.append(fam.fit_and_save(tiny_task, 3, folder).read_bytes())
            assert made[0] == made[1], (method, fam.name)


@pytest.fixture
def tiny_env(tiny: Path) -> dict[str, str]:
    """The environment a `medfail` subprocess needs to see the tiny task."""
    return dict(os.environ)


def test_a_killed_ray_sweep_resumes(tiny_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "subs"
    medfail = [sys.executable, "-c", "from benchmark.console import main; main()"]
    cmd = [*medfail, "sweep", "--tasks", "tiny-task"]
    cmd += ["--methods", "erm", "--families", "mlp", "--seeds", "0", "1", "2", "3", "4", "5"]
    cmd += ["--out", str(out), "--n-boot", "50", "--cpus", "1"]
    log = tmp_path / "first.log"
    with log.open("wb") as sink:
        first = subprocess.Popen(cmd, env=tiny_env, start_new_session=True, stderr=sink)
    meta = out / "tiny-task@1.0.0" / "erm-mlp" / "metadata.yaml"
    deadline = time.monotonic() + 240
    while not meta.exists() and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)  # the driver and its Ray processes
    first.wait()
    assert meta.exists(), log.read_text()[-2000:]
    before = read_metadata(meta).seeds
    assert 1 <= len(before) < 6

    second = subprocess.run(cmd, env=tiny_env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"{len(before)} finished before, {6 - len(before)} to run" in second.stdout
    assert read_metadata(meta).seeds == [0, 1, 2, 3, 4, 5]
    (board,) = load_boards(out)
    assert not board.problems


def _workers_running_cells(session: int) -> list[int]:
    """Pids of the Ray workers of process session ``session`` busy with a cell."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            ours = proc.name.isdigit() and os.getsid(int(proc.name)) == session
            if ours and b"ray::train_and_score" in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except (OSError, ProcessLookupError):
            continue
    return found


def test_a_ray_worker_killed_mid_cell_is_retried(tiny_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "subs"
    medfail = [sys.executable, "-c", "from benchmark.console import main; main()"]
    cmd = [*medfail, "sweep", "--tasks", "tiny-task", "--methods", "erm", "--families", "mlp"]
    cmd += ["--seeds", "0", "1", "2", "--out", str(out), "--n-boot", "50", "--cpus", "1"]
    log = tmp_path / "sweep.log"
    with log.open("wb") as sink:
        sweep_run = subprocess.Popen(cmd, env=tiny_env, start_new_session=True, stdout=sink)
    deadline, killed = time.monotonic() + 240, []
    while not killed and time.monotonic() < deadline and sweep_run.poll() is None:
        for pid in _workers_running_cells(sweep_run.pid):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        time.sleep(0.05)
    assert sweep_run.wait(timeout=300) == 0, log.read_text()[-2000:]
    assert killed, "no worker was seen running a cell"
    meta = out / "tiny-task@1.0.0" / "erm-mlp" / "metadata.yaml"
    assert read_metadata(meta).seeds == [0, 1, 2]  # the killed cell ran again
    assert "3 cells done, 0 failed" in log.read_text()
    assert not list(out.glob(".medfail-store-*")) and not (out / sweep.FAILED_DIR).exists()


def test_a_cell_failing_in_a_ray_worker_is_recorded_and_the_rest_go_on(
    on_path: Task, tmp_path: Path
) -> None:
    good, bad = sweep.plan([on_path], ["erm"], ["mlp"], [0, 1], n_boot=50).cells
    bad = dataclasses.replace(bad, content_sha256="0" * 64)  # another build of the task
    heard: list[str] = []
    result = sweep.run([good, bad], tmp_path, cpus=1, update=lambda w, p: heard.append(w))
    assert (result.done, result.failed) == (1, 1)
    [record] = (tmp_path / sweep.FAILED_DIR).glob("*.json")
    assert "content differs" in json.loads(record.read_text())["error"]
    assert any("FAILED: MedFailError" in h for h in heard)
    entry = tmp_path / on_path.spec.ref / "erm-mlp"
    assert read_metadata(entry / "metadata.yaml").seeds == [0]
    assert not (entry / "seed-1").exists()


def test_an_entry_written_by_another_tool_is_left_alone(on_path: Task, tmp_path: Path) -> None:
    from baselines.methods import run as baselines_run

    [folder] = baselines_run(on_path, "erm", [0], tmp_path, n_boot=50, family="mlp")
    before = (folder / "metadata.yaml").read_bytes()
    cells = sweep.plan([on_path], ["erm"], ["mlp"], [0, 1], n_boot=50).cells
    assert all(sweep.foreign(tmp_path, c) for c in cells)
    assert sweep.run(cells, tmp_path, serial=True).total == 0
    assert (folder / "metadata.yaml").read_bytes() == before


def test_cells_wider_than_any_ray_node_are_refused(on_path: Task, tmp_path: Path) -> None:
    cells = sweep.plan([on_path], ["erm"], ["mlp"], [0], threads=4, n_boot=50).cells
    with pytest.raises(MedFailError, match=r"need 4 CPUs each .* the largest Ray node has 1"):
        sweep.run(cells, tmp_path, cpus=1)


def test_the_command_line_plans_and_refuses_in_one_line(tiny: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from benchmark.cli import app

    runner = CliRunner()
    out = str(tmp_path / "subs")
    args = ["sweep", "--tasks", "tiny-task", "--methods", "erm,group-dro", "--families", "mlp"]
    planned = runner.invoke(app, [*args, "--seeds", "0", "1", "--out", out, "--dry-run"])
    assert planned.exit_code == 0, planned.output
    assert "4 cells on 1 task(s); 0 finished before, 4 to run" in planned.output
    assert "tiny-task@1.0.0 group-dro-mlp seed 1" in planned.output
    bad = runner.invoke(app, ["sweep", "--tasks", "tiny-task", "--methods", "dann", "--out", out])
    assert isinstance(bad.exception, MedFailError)  # the root command prints it as one line
    assert str(bad.exception) == (
        "dann adapts to the unlabelled inputs of ood_val; tiny-task@1.0.0 has none"
    )
    quick = runner.invoke(app, [*args, "--preset", "quick", "--out", out])
    assert str(quick.exception) == "unknown probe preset 'quick'; presets: full, fast"
    none = runner.invoke(app, ["sweep", "--verify", "2", "--out", out])
    assert isinstance(none.exception, MedFailError)
    assert "no finished sweep cells" in str(none.exception)


def test_the_probe_preset_keys_only_the_cells_it_changes(tiny_task: Task) -> None:
    (fam,) = families("erm", tiny_task, "mlp")
    plain = {p: sweep.Cell.of(tiny_task, "erm", fam, 0, 1, 1000, p) for p in ("fast", "full")}
    assert plain["fast"] == plain["full"] and plain["fast"].preset is None
    probes = [*tiny_task.spec.probes, "adversarial"]
    attacked = SimpleNamespace(
        spec=SimpleNamespace(ref=tiny_task.spec.ref, probes=probes), manifest=tiny_task.manifest
    )
    keyed = {p: sweep.Cell.of(attacked, "erm", fam, 0, 1, 1000, p) for p in ("fast", "full")}  # type: ignore[arg-type]
    assert keyed["fast"].preset == "fast" and keyed["fast"].key != keyed["full"].key
    assert keyed["full"].key != plain["full"].key


def test_committed_sweep_cells_stay_finished_under_todays_plan() -> None:
    """A change to the cell key would silently rerun the whole committed grid."""
    from tests import REPO

    task = Task.load("whas500-mortality-subgroups@1.1.0", build=True)
    planned = sweep.plan([task], ["erm", "group-dro"], None, [0, 1, 2])
    assert planned.cells and all(sweep.is_done(REPO / "submissions", c) for c in planned.cells)
