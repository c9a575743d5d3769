"""PostgreSQL specifics: bulk rows in and out with COPY (psycopg 3), advisory locks.

Arrow tables go in as CSV written by Arrow's C++ writer and streamed through `COPY ... FROM STDIN` in
batches, inside the caller's transaction; they come out through `COPY (query) TO STDOUT` read back by
Arrow's CSV reader with column types taken from the table's schema. Both keep the per-row work in C.
CSV keeps NULL (an unquoted empty field) apart from the empty string (always quoted here).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Engine

BATCH_ROWS = 100_000
DRIVER = "postgresql+psycopg"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def copy_arrow(conn: Connection, table: str, rows: pa.Table, batch_rows: int = BATCH_ROWS) -> int:
    """COPY an Arrow table's rows into `table` (columns matched by name) in the connection's transaction."""
    raw = conn.connection.driver_connection
    cols = ", ".join(_quote(c) for c in rows.column_names)
    sql = f"COPY {_quote(table)} ({cols}) FROM STDIN (FORMAT csv)"
    opts = pacsv.WriteOptions(include_header=False, quoting_style="all_valid", batch_size=batch_rows)
    with raw.cursor() as cur, cur.copy(sql) as copy:
        for start in range(0, rows.num_rows, batch_rows):
            buf = io.BytesIO()
            pacsv.write_csv(rows.slice(start, batch_rows), buf, opts)
            copy.write(buf.getbuffer())
    return rows.num_rows


def arrow_type(sa_type) -> pa.DataType:
    """The Arrow type that reads a column of this SQLAlchemy type back without loss."""
    from sqlalchemy import types as t

    if isinstance(sa_type, t.Boolean):
        return pa.bool_()
    if isinstance(sa_type, t.BigInteger):
        return pa.int64()
    if isinstance(sa_type, t.Integer):
        return pa.int32()
    if isinstance(sa_type, t.Float | t.Numeric):
        return pa.float64()
    if isinstance(sa_type, t.DateTime):
        return pa.timestamp("us", tz="UTC") if getattr(sa_type, "timezone", False) else pa.timestamp("us")
    if isinstance(sa_type, t.Date):
        return pa.date32()
    return pa.string()


def copy_query_to_arrow(conn: Connection, query: str, schema: pa.Schema) -> pa.Table:
    """Run `query` (no bind parameters: inline trusted literals only) through COPY TO and read it as
    Arrow with the given column names and types."""
    raw = conn.connection.driver_connection
    buf = io.BytesIO()
    with raw.cursor() as cur, cur.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy:
        for chunk in copy:
            buf.write(chunk)
    if buf.tell() == 0:
        return schema.empty_table()
    buf.seek(0)
    return pacsv.read_csv(
        buf,
        read_options=pacsv.ReadOptions(column_names=schema.names, block_size=1 << 24),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=schema,
            true_values=["t"],
            false_values=["f"],
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )


def advisory_lock_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock from a name."""
    return zlib.crc32(f"kdplatform:{name}".encode()) - (1 << 31)


def advisory_xact_lock(conn: Connection, name: str) -> None:
    """Hold a transaction-scoped lock named `name` (no-op off PostgreSQL); concurrent holders queue.

    Use it around work two processes must not interleave on a shared database, e.g. migrations:
    `advisory_xact_lock(conn, "migrate")` as the first statement of db.upgrade's transaction.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({advisory_lock_key(name)})")


class Locked(Exception):
    """Another session holds the named lock."""


@contextmanager
def session_lock(engine: Engine, name: str) -> Iterator[None]:
    """Hold a session-level advisory lock named `name` for the duration of the block, on a connection of
    its own (PostgreSQL only; elsewhere a no-op). Raises Locked at once if another session holds it.

    For one writer per job across machines: `with session_lock(engine, f"job:{name}"):` around a job's run
    (the workdir file lock covers one host only). The server releases it if the holder dies.
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    key = advisory_lock_key(name)
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        if not conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({key})").scalar():
            k = key & 0xFFFFFFFFFFFFFFFF  # pg_locks shows a bigint key as two oids
            holder = conn.exec_driver_sql(
                "SELECT a.pid, a.client_addr FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                f"WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {k >> 32} "
                f"AND l.objid = {k & 0xFFFFFFFF} AND l.objsubid = 1 LIMIT 1"
            ).first()
            who = f" (server pid {holder[0]}, client {holder[1] or 'local socket'})" if holder else ""
            raise Locked(f"{name} is held by another session{who}")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")
