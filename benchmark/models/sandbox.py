"""Scikit-learn models from skops files, checked, loaded and run in a sandboxed child process.

Naming only trusted types (:data:`TRUSTED_SKOPS_TYPES`) keeps a skops file from running
code, but not from holding hostile *data*: a tree whose child indices point outside its
node array crashes or hangs the compiled prediction loop, and a small compressed array
inflates to gigabytes when read. So the trust check, the load and every prediction happen
in a child process (``multiprocessing``'s ``forkserver``: a clean server process that
imports scikit-learn once and forks a fresh child per model) under an address-space limit
(:data:`MEMORY_LIMIT`) and a time limit per request (:data:`TIME_LIMIT_S`). The parent
sends the child its batches; the child answers with a JSON header and raw float64 bytes,
never a pickle, so nothing the model does in the child can run code in the parent. A
crash, an exhausted limit or a timeout is a one-line error naming the file.
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.errors import ModelLoadError, PredictionError, one_line
from benchmark.results.report import ModelInfo

#: What skops may construct or call beyond its own default trust (scikit-learn estimators,
#: builtin containers, numpy dtypes, ufuncs and bit generators): exactly the internals that
#: MedFail's model families and ordinary scikit-learn pipelines store, found by saving them
#: (tests/models/test_model_safety.py). Named one by one, never by package: a whole package holds
#: call gadgets (``numpy.memmap`` truncates a file when constructed, ``numpy.savetxt``
#: writes one). ``functools.partial`` is listed because HistGradientBoosting stores
#: ``partial(check_array, ...)``; whatever a partial wraps must itself be on this list.
TRUSTED_SKOPS_TYPES = frozenset(
    {
        "functools.partial",
        "numpy.dtype",
        "sklearn.utils.validation.check_array",
        "sklearn.utils._bunch.Bunch",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    }
)


#: Modules the fork server imports once, so each sandboxed child starts in milliseconds.
PRELOAD = ["benchmark.models.sandbox", "skops.io", "sklearn.ensemble", "sklearn.pipeline"]
#: Most classes a sandboxed model may answer with (the parent receives nothing larger).
MAX_CLASSES = 256
#: Address space of the child process, in bytes (scikit-learn and numpy need about 1 GiB).
MEMORY_LIMIT = 4 * 1024**3
#: Seconds the child may take to check and load the file, or to answer one batch.
TIME_LIMIT_S = 300.0


class SandboxError(ModelLoadError):
    """The sandboxed model was refused, crashed, ran out of memory or time."""


def _reply(conn: Connection, header: dict[str, Any], data: bytes = b"") -> None:
    conn.send_bytes(json.dumps(header).encode())
    if header.get("shape") is not None:
        conn.send_bytes(data)


def _serve(conn: Connection, path: str, memory_limit: int) -> None:
    """The child: limit memory, check and load the file, then answer batches until EOF."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    try:
        import skops.io as sio  # only in the child: the parent never reads the archive

        untrusted = sio.get_untrusted_types(file=path)
        refused = sorted(set(untrusted) - TRUSTED_SKOPS_TYPES)
        if refused:
            _reply(conn, {"refused": refused})
            return
        estimator = sio.load(path, trusted=untrusted)
        if not callable(getattr(estimator, "predict_proba", None)):
            _reply(conn, {"error": "the estimator has no predict_proba"})
            return
    except MemoryError:
        _reply(conn, {"error": f"loading it exceeded the {memory_limit:,}-byte memory limit"})
        return
    except Exception as e:  # a malformed archive: whatever skops raises, reported
        _reply(conn, {"error": f"not a loadable skops file: {type(e).__name__}: {one_line(e)}"})
        return
    _reply(conn, {"ok": True})
    while True:
        try:
            batch = conn.recv()  # from the parent, which holds the task's data
        except EOFError:
            return
        try:
            proba = np.ascontiguousarray(estimator.predict_proba(batch), dtype=np.float64)
            _reply(conn, {"shape": list(proba.shape)}, proba.tobytes())
        except MemoryError:
            _reply(conn, {"error": f"predicting exceeded the {memory_limit:,}-byte memory limit"})
        except Exception as e:  # the model's own failure, reported like any predict error
            _reply(conn, {"error": f"{type(e).__name__}: {one_line(e)}"})


@contextmanager
def _bare_main() -> Iterator[None]:
    """Start the child without this process's ``__main__``: multiprocessing re-runs the
    parent's main script in every child it starts, and where that script is a Streamlit
    page (left as ``__main__`` by AppTest) it loads and rechecks every leaderboard entry
    first (measured: 15 s per child instead of 0.02 s). ``_serve`` needs none of it."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


@dataclass
class SandboxedClassifier:
    """A Model whose ``predict_proba`` runs in the sandboxed child holding the estimator."""

    path: Path
    info: ModelInfo | None = field(default=None, repr=False)
    _conn: Connection | None = field(default=None, repr=False)
    _process: Any = field(default=None, repr=False)

    @classmethod
    def open(cls, path: Path, info: ModelInfo | None = None) -> SandboxedClassifier:
        """Start the child on ``path``; a refused, unreadable or hostile file is an error."""
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)  # takes effect when the server first starts
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_serve, args=(child, str(path), MEMORY_LIMIT), daemon=True)
        with _bare_main():
            process.start()
        child.close()
        model = cls(path, info, parent, process)
        header = model._answer("checking and loading it")
        if "refused" in header:
            model.close()
            raise SandboxError(
                f"{path}: refused: the file asks to construct or call "
                f"{', '.join(header['refused'])}, which MedFail does not trust (scikit-learn "
                "estimators and the internals listed in "
                "benchmark.models.sandbox.TRUSTED_SKOPS_TYPES only)"
            )
        return model

    def _answer(self, doing: str) -> dict[str, Any]:
        """The child's next header; its death, silence or error is a SandboxError."""
        assert self._conn is not None
        if not self._conn.poll(TIME_LIMIT_S):
            self.close()
            raise SandboxError(f"{self.path}: {doing} took over {TIME_LIMIT_S:.0f} s; stopped")
        try:
            header = json.loads(self._conn.recv_bytes(64 * 1024))
        except (EOFError, OSError, ValueError):
            code = self._exit_code()
            self.close()
            raise SandboxError(
                f"{self.path}: the model's process died while {doing} (exit code {code}); "
                "the file holds data that crash scikit-learn"
            ) from None
        if "error" in header:
            self.close()
            raise SandboxError(f"{self.path}: {header['error']}")
        return header

    def _exit_code(self) -> int | None:
        if self._process is None:
            return None
        self._process.join(5)
        return self._process.exitcode

    def predict_proba(self, batch: Any) -> np.ndarray:
        if self._conn is None:
            raise PredictionError(f"{self.path}: the model's process has stopped")
        self._conn.send(batch)
        header = self._answer("predicting")
        shape = tuple(header["shape"])
        if len(shape) != 2 or shape[0] != len(batch) or not 0 < shape[1] <= MAX_CLASSES:
            self.close()  # refused before its bytes are received
            raise SandboxError(
                f"{self.path}: predict_proba answered shape {shape} for {len(batch)} rows"
            )
        data = self._conn.recv_bytes(8 * shape[0] * shape[1] + 1)
        return np.frombuffer(data, dtype=np.float64).reshape(shape).copy()

    def close(self) -> None:
        """Stop the child (it also stops with this process)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(5)

    def __del__(self) -> None:
        self.close()
