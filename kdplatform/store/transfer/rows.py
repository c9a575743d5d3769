"""Reading rows for a transfer and rewriting their ids: SQL conditions, Arrow reads, id maps."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, MetaData, Table
from sqlalchemy import types as satypes

from kdplatform.store.ingest import arrow_type, quote_ident, read_arrow

SEQ_TABLES = ("jobs", "datasets", "models", "runs", "checkpoints", "run_inputs")
"""Tables whose ids come from a sequence (and are remapped on the way)."""


class TransferError(Exception):
    """A transfer that cannot be done; the message says why and what to do."""


class TransferConflict(TransferError):
    """The destination holds a different version of the job's runs."""


def in_ids(column: str, ids: Iterable[int]) -> str:
    ids = sorted({int(i) for i in ids})
    return f"{quote_ident(column)} IN ({', '.join(map(str, ids))})" if ids else "FALSE"


def arrow_schema(table: Table) -> pa.Schema:
    return pa.schema([(c.name, arrow_type(c.type)) for c in table.columns])


def read(conn: Connection, table: Table, where: str) -> pa.Table:
    """Rows of `table` matching the SQL condition `where` (built here from ints and quoted literals)."""
    cols = ", ".join(quote_ident(c.name) for c in table.columns)
    return read_arrow(
        conn, f"SELECT {cols} FROM {quote_ident(table.name)} WHERE {where}", arrow_schema(table)
    )


def rows_of(conn: Connection, table: Table, where: str) -> list[dict[str, Any]]:
    return read(conn, table, where).to_pylist()


def reflect(conn: Connection) -> dict[str, Table]:
    md = MetaData()
    md.reflect(conn)
    return dict(md.tables)


def literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _ref_kind(column: str, sa_type) -> str | None:
    """Which id map rewrites this column (None: copied as is)."""
    if not isinstance(sa_type, satypes.Integer) or column == "id" or column.startswith("mlflow"):
        return None
    if column == "job_id":
        return "jobs"
    for suffix, kind in (
        ("run_id", "runs"),
        ("dataset_id", "datasets"),
        ("model_id", "models"),
        ("checkpoint_id", "checkpoints"),
    ):
        if column.endswith(suffix):
            return kind
    return None


def _remap_column(arr: pa.ChunkedArray, mapping: dict[int, int], table: str, column: str) -> pa.Array:
    values = arr.to_numpy(zero_copy_only=False)
    valid = ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False))
    if not valid.any():
        return arr
    keys = np.array(sorted(mapping), dtype=np.int64)
    vals = np.array([mapping[k] for k in keys], dtype=np.int64)
    v = values[valid].astype(np.int64)
    if len(keys):
        pos = np.clip(np.searchsorted(keys, v), 0, len(keys) - 1)
        found = keys[pos] == v
    else:
        pos, found = np.zeros(len(v), dtype=np.int64), np.zeros(len(v), dtype=bool)
    if not found.all():
        missing = sorted(set(v[~found].tolist()))[:5]
        raise TransferError(
            f"{table}.{column} refers to ids {missing} that are not part of this transfer (rows of another "
            "job?); transfer that job first"
        )
    out = np.zeros(len(values), dtype=np.int64)
    out[valid] = vals[pos]
    return pa.array(out, type=arr.type, mask=~valid)


def remap(rows: pa.Table, table: Table, maps: dict[str, dict[int, int]]) -> pa.Table:
    for c in table.columns:
        kind = _ref_kind(c.name, c.type)
        if kind is None or c.name not in rows.column_names:
            continue
        i = rows.column_names.index(c.name)
        rows = rows.set_column(i, c.name, _remap_column(rows[c.name], maps[kind], table.name, c.name))
    return rows


class Ids:
    """Destination ids: the source's when free there, else the sequence's next."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"

    def reserve(self, table: str, max_src_id: int) -> None:
        """PostgreSQL: move the sequence past the source's ids first (setval is not transactional), so a
        job running meanwhile is never handed an id this transfer keeps."""
        if self.pg and max_src_id:
            seq = f"{table}_id_seq"
            self.conn.exec_driver_sql(
                f"SELECT setval('{seq}', GREATEST((SELECT last_value FROM {seq}), {int(max_src_id)}))"
            )

    def allocate(self, table: str, src_ids: list[int]) -> dict[int, int]:
        if not src_ids:
            return {}
        taken = {
            r[0]
            for r in self.conn.exec_driver_sql(
                f"SELECT id FROM {quote_ident(table)} WHERE {in_ids('id', src_ids)}"
            )
        }
        out = {}
        for sid in src_ids:
            if sid in taken:
                out[sid] = self.conn.exec_driver_sql(f"SELECT nextval('{table}_id_seq')").scalar_one()
            else:
                out[sid] = sid
        return out

    def settle(self, table: str) -> None:
        """DuckDB: advance the sequence past the largest id now in the table (no setval there)."""
        if self.pg:
            return
        top = self.conn.exec_driver_sql(f"SELECT MAX(id) FROM {quote_ident(table)}").scalar()
        if top is None:
            return
        seq = f"{table}_id_seq"
        nxt = self.conn.exec_driver_sql(f"SELECT nextval('{seq}')").scalar_one()
        if nxt < top:
            self.conn.exec_driver_sql(f"SELECT MAX(nextval('{seq}')) FROM range({int(top - nxt)})")
