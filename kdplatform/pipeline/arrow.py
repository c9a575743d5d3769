"""Arrow reshaping for bulk ingest: per-example tables gain the run and dataset ids they belong to."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def constant(n: int, value: int) -> pa.Array:
    """An int32 column of `n` copies of an id."""
    return pa.array(np.full(n, value), pa.int32())


def with_columns(table: pa.Table, columns: dict[str, pa.Array]) -> pa.Table:
    for name, col in columns.items():
        table = table.append_column(name, col)
    return table


def with_ids(table: pa.Table, **ids: int) -> pa.Table:
    """`table` with one constant int32 column per id (e.g. run_id=3, dataset_id=1)."""
    return with_columns(table, {name: constant(table.num_rows, v) for name, v in ids.items()})
