"""A submitted model file must not touch the user's files or exhaust memory.

The skops gadget corpus: every way a scikit-learn file can name something that writes,
deletes, runs or imports; each is refused by name, and the victim file is untouched. The
control cases show the gadgets are real (loaded without MedFail's check, they do the harm).
Safetensors: a declared config is checked against the stored shapes before any allocation.
"""

from __future__ import annotations

import functools
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import numpy.lib.format
import pandas as pd
import pytest
import skops.io as sio
import torch
from safetensors.torch import save_file
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    StackingClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.models.architectures import ImageCNN, TabularMLP
from benchmark.models.loading import MAX_PARAMETERS, ModelLoadError, load_model
from benchmark.models.sandbox import TRUSTED_SKOPS_TYPES, SandboxedClassifier, SandboxError
from benchmark.tasks.task import Task

VICTIM_TEXT = "the user's data\n"


@pytest.fixture(scope="module")
def task(tiny_task: Task) -> Task:
    return tiny_task


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "precious" / "victim.txt"
    path.parent.mkdir()
    path.write_text(VICTIM_TEXT)
    return path


def gadget_file(func: object, tmp_path: Path) -> Path:
    """A pipeline whose first step calls ``func`` on the input at predict time."""
    lr = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    path = tmp_path / "model.skops"
    sio.dump(Pipeline([("f", FunctionTransformer(func=func)), ("lr", lr)]), path)
    return path


GADGETS = {
    # name -> (factory of the callable given the victim path, the type the error must name)
    "numpy.memmap": (
        lambda v: functools.partial(np.memmap, v, mode="w+", shape=(1,)),
        "numpy.memmap",
    ),
    "numpy.savetxt": (lambda v: functools.partial(np.savetxt, v), "numpy.savetxt"),
    "numpy.save": (lambda v: functools.partial(np.save, v), "numpy.save"),
    "numpy.fromfile": (lambda v: functools.partial(np.fromfile, v), "numpy.fromfile"),
    "numpy.lib.format.open_memmap": (
        lambda v: functools.partial(numpy.lib.format.open_memmap, v, mode="w+"),
        "numpy.lib.format.open_memmap",
    ),
    "builtins.open": (lambda v: functools.partial(open, v, "w"), "io.open"),
    "os.remove": (lambda v: functools.partial(os.remove, v), "remove"),
    "os.system": (lambda v: os.system, "system"),
    "subprocess.Popen": (
        lambda v: functools.partial(subprocess.Popen, ["rm", str(v)]),
        "subprocess.Popen",
    ),
    "shutil.rmtree": (lambda v: functools.partial(shutil.rmtree, Path(v).parent), "shutil.rmtree"),
    "a bound method": (lambda v: pathlib.Path(v).unlink, "unlink"),
    "partial of partial": (
        lambda v: functools.partial(functools.partial(np.memmap, v), mode="w+"),
        "numpy.memmap",
    ),
}


@pytest.mark.parametrize("name", list(GADGETS))
def test_skops_gadgets_are_refused_by_name_and_touch_nothing(
    task: Task, tmp_path: Path, victim: Path, name: str
) -> None:
    make, named = GADGETS[name]
    path = gadget_file(make(str(victim)), tmp_path)
    with pytest.raises(ModelLoadError, match="refused") as err:
        load_model(str(path), task)
    assert named in str(err.value)
    assert victim.read_text() == VICTIM_TEXT


def test_the_memmap_gadget_is_real(tmp_path: Path, victim: Path) -> None:
    """Control: loaded without MedFail's check, predicting truncates the victim (the bug)."""
    path = gadget_file(functools.partial(np.memmap, str(victim), mode="w+", shape=(1,)), tmp_path)
    unsafe = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    with pytest.raises(Exception):  # noqa: B017 (whatever fails after the harm)
        unsafe.predict_proba(np.array([[1.0]]))
    assert victim.stat().st_size == 0


def crafted(tmp_path: Path, module: str, name: str) -> Path:
    """A skops file edited by hand to name ``module.name`` as its transformer function."""
    lr = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
    data = sio.dumps(Pipeline([("f", FunctionTransformer(np.add)), ("lr", lr)]))
    src = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(src.read("schema.json"))
    func = schema["content"]["content"]["steps"]["content"][0]["content"][1]["content"]
    func = func["content"]["func"]
    assert (func["__class__"], func["__module__"]) == ("add", "numpy")
    func.update({"__class__": name, "__module__": module})
    schema = json.dumps(schema)
    out = tmp_path / "crafted.skops"
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.namelist():
            dst.writestr(item, schema if item == "schema.json" else src.read(item))
    return out


def test_the_trust_check_imports_nothing(tiny: Path, tmp_path: Path) -> None:
    """A file naming numpy.f2py.__main__ used to run numpy's f2py tool inside evaluate."""
    path = crafted(tmp_path, "numpy.f2py.__main__", "X")
    code = textwrap.dedent(
        f"""
        import sys
        from benchmark.models.loading import ModelLoadError, load_model
        from benchmark.tasks.task import Task
        task = Task.load("tiny-task", build=True)
        try:
            load_model({str(path)!r}, task)
        except ModelLoadError as e:
            print("REFUSED", e)
        print("IMPORTED" if "numpy.f2py.__main__" in sys.modules else "NOT-IMPORTED")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=os.environ
    )
    assert result.returncode == 0, result.stderr
    assert "REFUSED" in result.stdout and "numpy.f2py.__main__.X" in result.stdout
    assert "NOT-IMPORTED" in result.stdout


def test_model_code_that_exits_makes_evaluate_fail(tiny: Path, tmp_path: Path) -> None:
    """A run that writes no report must not exit 0, even if the model's code calls exit."""
    out = str(tmp_path / "out")
    (tmp_path / "quitter.py").write_text("import sys\n\ndef make():\n    sys.exit(0)\n")
    sys.path.insert(0, str(tmp_path))
    try:
        result = CliRunner().invoke(
            app,
            ["evaluate", "--task", "tiny-task", "--model", "python:quitter:make", "--out", out],
        )
    finally:
        sys.path.remove(str(tmp_path))
    assert result.exit_code != 0
    assert "tried to end the process" in str(result.exception)
    assert not (tmp_path / "out" / "report.json").exists()


def _frame(n: int = 120) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y"], n)}
    )
    return X, (X["a"] > 0).to_numpy(dtype=int)


def _encoded() -> ColumnTransformer:
    return ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), ["c"])], remainder="passthrough"
    )


ORDINARY = {
    "hist-gbm (MedFail's gbm family)": lambda: Pipeline(
        [
            (
                "coder",
                ColumnTransformer([("cat", OrdinalEncoder(), ["c"])], remainder="passthrough"),
            ),
            ("gbm", HistGradientBoostingClassifier(max_iter=5, categorical_features=[0])),
        ]
    ),
    "logistic regression": lambda: Pipeline(
        [
            (
                "ct",
                ColumnTransformer(
                    [
                        ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["a", "b"]),
                        ("cat", OneHotEncoder(), ["c"]),
                    ]
                ),
            ),
            ("lr", LogisticRegression()),
        ]
    ),
    "random forest": lambda: make_pipeline(_encoded(), RandomForestClassifier(n_estimators=3)),
    "gradient boosting": lambda: make_pipeline(
        _encoded(), GradientBoostingClassifier(n_estimators=3)
    ),
    "calibrated tree": lambda: make_pipeline(
        _encoded(), CalibratedClassifierCV(DecisionTreeClassifier(), cv=3)
    ),
    "mlp": lambda: make_pipeline(_encoded(), StandardScaler(), MLPClassifier(max_iter=300)),
    "knn": lambda: make_pipeline(_encoded(), KNeighborsClassifier()),
    "svc": lambda: make_pipeline(_encoded(), CalibratedClassifierCV(SVC(), ensemble=False)),
    "stacking": lambda: make_pipeline(
        _encoded(), StackingClassifier([("lr", LogisticRegression()), ("nb", GaussianNB())])
    ),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", list(ORDINARY))
def test_ordinary_pipelines_still_load(tmp_path: Path, name: str) -> None:
    """The allow-list is not too tight: everyday scikit-learn pipelines load and predict."""
    from benchmark.models.loading import _load_skops

    X, y = _frame()
    est = ORDINARY[name]().fit(X, y)
    path = tmp_path / "model.skops"
    sio.dump(est, path)
    model = _load_skops(path, None, None, {"name": name, "adapter": "skops"})  # type: ignore[arg-type]
    np.testing.assert_array_equal(model.predict_proba(X), est.predict_proba(X))


# -- safetensors: the declared config against the stored tensors ---------------------------


def _save(module: torch.nn.Module, path: Path, arch: str, config: object) -> Path:
    save_file(
        module.state_dict(),
        str(path),
        metadata={"medfail.arch": arch, "medfail.config": json.dumps(config)},
    )
    return path


def test_a_small_file_declaring_a_huge_network_is_refused_before_building(
    task: Task, tmp_path: Path
) -> None:
    """20 KB of weights whose config asks for a 160 GB network: refused, nothing allocated
    (a width larger than all the values the file holds is impossible)."""
    small = ImageCNN(1, 2, widths=(4, 8))
    huge = small.config | {"widths": [200_000, 200_000]}
    path = _save(small, tmp_path / "huge.safetensors", "image-cnn", huge)
    assert path.stat().st_size < 20_000
    with pytest.raises(ModelLoadError, match=r"config\.widths\.0 = 200000 is impossible"):
        load_model(str(path), task)


def test_a_plausible_config_of_another_shape_is_refused_by_shape(
    task: Task, tmp_path: Path
) -> None:
    small = ImageCNN(1, 2, widths=(4, 8))
    path = _save(
        small, tmp_path / "other.safetensors", "image-cnn", small.config | {"widths": [4, 9]}
    )
    with pytest.raises(ModelLoadError, match="do not fit the declared image-cnn config"):
        load_model(str(path), task)


def test_a_config_with_many_layers_stops_building_early(task: Task, tmp_path: Path) -> None:
    """16 layers for a file of 16 tensors passes the count rule, but would register 100
    tensors: the meta build stops once it has registered more than the file could fit."""
    small = ImageCNN(1, 2, widths=(4, 8))
    many = small.config | {"widths": [1] * 16}
    path = _save(small, tmp_path / "many.safetensors", "image-cnn", many)
    with pytest.raises(ModelLoadError, match="declares more tensors than the file's 16"):
        load_model(str(path), task)
    lists = small.config | {"widths": [4] * 1000}
    path = _save(small, tmp_path / "lists.safetensors", "image-cnn", lists)
    with pytest.raises(ModelLoadError, match="lists 1000 items for 16 tensors"):
        load_model(str(path), task)


@pytest.mark.parametrize("config", [{"n_in": -5, "n_classes": 2}, [1, 2], "x"])
def test_impossible_configs_are_one_line_errors(task: Task, tmp_path: Path, config: object) -> None:
    mlp = TabularMLP(4, 2, (8,))
    path = _save(mlp, tmp_path / "bad.safetensors", "tabular-mlp", config)
    with pytest.raises(ModelLoadError) as err:
        load_model(str(path), task)
    assert "\n" not in str(err.value)


def test_the_stated_size_limit_holds(
    task: Task, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlp = TabularMLP(4, 2, (8,))
    path = _save(mlp, tmp_path / "ok.safetensors", "tabular-mlp", mlp.config)
    monkeypatch.setattr("benchmark.models.loading.MAX_PARAMETERS", 10)
    with pytest.raises(ModelLoadError, match="over the limit of 10"):
        load_model(str(path), task)
    assert MAX_PARAMETERS >= 10**7  # DenseNet-121 (7 million values) fits the real limit


# -- hostile data inside trusted types: the sandbox ------------------------------------------


def tampered_tree(tmp_path: Path, child: int) -> tuple[Path, np.ndarray]:
    """A decision tree whose root's children both point to ``child`` (saved with skops)."""
    from sklearn.tree import DecisionTreeClassifier

    X = np.random.default_rng(0).normal(size=(200, 3))
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, X[:, 0] > 0)
    state = tree.tree_.__getstate__()
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = nodes["right_child"][0] = child
    tree.tree_.__setstate__(dict(state, nodes=nodes))
    path = tmp_path / f"tree-{child}.skops"
    sio.dump(tree, path)
    assert set(sio.get_untrusted_types(file=path)) <= TRUSTED_SKOPS_TYPES  # only trusted
    return path, X


def test_a_tree_pointing_outside_itself_crashes_only_its_sandbox(tmp_path: Path) -> None:
    """Children at index 10^9: the compiled predict loop reads outside memory and dies."""
    path, X = tampered_tree(tmp_path, 10**9)
    model = SandboxedClassifier.open(path)
    with pytest.raises(SandboxError, match="process died while predicting"):
        model.predict_proba(X[:5])


def test_a_tree_that_loops_is_stopped_by_the_time_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Children pointing back at the root: predicting never ends, so the child is killed."""
    path, X = tampered_tree(tmp_path, 0)
    model = SandboxedClassifier.open(path)  # the default limit: starting the sandbox's
    # server can itself take 3 s on a busy machine, and this test is about predicting
    monkeypatch.setattr("benchmark.models.sandbox.TIME_LIMIT_S", 3.0)
    with pytest.raises(SandboxError, match="predicting took over 3 s; stopped"):
        model.predict_proba(X[:5])
    assert not model._process.is_alive()


def test_a_small_file_that_inflates_past_the_memory_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One array in the archive replaced by 2.4 GB of deflated zeros (a 2.4 MB file)."""
    lr = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
    src = zipfile.ZipFile(io.BytesIO(sio.dumps(lr)))
    victim = next(n for n in src.namelist() if n.endswith(".npy"))
    n = 300_000_000
    header = numpy.lib.format.header_data_from_array_1_0(np.zeros(1))
    header["shape"] = (n,)
    path = tmp_path / "bomb.skops"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.namelist():
            if item != victim:
                dst.writestr(item, src.read(item))
                continue
            with dst.open(item, "w", force_zip64=True) as out:
                numpy.lib.format.write_array_header_1_0(out, header)
                chunk = bytes(8 * 1_000_000)
                for _ in range(n // 1_000_000):
                    out.write(chunk)
    assert path.stat().st_size < 5_000_000
    monkeypatch.setattr("benchmark.models.sandbox.MEMORY_LIMIT", 1536 * 1024**2)
    with pytest.raises(SandboxError, match=r"memory limit|process died"):
        SandboxedClassifier.open(path)


@pytest.mark.parametrize(
    ("arch", "config", "message"),
    [
        ("series-transformer", {"n_layers": 100_000}, r"config\.n_layers = 100000 is impossible"),
        ("series-transformer", {"n_heads": 0}, "integer modulo by zero"),
        ("series-transformer", {"max_len": float("inf")}, "is not a finite number"),
        ("tabular-mlp", {"hidden": [10**30]}, "is impossible for a file"),
    ],
)
def test_configs_that_would_build_huge_or_crash_are_one_line_errors(
    task: Task, tmp_path: Path, arch: str, config: dict, message: str
) -> None:
    """The series transformer copies its layer n_layers times before any hook can count:
    100,000 layers took 96 s and 4.6 GB. Checked against the file before building."""
    path = tmp_path / "small.safetensors"
    save_file(
        {f"t{i}": torch.zeros(1) for i in range(40)},
        str(path),
        metadata={"medfail.arch": arch, "medfail.config": json.dumps(config)},
    )
    with pytest.raises(ModelLoadError, match=message) as err:
        load_model(str(path), task)
    assert "\n" not in str(err.value)


def test_a_deeply_nested_config_is_refused(task: Task, tmp_path: Path) -> None:
    path = tmp_path / "deep.safetensors"
    deep = "[" * 200_000 + "]" * 200_000
    save_file(
        {"w": torch.zeros(1)},
        str(path),
        metadata={"medfail.arch": "tabular-mlp", "medfail.config": deep},
    )
    with pytest.raises(ModelLoadError, match="too large or too deeply nested"):
        load_model(str(path), task)


def test_a_state_dict_with_a_non_string_key_is_refused(task: Task, tmp_path: Path) -> None:
    path = tmp_path / "intkey.pt"
    torch.save({1: torch.zeros(3)}, path)
    with pytest.raises(ModelLoadError, match="a dict of tensors by name"):
        load_model(f"torch:{path}#tabular-mlp", task)


def test_many_tiny_tensors_do_not_buy_many_layers(task: Task, tmp_path: Path) -> None:
    """100,000 scalar tensors passed the old count rule and let n_layers = 100,000 build
    (87 s, 4.8 GB); a transformer layer holds 12 tensors, and no config exceeds 256 layers."""
    path = tmp_path / "layers.safetensors"
    config = {"n_layers": 200}
    save_file(
        {f"t{i}": torch.zeros(1) for i in range(1200)},
        str(path),
        metadata={"medfail.arch": "series-transformer", "medfail.config": json.dumps(config)},
    )
    with pytest.raises(ModelLoadError, match=r"config\.n_layers = 200 is impossible"):
        load_model(str(path), task)
    many = tmp_path / "many.safetensors"
    save_file(
        {f"t{i}": torch.zeros(1) for i in range(20_001)},
        str(many),
        metadata={"medfail.arch": "tabular-mlp"},
    )
    with pytest.raises(ModelLoadError, match="tensors, over the limit of 20,000"):
        load_model(str(many), task)


def test_the_sandbox_child_does_not_rerun_the_parent_s_main_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """multiprocessing re-runs the parent's __main__ in each child; a Streamlit page left
    as __main__ by AppTest reloaded every leaderboard entry there (15 s per child)."""
    import types

    marker = tmp_path / "ran"
    script = tmp_path / "page.py"
    script.write_text(f"open({str(marker)!r}, 'a').write('x')\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    lr = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
    path = tmp_path / "lr.skops"
    sio.dump(lr, path)
    model = SandboxedClassifier.open(path)
    assert model.predict_proba(np.array([[0.0]])).shape == (1, 2)
    model.close()
    assert not marker.exists()
