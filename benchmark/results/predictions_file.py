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

#: Rows read at a time, so a file is refused after at most one batch too many.
BATCH_ROWS = 65_536
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
    """The table in ``path``, a regular file of at most ``max_rows`` rows and
    :data:`MAX_COLUMNS` columns. The footer's counts are checked first (its row groups must
    add up to its total), then the data are read batch by batch and the read stops as soon
    as more rows arrive than allowed, so a file whose footer lies is still bounded."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise MedFailError(f"{path}: not a regular file; refused")
        parquet = pq.ParquetFile(path)
        meta = parquet.metadata
        groups = sum(meta.row_group(i).num_rows for i in range(meta.num_row_groups))
        if max(meta.num_rows, groups) > max_rows or meta.num_columns > MAX_COLUMNS:
            raise MedFailError(
                f"{path}: {max(meta.num_rows, groups):,} rows x {meta.num_columns} columns, "
                f"over the limit of {max_rows:,} x {MAX_COLUMNS} for its report; refused"
            )
        batches, rows = [], 0
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            rows += batch.num_rows
            if rows > max_rows:
                raise MedFailError(f"{path}: more rows than its footer declares; refused")
            batches.append(batch)
        return pa.Table.from_batches(batches, schema=parquet.schema_arrow).to_pandas()
    except MedFailError:
        raise
    except Exception as e:  # pyarrow raises several types for a corrupt file
        raise MedFailError(f"{path}: cannot read the predictions: {one_line(e)}") from e
