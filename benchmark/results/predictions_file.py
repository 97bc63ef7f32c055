"""The per-sample predictions file saved beside a report (``predictions.parquet``).

One long table: sample id, split (including pseudo-splits such as scores under attack),
patient, site, true label, one ``proba_<class>`` column per class, ``score`` for binary
tasks and the ``group_*`` attributes. Written byte-reproducibly (zstd Parquet, no pandas
metadata) and atomically; read back with limits, since a file may come from outside.
"""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benchmark.common.files import atomic_write_bytes
from benchmark.errors import MedFailError, one_line

#: Most columns a predictions file may hold (ids, labels, probabilities, group attributes).
MAX_COLUMNS = 256


def write_predictions(frame: pd.DataFrame, path: Path) -> str:
    """Parquet (zstd), written atomically; returns the file's sha256."""
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
    data = sink.getvalue().to_pybytes()
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def read_predictions(path: Path, max_rows: int) -> pd.DataFrame:
    """The table in ``path``, a regular file whose footer declares at most ``max_rows`` rows
    and :data:`MAX_COLUMNS` columns; a larger one is refused before its data are read (a
    small compressed file can declare many rows)."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise MedFailError(f"{path}: not a regular file; refused")
        meta = pq.ParquetFile(path).metadata
        if meta.num_rows > max_rows or meta.num_columns > MAX_COLUMNS:
            raise MedFailError(
                f"{path}: {meta.num_rows:,} rows x {meta.num_columns} columns, over the limit "
                f"of {max_rows:,} x {MAX_COLUMNS} for its report; refused"
            )
        return pd.read_parquet(path)
    except MedFailError:
        raise
    except Exception as e:  # pyarrow raises several types for a corrupt file
        raise MedFailError(f"{path}: cannot read the predictions: {one_line(e)}") from e
