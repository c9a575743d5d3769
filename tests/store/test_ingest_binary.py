"""PostgreSQL bulk ingest sends binary COPY encoded from Arrow (pgpq): every mapped column type stores
exactly what the CSV path stores, awkward values included, and columns it does not map safely, or
values a cast would change, go as CSV, where the server decides as before."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pytest
from sqlalchemy import text

from kdplatform.store import db, ingest

_TABLE = """
CREATE TABLE t (
    i2 smallint, i4 integer, i8 bigint, f8 double precision, b boolean, s text, v varchar(8),
    ts timestamp, tz timestamptz, d date
)"""

_I8 = np.iinfo(np.int64)
_I4 = np.iinfo(np.int32)


def _awkward() -> pa.Table:
    utc = dt.UTC
    return pa.table(
        {
            "i2": pa.array([-32768, 32767, 0, None, 7], pa.int16()),
            "i4": pa.array([_I4.min, _I4.max, 0, None, -1], pa.int64()),  # int64 into int4: cast
            "i8": pa.array([_I8.min, _I8.max, 0, None, 1], pa.int64()),
            "f8": pa.array([math.nan, math.inf, -math.inf, None, 5e-324]),
            "b": pa.array([True, False, None, True, False]),
            "s": pa.array(["", None, "ünïcødé ✓ 𝄞", 'quote " comma , newline \n tab \t \\N', "NULL"]),
            "v": pa.array(["", "12345678", None, "ß", "a"], pa.large_string()),
            "ts": pa.array(
                [
                    dt.datetime(1970, 1, 1),
                    dt.datetime(2000, 1, 1, 0, 0, 0, 1),
                    None,
                    dt.datetime(1, 1, 1),
                    dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
                ],
                pa.timestamp("us"),
            ),
            "tz": pa.array(
                [
                    dt.datetime(2024, 3, 31, 1, 30, tzinfo=utc),
                    None,
                    dt.datetime(1999, 12, 31, 23, 59, tzinfo=utc),
                    dt.datetime(2024, 1, 1, tzinfo=utc),
                    dt.datetime(1900, 6, 1, 12, tzinfo=utc),
                ],
                pa.timestamp("ms", tz="Europe/Berlin"),
            ),
            "d": pa.array(
                [dt.date(1970, 1, 1), dt.date(2000, 1, 1), None, dt.date(1, 1, 1), dt.date(9999, 12, 31)]
            ),
        }
    )


@pytest.fixture
def engine(pg_url):
    engine = db.make_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(_TABLE)
    yield engine
    engine.dispose()


def _stored(engine) -> list[tuple]:
    with engine.connect() as conn:
        conn.exec_driver_sql("SET TIME ZONE 'UTC'")
        return [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM t ORDER BY ctid")]


def _load(engine, rows: pa.Table, monkeypatch=None, csv: bool = False) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL TIME ZONE 'America/New_York'")  # a session zone other than UTC
        if csv:
            monkeypatch.setattr(ingest, "binary_rows", lambda *_: None)
        try:
            ingest.copy_arrow(conn, "t", rows, batch_rows=2)
        finally:
            if csv:
                monkeypatch.undo()


def _same(a: list[tuple], b: list[tuple]) -> bool:
    def norm(v):
        return "nan" if isinstance(v, float) and math.isnan(v) else v

    return [tuple(map(norm, r)) for r in a] == [tuple(map(norm, r)) for r in b]


def test_every_mapped_type_goes_binary(engine):
    with engine.connect() as conn:
        wire = ingest.binary_rows(conn, "t", _awkward())
    assert wire is not None
    assert wire.schema.field("i4").type == pa.int32() and wire.schema.field("tz").type.tz == "UTC"


def test_binary_round_trips_awkward_values_exactly(engine):
    rows = _awkward()
    _load(engine, rows)
    got = _stored(engine)
    assert len(got) == 5
    assert [r[0] for r in got] == [-32768, 32767, 0, None, 7]
    assert [r[1] for r in got] == [_I4.min, _I4.max, 0, None, -1]
    assert [r[2] for r in got] == [_I8.min, _I8.max, 0, None, 1]
    f8 = [r[3] for r in got]
    assert math.isnan(f8[0]) and f8[1:] == [math.inf, -math.inf, None, 5e-324]
    assert [r[4] for r in got] == [True, False, None, True, False]
    assert [r[5] for r in got] == rows["s"].to_pylist()  # '' and NULL kept apart, 'NULL' is text
    assert [r[6] for r in got] == ["", "12345678", None, "ß", "a"]
    assert [r[7] for r in got] == rows["ts"].to_pylist()
    assert [r[8] for r in got] == [v if v is None else v.astimezone(dt.UTC) for v in rows["tz"].to_pylist()]
    assert [r[9] for r in got] == rows["d"].to_pylist()


def test_binary_and_csv_store_the_same(engine, monkeypatch):
    rows = _awkward()
    _load(engine, rows)
    binary = _stored(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE t")
    _load(engine, rows, monkeypatch, csv=True)
    assert _same(_stored(engine), binary)


@pytest.mark.parametrize(
    "column, values, why",
    [
        ("i4", pa.array([_I4.max + 1], pa.int64()), "an overflow: the server reports it"),
        ("i4", pa.array([True]), "a bool into an integer column: the server's parser decides"),
        ("f8", pa.array(["1.5"]), "a string into a number"),
        ("ts", pa.array([1_000_000_001], pa.timestamp("ns")), "a nanosecond the cast would drop"),
        ("tz", pa.array([dt.datetime(2024, 1, 1)], pa.timestamp("us")), "naive into timestamptz"),
        ("s", pa.array(["a"]).dictionary_encode(), "dictionary strings"),
        ("nope", pa.array([1]), "a column the table lacks"),
    ],
)
def test_what_binary_cannot_carry_unchanged_goes_as_csv(engine, column, values, why):
    rows = pa.table({column: values})
    with engine.connect() as conn:
        wire = ingest.binary_rows(conn, "t", rows)
    assert wire is None, why


def test_an_overflow_is_the_servers_error_as_before(engine):
    import psycopg

    with pytest.raises(psycopg.errors.NumericValueOutOfRange), engine.begin() as conn:
        ingest.copy_arrow(conn, "t", pa.table({"i4": pa.array([_I4.max + 1], pa.int64())}))


def test_a_too_long_varchar_is_refused_on_the_binary_path(engine):
    import psycopg

    rows = pa.table({"v": pa.array(["123456789"])})
    with pytest.raises(psycopg.errors.StringDataRightTruncation), engine.begin() as conn:
        assert ingest.binary_rows(conn, "t", rows) is not None
        ingest.copy_arrow(conn, "t", rows)


def test_a_nul_byte_in_text_is_refused_on_the_binary_path(engine):
    import psycopg

    rows = pa.table({"s": pa.array(["a\x00b"])})
    with pytest.raises(psycopg.errors.CharacterNotInRepertoire), engine.begin() as conn:
        assert ingest.binary_rows(conn, "t", rows) is not None
        ingest.copy_arrow(conn, "t", rows)


def test_an_unmapped_column_type_takes_csv_and_still_loads(engine):
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE t ADD COLUMN n numeric, ADD COLUMN j jsonb")
    rows = pa.table({"i4": pa.array([1], pa.int32()), "n": pa.array([1.25]), "j": pa.array(['{"a": 1}'])})
    with engine.begin() as conn:
        assert ingest.binary_rows(conn, "t", rows) is None
        ingest.copy_arrow(conn, "t", rows)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT i4, n::float8, j->>'a' FROM t")).one() == (1, 1.25, "1")


def test_an_all_null_column_goes_binary(engine):
    rows = pa.table({"i4": pa.array([1, 2], pa.int32()), "s": pa.nulls(2)})
    with engine.begin() as conn:
        assert ingest.binary_rows(conn, "t", rows) is not None
        ingest.copy_arrow(conn, "t", rows)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM t WHERE s IS NULL")).scalar_one() == 2


def test_without_pgpq_every_table_takes_csv(engine, monkeypatch):
    monkeypatch.setattr(ingest, "_HAS_PGPQ", False)
    monkeypatch.setattr(ingest, "binary_rows", lambda *_: pytest.fail("binary_rows without pgpq"))
    _load(engine, _awkward())
    assert len(_stored(engine)) == 5
