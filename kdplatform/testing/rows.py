"""Rows of the small tables as Arrow, typed from the ORM, and ids taken from the store's sequences.

Ids come from `nextval` on the same sequences the pipeline's ORM uses, so a synthetic study leaves the
sequences where a real one would (later ORM writes and imports do not collide with it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pyarrow as pa
from sqlalchemy import BigInteger, Boolean, Connection, DateTime, Float, Integer, text

from kdplatform.store import db
from kdplatform.store.schema import Base

EPOCH = dt.datetime(2025, 1, 1)
ORDER = (
    "jobs",
    "datasets",
    "models",
    "runs",
    "checkpoints",
    "run_inputs",
    "classifier_trials",
    "classifier_coefficients",
)
"""Small tables in foreign-key order."""


def at(seconds: float) -> dt.datetime:
    """A fixed timestamp `seconds` after the synthetic epoch (studies are reproducible to the row)."""
    return EPOCH + dt.timedelta(seconds=seconds)


def _arrow_type(column) -> pa.DataType:
    t = column.type
    if isinstance(t, BigInteger):
        return pa.int64()
    if isinstance(t, Integer):
        return pa.int32()
    if isinstance(t, Float):
        return pa.float64()
    if isinstance(t, Boolean):
        return pa.bool_()
    if isinstance(t, DateTime):
        return pa.timestamp("us")
    return pa.string()


def arrow(table: str, rows: Iterable[dict]) -> pa.Table:
    """`rows` (dicts, missing keys are NULL) as an Arrow table typed like the ORM's `table`; only the
    columns some row names are kept."""
    rows = list(rows)
    columns = Base.metadata.tables[table].columns
    named = {k for r in rows for k in r}
    return pa.table(
        {c.name: pa.array([r.get(c.name) for r in rows], _arrow_type(c)) for c in columns if c.name in named}
    )


class Rows:
    """Small-table rows collected in memory, ids from the sequences, written in one go."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.rows: dict[str, list[dict]] = {}

    def next_id(self, table: str) -> int:
        return int(self.conn.execute(text(f"SELECT nextval('{table}_id_seq')")).scalar_one())

    def add(self, table: str, row: dict, *, pinned: int | None = None) -> int:
        """Queue `row` for `table` and return its id (`pinned`, or the next of the table's sequence)."""
        row = {"id": pinned if pinned is not None else self.next_id(table)} | row
        self.rows.setdefault(table, []).append(row)
        return row["id"]

    def add_plain(self, table: str, row: dict) -> None:
        """Queue a row of a table without an id sequence."""
        self.rows.setdefault(table, []).append(row)

    def flush(self) -> None:
        for table in ORDER:
            if self.rows.get(table):
                db.bulk_insert(self.conn, table, arrow(table, self.rows.pop(table)))
