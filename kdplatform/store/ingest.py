"""Bulk rows in and out as Arrow, inside the caller's transaction.

Per-example data arrives as Arrow tables and goes in with one statement per table (DuckDB scans the Arrow
table in place; PostgreSQL with psycopg 3 gets one `COPY ... FROM STDIN`, fed in batches), so a stage's
rows and its status commit together. PostgreSQL's COPY is binary, encoded from Arrow by pgpq (Rust), the
table cast first to the column types the catalog names (binary_rows): the server then parses no text
and the client formats no floats, which made loading 1M scan rows twice as fast as CSV. Where a column's
type has no safe binary mapping, or a cast could change a value, the whole table goes as CSV written by
Arrow's C++ writer (NULL an unquoted empty field, the empty string always quoted), and the server parses
and refuses values as it always did; so does every table when pgpq is not installed (the postgres
extra). Rows come out the same way round: DuckDB hands Arrow over directly, PostgreSQL answers
`COPY (query) TO STDOUT` read back by Arrow's CSV reader with column types taken from the table's
schema. Both keep the per-row work in C or Rust.

PostgreSQL checks a foreign key with a trigger per row, which made loading 1M scan rows over ten times
slower than the COPY itself. copy_arrow validates a batch's foreign keys set-based instead: the distinct
values of each key column, read from the Arrow table, must all exist in the referenced table, and those
rows are locked FOR KEY SHARE until commit (what the per-row check does, so none can be deleted or
re-keyed before the rows commit); then the COPY runs with the per-row triggers off
(session_replication_role = replica, for that statement only). A batch naming a missing parent, a table
with triggers of its own or a multi-column key, and a role not allowed to set session_replication_role
take the ordinary COPY (binary or CSV alike), whose per-row checks refuse the row as before. The foreign
keys stay declared either way.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable

import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Connection, text

BATCH_ROWS = 100_000
_HAS_PGPQ = importlib.util.find_spec("pgpq") is not None  # the postgres extra; without it, CSV


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _psycopg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def bulk_insert(conn: Connection, table: str, rows: pa.Table) -> int:
    """Insert an Arrow table's rows into `table` (columns matched by name) in the caller's transaction.

    DuckDB scans the Arrow table in place; PostgreSQL (psycopg 3) gets COPY in batches; others INSERT.
    """
    if rows.num_rows == 0:
        return 0
    if conn.dialect.name == "duckdb":
        raw = conn.connection.driver_connection
        name = f"_kdp_bulk_{id(rows)}"
        raw.register(name, rows)
        try:
            cols = ", ".join(f'"{c}"' for c in rows.column_names)
            conn.exec_driver_sql(f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM {name}')
        finally:
            raw.unregister(name)
    elif _psycopg(conn):
        copy_arrow(conn, table, rows)
    else:
        from sqlalchemy import MetaData, Table

        tbl = Table(table, MetaData(), autoload_with=conn)
        conn.execute(tbl.insert(), rows.to_pylist())
    return rows.num_rows


def delete_rows(conn: Connection, table: str, **where: int) -> None:
    cond = " AND ".join(f"{k} = :{k}" for k in where)
    conn.execute(text(f'DELETE FROM "{table}" WHERE {cond}'), where)


def copy_arrow(conn: Connection, table: str, rows: pa.Table, batch_rows: int = BATCH_ROWS) -> int:
    """COPY an Arrow table's rows into `table` (columns matched by name) in the connection's transaction,
    its foreign keys checked once for the batch where they can be (see the module docstring)."""
    if not batch_checked(conn, table, rows):
        return _copy(conn, table, rows, batch_rows)
    previous = conn.exec_driver_sql("SELECT current_setting('session_replication_role')").scalar_one()
    conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    _copy(conn, table, rows, batch_rows)  # on failure the transaction is aborted, the setting with it
    conn.execute(text("SELECT set_config('session_replication_role', :v, true)"), {"v": previous})
    return rows.num_rows


_FOREIGN_KEYS = """
SELECT a.attname AS column_name, c.confrelid::regclass::text AS parent, af.attname AS parent_column,
       cardinality(c.conkey) AS n_columns
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1]
WHERE c.contype = 'f' AND c.conrelid = to_regclass(:t)
"""


def batch_checked(conn: Connection, table: str, rows: pa.Table) -> bool:
    """True when every foreign key of `table` holds for `rows` and their referenced rows are now locked
    FOR KEY SHARE, and the per-row triggers may be skipped: no triggers of the table's own, single-column
    keys whose columns `rows` has, and a role allowed to set session_replication_role. False: nothing is
    decided, the caller copies with the per-row checks."""
    import pyarrow.compute as pc

    if not _may_skip_triggers(conn, table):
        return False
    keys = conn.execute(text(_FOREIGN_KEYS), {"t": quote_ident(table)}).all()
    if any(k.n_columns != 1 or k.column_name not in rows.column_names for k in keys):
        return False
    for k in keys:
        values = pc.unique(rows[k.column_name]).drop_null().to_pylist()
        if not values:
            continue
        found = conn.execute(
            text(
                f"SELECT COUNT(*) FROM (SELECT 1 FROM {k.parent} WHERE {quote_ident(k.parent_column)} "
                f"= ANY(:v) FOR KEY SHARE) locked"
            ),
            {"v": values},
        ).scalar_one()
        if found != len(values):
            return False
    return True


def _may_skip_triggers(conn: Connection, table: str) -> bool:
    own = conn.execute(
        text("SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = to_regclass(:t) AND NOT tgisinternal"),
        {"t": quote_ident(table)},
    ).scalar_one()
    if own:
        return False
    if conn.exec_driver_sql("SELECT current_setting('is_superuser')").scalar_one() == "on":
        return True
    if int(conn.exec_driver_sql("SELECT current_setting('server_version_num')").scalar_one()) < 150000:
        return False
    return bool(
        conn.exec_driver_sql("SELECT has_parameter_privilege('session_replication_role', 'SET')").scalar_one()
    )


def _copy(conn: Connection, table: str, rows: pa.Table, batch_rows: int) -> int:
    raw = conn.connection.driver_connection
    cols = ", ".join(quote_ident(c) for c in rows.column_names)
    wire = binary_rows(conn, table, rows) if _HAS_PGPQ else None
    if wire is None:
        return _copy_csv(raw, f"COPY {quote_ident(table)} ({cols}) FROM STDIN (FORMAT csv)", rows, batch_rows)
    from pgpq import ArrowToPostgresBinaryEncoder

    encoder = ArrowToPostgresBinaryEncoder(wire.schema)
    with (
        raw.cursor() as cur,
        cur.copy(f"COPY {quote_ident(table)} ({cols}) FROM STDIN (FORMAT binary)") as copy,
    ):
        copy.write(encoder.write_header())
        for batch in wire.to_batches(max_chunksize=batch_rows):
            copy.write(encoder.write_batch(batch))
        copy.write(encoder.finish())
    return rows.num_rows


def _copy_csv(raw, sql: str, rows: pa.Table, batch_rows: int) -> int:
    opts = pacsv.WriteOptions(include_header=False, quoting_style="all_valid", batch_size=batch_rows)
    with raw.cursor() as cur, cur.copy(sql) as copy:
        for start in range(0, rows.num_rows, batch_rows):
            buf = io.BytesIO()
            pacsv.write_csv(rows.slice(start, batch_rows), buf, opts)
            copy.write(buf.getbuffer())
    return rows.num_rows


_COLUMN_TYPES = """
SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = to_regclass(:t) AND a.attnum > 0 AND NOT a.attisdropped
"""

# PostgreSQL type -> (the Arrow type its binary form is encoded from, the Arrow types that cast to it
# with the same values the CSV text would have given).
_WIRE: dict[str, tuple[pa.DataType, Callable[[pa.DataType], bool]]] = {
    "int2": (pa.int16(), pa.types.is_integer),
    "int4": (pa.int32(), pa.types.is_integer),
    "int8": (pa.int64(), pa.types.is_integer),
    "float8": (pa.float64(), lambda t: pa.types.is_integer(t) or pa.types.is_floating(t)),
    "bool": (pa.bool_(), pa.types.is_boolean),
    "text": (pa.large_string(), lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
    "varchar": (pa.large_string(), lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
    "timestamp": (pa.timestamp("us"), lambda t: pa.types.is_timestamp(t) and t.tz is None),
    "timestamptz": (pa.timestamp("us", tz="UTC"), lambda t: pa.types.is_timestamp(t) and t.tz is not None),
    "date": (pa.date32(), pa.types.is_date),
}


def binary_rows(conn: Connection, table: str, rows: pa.Table) -> pa.Table | None:
    """`rows` cast to the exact Arrow types whose PostgreSQL binary COPY form `table`'s columns take, or
    None: the caller sends CSV, and the server parses (and refuses) every value as before.

    Binary COPY carries no type names: each value must be the column type's own binary form (an int8
    sent to an int4 column is refused as malformed, not converted). So the wire types come from the
    catalog, and a cast is made only where it cannot give other values than the CSV text would have:
    integers to integer columns and floats or integers to double precision (a lossy cast, such as an
    overflow or a nanosecond dropped, raises here, and the CSV path lets the server report it); strings
    to text/varchar (varchar(n) still checks its length on receipt); timestamps to timestamp only when
    naive and to timestamptz only when zoned (a naive value would be read in the session's time zone
    from text, as UTC from binary); dates; an all-null column to anything mapped. Everything else takes
    CSV: real (float4: text rounds a double's shortest decimal, a binary cast rounds the double
    itself), numeric, json/jsonb, uuid, bytea, arrays, char(n), domains and enums, whose binary forms
    are not plain Arrow values or whose input checks differ; and any column whose Arrow type is of
    another kind than its column's (a bool into an integer column, a string into a number), where the
    server's text parsing decides. A float32 into double precision is widened exactly, as DuckDB does
    (the CSV text stored its shortest decimal instead)."""
    types = dict(conn.execute(text(_COLUMN_TYPES), {"t": quote_ident(table)}).tuples().all())
    fields = []
    for field in rows.schema:
        wire = _WIRE.get(types.get(field.name, ""))
        if wire is None or not (pa.types.is_null(field.type) or wire[1](field.type)):
            return None
        fields.append(pa.field(field.name, wire[0]))
    try:
        return rows.cast(pa.schema(fields))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


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


def read_arrow(conn: Connection, query: str, schema: pa.Schema) -> pa.Table:
    """Run `query` (no bind parameters: inline trusted literals only) and return its rows as Arrow with
    the given column names and types."""
    if conn.dialect.name == "duckdb":
        cur = conn.connection.driver_connection.execute(query)
        out = cur.to_arrow_table() if hasattr(cur, "to_arrow_table") else cur.fetch_arrow_table()
        return out.cast(schema)
    if _psycopg(conn):
        return copy_query_to_arrow(conn, query, schema)
    rows = [dict(r) for r in conn.exec_driver_sql(query).mappings()]
    return pa.Table.from_pylist(rows, schema=schema)


def copy_query_to_arrow(conn: Connection, query: str, schema: pa.Schema) -> pa.Table:
    """PostgreSQL: `query` through COPY TO, read as Arrow with the given column names and types."""
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
