"""The mitigations: each trains on a small task and changes what it should."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from baselines import deep, fairness, objectives
from baselines.methods import METHODS, families, flags, methods_for, unmet_need
from benchmark.errors import MedFailError
from benchmark.scoring.evaluate import evaluate
from benchmark.tasks.registry import resolve
from benchmark.tasks.task import Task
from tests.tasks.test_medmnist import build, fake_root  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/baselines/conftest.py


def test_eleven_or_more_methods_each_stated() -> None:
    assert len(METHODS) >= 11
    for m in METHODS.values():
        assert m.summary and set(m.inputs) <= {"tabular", "image", "series"}
        assert {"extra_data", "uses_group_labels", "uses_ood_val"} <= set(flags(m.name))
    assert flags("transfer")["extra_data"] and flags("dann")["uses_unlabelled_target"]
    assert flags("threshold-optimizer")["group_aware_inference"]


def test_methods_that_do_not_apply_say_why_in_one_line(tiny_task: Task) -> None:
    applicable = methods_for(tiny_task)
    assert {"erm", "group-dro", "fairlearn-eg-eo", "threshold-optimizer"} <= set(applicable)
    for method, words in [
        ("cutmix", "image"),
        ("dann", "ood_val"),
        ("coral", "ood_val"),
        ("transfer", "image or series"),
        ("shortcut-decorrelated", "image"),
    ]:
        why = unmet_need(method, tiny_task)
        assert why is not None and words in why and "\n" not in why
        with pytest.raises(MedFailError, match=words):
            families(method, tiny_task)
    with pytest.raises(MedFailError, match="unknown method 'dro'"):
        families("dro", tiny_task)
    with pytest.raises(MedFailError, match="not gbm"):
        families("group-dro", tiny_task, "gbm")


@pytest.mark.parametrize(
    "method", ["reweight", "mixup", "group-dro", "adversarial-debiasing", "fairlearn-eg-dp"]
)
def test_each_tabular_method_trains_and_scores(
    tiny_task: Task, method: str, tmp_path: Path
) -> None:
    (fam,) = families(method, tiny_task)
    model_file = fam.fit_and_save(tiny_task, 0, tmp_path)
    report = evaluate(str(model_file), tiny_task, n_boot=50, seeds={"train": 0}, name=method)
    auc = report.metric("auroc", "id_test", probe="performance").value
    assert auc is not None and 0 <= auc <= 1


# --- GroupDRO --------------------------------------------------------------------------------


def test_group_dro_weights_move_toward_the_worst_group() -> None:
    """Group 1's labels are noise, so its loss stays high: q must put most weight on it,
    and the batch loss equals sum_g q_g l_g with q updated by exp(eta l_g) first."""
    rng = np.random.default_rng(0)
    n = 400
    x = rng.normal(size=(n, 4)).astype(np.float32)
    g = (np.arange(n) % 4 == 0).astype(np.int64)  # group 1: a quarter of the rows
    y = np.where(g == 1, rng.integers(0, 2, n), (x[:, 0] > 0).astype(int))
    model = torch.nn.Sequential(torch.nn.Linear(4, 2))
    model.prepare = lambda t: t  # type: ignore[attr-defined]
    obj = objectives.GroupDRO(groups=torch.tensor(g), eta=0.2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    q0 = obj.q.clone()
    xt, yt = torch.tensor(x), torch.tensor(y)
    for _ in range(100):
        idx = torch.as_tensor(rng.permutation(n)[:64])
        opt.zero_grad()
        before = obj.q.clone()
        loss = obj.loss(model, xt[idx], yt[idx], idx, 0.0)
        per = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx], reduction="none")
        gl = torch.stack([per[g[idx] == k].mean() for k in (0, 1)]).detach().double()
        expected_q = before * torch.exp(0.2 * gl)
        expected_q /= expected_q.sum()
        assert torch.allclose(obj.q, expected_q)
        assert float(loss.detach()) == pytest.approx(float((expected_q * gl).sum()), rel=1e-5)
        loss.backward()
        opt.step()
    assert q0.tolist() == [0.5, 0.5] and obj.q[1] > 0.8


# --- adversarial debiasing, DANN, CORAL ---------------------------------------------------


def test_gradient_reversal_flips_and_scales_the_gradient() -> None:
    x = torch.ones(3, requires_grad=True)
    objectives.reverse_gradient(x, 0.25).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), -0.25))


def test_dann_schedule_is_ganins() -> None:
    dann = objectives.DANN(target=torch.zeros(2, 3), width=3)
    for p in (0.0, 0.1, 0.5, 1.0):
        assert dann.schedule(p) == pytest.approx(2 / (1 + math.exp(-10 * p)) - 1)
    assert dann.schedule(0.0) == 0.0 and dann.schedule(1.0) > 0.999


def test_coral_distance_equals_numpy() -> None:
    rng = np.random.default_rng(1)
    hs, ht = rng.normal(size=(50, 6)), 2 * rng.normal(size=(40, 6)) + 1
    expected = ((np.cov(hs.T) - np.cov(ht.T)) ** 2).sum() / (4 * 36)
    got = objectives.coral_distance(torch.tensor(hs), torch.tensor(ht))
    assert float(got) == pytest.approx(expected, rel=1e-10)


def _shifted(seed: int) -> tuple[np.ndarray, ...]:
    """Series: the label is the mean of channel 0; the target domain adds an offset."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(160, 2, 8)).astype(np.float32)
    y = (x[:, 0].mean(1) > 0).astype(np.int64)
    target = rng.normal(size=(160, 2, 8)).astype(np.float32) * 2 + 3
    return x, y, target


@pytest.mark.parametrize("method", ["dann", "coral"])
def test_domain_adaptation_pulls_the_target_representation_closer(method: str) -> None:
    x, y, target = _shifted(0)
    config = deep.DeepConfig(max_epochs=6, patience=6, batch_size=32, num_threads=1)
    common = {"seed": 0, "config": config, "device": "cpu"}
    erm = deep.train_network("series-transformer", x, y, x[:40], y[:40], **common)
    adapted = deep.train_network(
        "series-transformer", x, y, x[:40], y[:40], method=method, target=target, **common
    )

    def gap(model: torch.nn.Module) -> float:
        with torch.no_grad():
            return float(
                objectives.coral_distance(
                    model.embed(torch.tensor(x)), model.embed(torch.tensor(target))
                )
            )

    assert gap(adapted) < gap(erm)


def test_adversarial_debiasing_makes_the_errors_less_group_dependent() -> None:
    """The label depends on the group, and a feature is a proxy of it: ERM's errors differ
    between groups; the debiased model (the equalised-odds adversary, weight 5) narrows the
    equalized odds difference (the adversary's target)."""
    rng = np.random.default_rng(0)
    n = 600
    g = rng.integers(0, 2, n)
    x = np.column_stack([g + 0.3 * rng.normal(size=n), rng.normal(size=n)]).astype(np.float32)
    y = ((0.5 * x[:, 1] + 0.3 * rng.normal(size=n) + 0.5 * g) > 0.5).astype(np.int64)
    x3 = x[:, :, None]  # as series (n, C, T=1)
    config = deep.DeepConfig(max_epochs=8, patience=8, batch_size=64, num_threads=1)
    common = {"seed": 0, "config": config, "device": "cpu"}

    def eod(model: torch.nn.Module) -> float:
        with torch.no_grad():
            pred = model(torch.tensor(x3)).argmax(1).numpy()
        return equalized_odds_difference(y, pred, sensitive_features=g)

    erm = deep.train_network("series-transformer", x3, y, x3, y, **common)
    debiased = deep.train_network(
        "series-transformer",
        x3,
        y,
        x3,
        y,
        method="adversarial-debiasing",
        groups=g,
        params={"adv_weight": 5.0},
        **common,
    )
    assert eod(debiased) < eod(erm) - 0.05


# --- CutMix --------------------------------------------------------------------------------


def test_cutmix_box_and_label_weight() -> None:
    rng = np.random.default_rng(0)
    for lam in (0.0, 0.3, 0.75, 1.0):
        top, bottom, left, right = objectives.cutmix_box(32, 32, lam, rng)
        assert 0 <= top <= bottom <= 32 and 0 <= left <= right <= 32
        if lam == 1.0:
            assert (bottom - top) * (right - left) == 0


def test_cutmix_pastes_a_box_and_weights_the_labels_by_its_area() -> None:
    """Replaying the objective's draws: the loss is lam CE(y) + (1 - lam) CE(y[perm]) on
    the images with the permuted batch's box pasted in, lam = 1 - box area / image area."""

    class Mean(torch.nn.Module):  # logits from the mean intensity: sees the pasted box
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            m = t.mean(dim=(1, 2, 3))
            return torch.stack([-m, m], 1)

    x = torch.zeros(4, 1, 8, 8)
    x[2:] = 1.0
    y = torch.tensor([0, 0, 1, 1])
    got = objectives.CutMix(rng=np.random.default_rng(3)).loss(Mean(), x, y, torch.arange(4), 0)
    replay = np.random.default_rng(3)
    lam = float(replay.beta(1.0, 1.0))
    perm = torch.as_tensor(replay.permutation(4))
    top, bottom, left, right = objectives.cutmix_box(8, 8, lam, replay)
    mixed = x.clone()
    mixed[:, :, top:bottom, left:right] = x[perm][:, :, top:bottom, left:right]
    area = 1 - (bottom - top) * (right - left) / 64
    logits = Mean()(mixed)
    ce = torch.nn.functional.cross_entropy
    expected = area * ce(logits, y) + (1 - area) * ce(logits, y[perm])
    assert 0 < (bottom - top) * (right - left) < 64 and not torch.equal(mixed, x)
    assert float(got) == pytest.approx(float(expected))


def test_cutmix_trains_an_image_network() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((64, 1, 16, 16)).astype(np.float32)
    y = (x[:, 0, 4:12, 4:12].mean((1, 2)) > 0.5).astype(np.int64)
    config = deep.DeepConfig(max_epochs=2, patience=2, batch_size=16, num_threads=1)
    common = {"seed": 0, "config": config, "device": "cpu"}
    erm = deep.train_network("image-cnn", x, y, x, y, **common)
    mixed = deep.train_network("image-cnn", x, y, x, y, method="cutmix", **common)
    assert any(
        not torch.equal(a, b)
        for a, b in zip(erm.state_dict().values(), mixed.state_dict().values(), strict=True)
    )
    with pytest.raises(ValueError, match="cutmix trains image models"):
        deep.train_network(
            "series-transformer", x[:, :, 0], y, x[:, :, 0], y, method="cutmix", **common
        )


# --- transfer ----------------------------------------------------------------------------


def test_the_source_pool_is_the_other_synthetic_tasks_of_the_modality() -> None:
    from baselines import transfer

    def spec_only(ref: str) -> Task:
        return Task(resolve(ref).spec, Path("."), None)  # type: ignore[arg-type]

    pool = transfer.source_pool(spec_only("synth-cxr-site-shift"))
    assert pool and all(r.startswith("synth-cxr-") for r in pool)
    assert not any(r.startswith(("synth-cxr-site-shift@", "synth-cxr-adversarial")) for r in pool)
    assert "synth-cxr-shortcut@1.1.0" in pool  # the newest released version only
    with pytest.raises(MedFailError, match="no other synthetic dermatology task"):
        transfer.source_pool(spec_only("synth-derm-skin-tone"))
    with pytest.raises(MedFailError, match="is not synthetic"):
        transfer.source_pool(spec_only("synth-cxr-adversarial-transfer"))


def test_medmnist_files_join_the_pool_resized_to_the_task(fake_root: Path) -> None:  # noqa: F811
    """With DermaMNIST on the machine, the skin-tone task (no other synthetic skin task)
    pretrains on it, its 28x28 images resized to 64x64."""
    from baselines import transfer

    skin = Task(resolve("synth-derm-skin-tone").spec, Path("."), None)  # type: ignore[arg-type]
    pool = transfer.source_pool(skin)
    assert pool == ["dermamnist-corruption@1.0.0"]
    build("dermamnist-corruption")
    x, y = transfer.pooled_inputs(pool, seed=0, size=(64, 64))
    assert x.shape == (300, 3, 64, 64) and x.dtype == np.float32 and set(y) <= {0, 1}
    assert x.min() >= 0.0 and x.max() <= 1.0
    (fake_root / "dermamnist.npz").unlink()  # the file gone: no pool again
    with pytest.raises(MedFailError, match="no MedMNIST dermatology file here"):
        transfer.source_pool(skin)


def test_fine_tuning_starts_from_the_pretrained_weights() -> None:
    """With a learning rate of 0 the fine-tuned network keeps the pretrained weights
    (only the input statistics are the task's)."""
    rng = np.random.default_rng(1)
    x = rng.random((32, 1, 16, 16)).astype(np.float32)
    y = rng.integers(0, 2, 32)
    common = {"seed": 0, "device": "cpu"}
    pre = deep.train_network(
        "image-cnn", x, y, x, y, config=deep.DeepConfig(max_epochs=1, num_threads=1), **common
    )
    frozen = deep.DeepConfig(lr=0.0, weight_decay=0.0, max_epochs=1, num_threads=1)
    tuned = deep.train_network(
        "image-cnn", x * 0.5, y, x, y, config=frozen, init_state=pre.state_dict(), **common
    )
    for (name, a), b in zip(pre.state_dict().items(), tuned.state_dict().values(), strict=True):
        if name in ("mean", "std") or "running" in name or "num_batches" in name:
            continue
        assert torch.equal(a, b), name


# --- fairlearn -------------------------------------------------------------------------------


def _biased_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Task:
    """A task whose label depends on the group (known answer: an unconstrained model
    selects group B far more often)."""
    from tests.conftest import write_tiny_task

    rng = np.random.default_rng(0)
    rows = []
    for p in range(600):
        sex = "F" if p % 2 else "M"
        x1 = rng.normal() + (1.0 if sex == "M" else 0.0)
        rows.append(
            {
                "sid": f"s{p}",
                "pid": f"p{p}",
                "hospital": "A" if p < 450 else "B",
                "sex": sex,
                "x1": round(float(x1), 6),
                "x2": round(float(rng.normal()), 6),
                "y": int(x1 + 0.5 * rng.normal() > 0.7),
            }
        )
    root = tmp_path / "tasks"
    write_tiny_task(root, table=pd.DataFrame(rows))
    monkeypatch.setenv("MEDFAIL_TASKS_PATH", str(root))
    return Task.load("tiny-task", build=True)


def test_exponentiated_gradient_lowers_the_constrained_disparity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = _biased_table(tmp_path, monkeypatch)
    X, y, _ = task.split("train")
    groups = fairness.group_labels(task, "train")
    plain = fairness.logistic_pipeline(task, 0).fit(X, y).predict(X)
    for constraint, metric in [
        ("dp", demographic_parity_difference),
        ("eo", equalized_odds_difference),
    ]:
        mitigator = fairness.fit_exponentiated_gradient(task, constraint, 0)
        fair = fairness.exponentiated_gradient_scores(mitigator, X) > 0.5
        before = metric(y, plain, sensitive_features=groups)
        after = metric(y, fair, sensitive_features=groups)
        assert before > 0.2 and after < before / 2, (constraint, before, after)


def test_threshold_optimizer_equalizes_odds_on_val(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = _biased_table(tmp_path, monkeypatch)
    model = fairness.logistic_pipeline(task, 0).fit(*task.split("train")[:2])
    scores = {s: model.predict_proba(task.split(s)[0])[:, 1] for s in task.splits}
    post = fairness.threshold_optimize(scores, task)
    _, yv, _ = task.split("val")
    groups = fairness.group_labels(task, "val")
    before = equalized_odds_difference(yv, scores["val"] > 0.5, sensitive_features=groups)
    # the randomized thresholds' expected rates: TPR/FPR of the probabilities per group
    rates = pd.DataFrame({"y": yv, "p": post["val"], "g": groups}).groupby(["g", "y"])["p"].mean()
    after = max(abs(rates[("F", k)] - rates[("M", k)]) for k in (0, 1))
    assert before > 0.1 and after < 0.05, (before, after)
    assert set(post) == set(task.splits)


def test_score_file_methods_are_scored_like_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = _biased_table(tmp_path, monkeypatch)
    (fam,) = families("threshold-optimizer", task)
    path = fam.fit_and_save(task, 0, tmp_path)
    assert path.name == "scores.parquet" and fam.config["base"]["method"] == "erm"
    report = evaluate(str(path), task, n_boot=50, seeds={"train": 0}, name="to")
    assert {p.name for p in report.probes} == {"performance", "fairness"}
