"""Model outputs are checked before scoring; the error names the split and the first bad sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.errors import MedFailError, PredictionError
from benchmark.models.loading import ModelLoadError, load_model
from benchmark.results.predictions_file import write_predictions
from benchmark.scoring.evaluate import evaluate, predict
from benchmark.scoring.predictions import check_proba, from_frame, to_frame
from benchmark.tasks.task import Task

SPLITS = ("val", "id_test", "ood_test")
CLASSES = ["neg", "pos"]


@pytest.fixture(scope="module")
def task(tiny_task: Task) -> Task:
    return tiny_task


def good_proba(X: pd.DataFrame) -> np.ndarray:
    pos = 1 / (1 + np.exp(-X["x1"].to_numpy(dtype=np.float64)))
    return np.column_stack([1 - pos, pos])


class Good:
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return good_proba(X)


class Corrupting:
    """Valid probabilities, except rows ``rows`` of the batch whose ids are in ``split_ids``."""

    def __init__(self, split_ids: set[str], rows: list[int], bad_row: list[float]) -> None:
        self.split_ids, self.rows, self.bad_row = split_ids, rows, bad_row

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = good_proba(X)
        if set(X.index) == self.split_ids:
            p[self.rows] = self.bad_row
        return p


class Returns:
    def __init__(self, fn) -> None:
        self.fn = fn

    def predict_proba(self, X: pd.DataFrame):
        return self.fn(X)


BAD_ROWS = {
    "nan": ([np.nan, 0.5], "has a NaN or infinite probability"),
    "inf": ([np.inf, 0.0], "has a NaN or infinite probability"),
    "range": ([1.5, -0.5], r"has a value outside \[0, 1\]"),
    "sum": ([0.3, 0.3], "has probabilities that do not sum to 1"),
}


@pytest.mark.parametrize("split", ["val", "ood_test"])
@pytest.mark.parametrize("kind", sorted(BAD_ROWS))
def test_evaluate_names_the_split_and_first_bad_sample(task: Task, split: str, kind: str) -> None:
    X = task.split(split)[0]
    bad_row, what = BAD_ROWS[kind]
    model = Corrupting(set(X.index), rows=[2, 4], bad_row=bad_row)
    with pytest.raises(PredictionError, match=what) as err:
        evaluate(model, task, n_boot=40)
    message = str(err.value)
    assert message.startswith(f"split {split}: ")
    assert f"sample {X.index[2]!r} " in message  # the first offender, not the second
    assert repr(X.index[4]) not in message
    assert f"(2 of {len(X)} samples)" in message
    assert isinstance(err.value, MedFailError)


@pytest.mark.parametrize(
    "fn",
    [
        lambda X: good_proba(X)[:, 1],
        lambda X: np.column_stack([good_proba(X), np.zeros(len(X))]),
        lambda X: good_proba(X)[1:],
        lambda X: good_proba(X)[None],
    ],
    ids=["vector", "three-columns", "one-row-short", "3d"],
)
def test_wrong_shape_is_refused(task: Task, fn) -> None:
    n = len(task.split("val")[1])
    with pytest.raises(PredictionError, match=rf"^split val: .*shape .*expected \({n}, 2\)"):
        evaluate(Returns(fn), task, n_boot=40)


def test_non_numeric_and_failing_models_are_prediction_errors(task: Task) -> None:
    as_text = Returns(lambda X: good_proba(X).astype(str))
    with pytest.raises(PredictionError, match=r"^split val: .*not real"):
        evaluate(as_text, task, n_boot=40)

    def boom(X):
        raise RuntimeError("out of memory")

    with pytest.raises(PredictionError, match=r"^split val: the model failed .*out of memory"):
        evaluate(Returns(boom), task, n_boot=40)


def test_a_good_model_passes_the_checks(task: Task) -> None:
    report = evaluate(Good(), task, n_boot=40)
    frame = report.predictions
    assert set(frame["split"]) == set(SPLITS)
    X = task.split("ood_test")[0]
    got = frame.loc[frame["split"] == "ood_test", "score"].to_numpy()
    np.testing.assert_allclose(got, good_proba(X)[:, 1])


# -- check_proba directly ---------------------------------------------------------------------


def test_check_proba_names_the_first_offender() -> None:
    ids = np.array(["a", "b", "c", "d"])
    proba = np.array([[0.5, 0.5], [0.2, 0.9], [0.5, 0.5], [0.9, 0.9]])
    with pytest.raises(PredictionError) as err:
        check_proba(proba, ids, 2, "split id_test")
    message = str(err.value)
    assert message.startswith("split id_test: sample 'b' has probabilities that do not sum")
    assert "(2 of 4 samples)" in message
    assert "np.str_" not in message  # the plain id, not numpy's repr


@pytest.mark.parametrize("kind", sorted(BAD_ROWS))
def test_check_proba_refuses_each_kind_of_bad_row(kind: str) -> None:
    bad_row, what = BAD_ROWS[kind]
    proba = np.full((3, 2), 0.5)
    proba[1] = bad_row
    with pytest.raises(PredictionError, match=rf"^split val: sample 'y' {what}"):
        check_proba(proba, np.array(["x", "y", "z"]), 2, "split val")


def test_check_proba_tolerates_rounding_and_clips() -> None:
    proba = [[-1e-9, 1 + 1e-9], [0.49999, 0.50002], [1.0, 0.0]]
    out = check_proba(proba, np.array(["a", "b", "c"]), 2, "split val")
    assert out.dtype == np.float64
    assert out.min() >= 0.0
    assert out.max() <= 1.0
    np.testing.assert_allclose(out, np.clip(np.asarray(proba), 0, 1))
    empty = check_proba(np.zeros((0, 2)), np.array([], dtype=str), 2, "split val")
    assert empty.shape == (0, 2)


def test_check_proba_refuses_wrong_shapes_and_dtypes() -> None:
    ids = np.array(["a", "b"])
    for bad in (np.full(2, 0.5), np.full((2, 3), 1 / 3), np.full((3, 2), 0.5)):
        with pytest.raises(PredictionError, match=r"shape .* expected \(2, 2\)"):
            check_proba(bad, ids, 2, "split val")
    for bad in (np.full((2, 2), True), np.full((2, 2), 0.5 + 0j), [["a", "b"], ["c", "d"]]):
        with pytest.raises(PredictionError, match="not real"):
            check_proba(bad, ids, 2, "split val")


# -- predictions files ------------------------------------------------------------------------


def predictions_table(task: Task) -> pd.DataFrame:
    frames = []
    for split in SPLITS:
        X = task.split(split)[0]
        p = good_proba(X)
        frames.append(
            pd.DataFrame(
                {
                    "sample_id": X.index.to_numpy(dtype=str),
                    "proba_neg": p[:, 0],
                    "proba_pos": p[:, 1],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def write(table: pd.DataFrame, path: Path) -> str:
    if path.suffix == ".csv":
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path, index=False)
    return str(path)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_predictions_file_missing_an_id(task: Task, tmp_path: Path, suffix: str) -> None:
    table = predictions_table(task)
    ood = task.split("ood_test")[0].index
    dropped = [ood[3], ood[5]]
    spec = write(table[~table["sample_id"].isin(dropped)], tmp_path / f"preds{suffix}")
    with pytest.raises(PredictionError) as err:
        evaluate(spec, task, n_boot=40)
    message = str(err.value)
    assert message.startswith("split ood_test: ")
    assert f"no row for sample {ood[3]!r}" in message
    assert f"(2 of {len(ood)} samples missing)" in message


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_predictions_file_with_duplicated_ids_is_refused_at_load(
    task: Task, tmp_path: Path, suffix: str
) -> None:
    table = predictions_table(task)
    twice = table["sample_id"].iloc[7]
    table = pd.concat([table, table.iloc[[7, 9]]], ignore_index=True)
    spec = write(table, tmp_path / f"preds{suffix}")
    with pytest.raises(ModelLoadError, match=f"sample {twice!r} appears more than once"):
        load_model(spec, task)


@pytest.mark.parametrize(
    ("column", "value", "what"),
    [
        ("proba_pos", np.nan, "has a NaN or infinite probability"),
        ("proba_neg", 0.9, "has probabilities that do not sum to 1"),
        ("score", 1.7, r"has a value outside \[0, 1\]"),
        ("score", np.nan, "has a NaN or infinite probability"),
    ],
)
def test_bad_values_in_a_predictions_file(
    task: Task, tmp_path: Path, column: str, value: float, what: str
) -> None:
    table = predictions_table(task)
    if column == "score":
        table = table[["sample_id"]].assign(score=table["proba_pos"])
    id_test = task.split("id_test")[0].index
    table.loc[table["sample_id"] == id_test[1], column] = value
    spec = write(table, tmp_path / "preds.parquet")
    with pytest.raises(PredictionError, match=rf"^split id_test: sample {id_test[1]!r} {what}"):
        evaluate(spec, task, n_boot=40)


def test_predictions_file_needs_ids_and_class_columns(task: Task, tmp_path: Path) -> None:
    table = predictions_table(task)
    no_ids = write(table.drop(columns="sample_id"), tmp_path / "no-ids.csv")
    with pytest.raises(ModelLoadError, match="no sample_id column"):
        load_model(no_ids, task)
    no_cols = write(table.rename(columns={"proba_pos": "p1"}), tmp_path / "no-cols.parquet")
    with pytest.raises(ModelLoadError, match=r"expected columns \['proba_neg', 'proba_pos'\]"):
        load_model(no_cols, task)


# -- saved predictions round-trip ---------------------------------------------------------------


def test_to_frame_from_frame_round_trip(task: Task, tmp_path: Path) -> None:
    preds = predict(Good(), task, SPLITS)
    assert preds["val"].groups.keys() == {"sex"}
    path = tmp_path / "predictions.parquet"
    write_predictions(to_frame(preds, CLASSES), path)
    back = from_frame(pd.read_parquet(path), CLASSES)
    assert list(back) == list(SPLITS)
    for split, p in preds.items():
        q = back[split]
        np.testing.assert_array_equal(q.sample_id, p.sample_id)
        np.testing.assert_array_equal(q.patient_id, p.patient_id)
        np.testing.assert_array_equal(q.site, p.site)
        np.testing.assert_array_equal(q.y, p.y)
        np.testing.assert_array_equal(q.proba, p.proba)
        np.testing.assert_array_equal(q.score, p.score)
        assert q.groups.keys() == p.groups.keys()
        np.testing.assert_array_equal(q.groups["sex"], p.groups["sex"])


def test_mixed_faults_name_the_first_bad_sample_overall() -> None:
    ids = np.array(["a", "b", "c"])
    proba = np.array([[0.5, 0.5], [0.3, 0.3], [np.nan, 1.0]])  # b: bad sum, c: NaN
    with pytest.raises(PredictionError, match=r"sample 'b' has probabilities that do not sum"):
        check_proba(proba, ids, 2, "split x")
