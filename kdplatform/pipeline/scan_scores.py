"""A scan shard's scores in the store's shape: the per-example setting and prefix-length columns of
:meth:`~kdplatform.memorization.ScanResult.score_columns` as the long tables `extraction_scores` and
`prefix_memorization` (one row per example and setting, or per example and prefix length)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from kdplatform.memorization.scores import extraction_column, prefix_column

SCORE_COLUMNS = ["loss", "min_k_20", "min_k_pp_20"]
"""The scores scan_results stores beside the paper's columns (migration 0005)."""


def _stacked(ids: pa.Array, parts: list[dict[str, pa.Array]]) -> pa.Table | None:
    if not parts:
        return None
    tables = [pa.table({"example_id": ids, **cols}) for cols in parts]
    return pa.concat_tables(tables)


def extraction_rows(shard: pa.Table, settings: Iterable[tuple[float, int | None]]) -> pa.Table | None:
    """extraction_scores rows (example_id, temperature, top_k, logprob) of the settings the shard holds;
    top_k None (the whole vocabulary) is stored as 0, transformers' own convention."""
    n, parts = shard.num_rows, []
    for temperature, top_k in settings:
        name = extraction_column(temperature, top_k)
        if name in shard.column_names:
            parts.append(
                {
                    "temperature": pa.array(np.full(n, temperature), pa.float64()),
                    "top_k": pa.array(np.full(n, top_k or 0), pa.int32()),
                    "logprob": shard.column(name),
                }
            )
    return _stacked(shard.column("example_id"), parts)


def prefix_rows(shard: pa.Table, prefix_len: int) -> pa.Table | None:
    """prefix_memorization rows (example_id, prefix_len, memorized) of every prefix length the shard
    holds but the scan's own, which is scan_results.memorized (audited where the others are not)."""
    n, parts = shard.num_rows, []
    for k in range(1, prefix_len):
        name = prefix_column(k)
        if name in shard.column_names:
            parts.append({"prefix_len": pa.array(np.full(n, k), pa.int32()), "memorized": shard.column(name)})
    return _stacked(shard.column("example_id"), parts)
