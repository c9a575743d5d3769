"""The read-only console refuses anything that writes, escapes or runs too long, and answers SELECTs."""

from __future__ import annotations

import pytest

from kdplatform.sql import QueryRefused, run_readonly
from kdplatform.store import db


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    path = tmp_path_factory.mktemp("sql") / "c.duckdb"
    u = f"duckdb:///{path}"
    engine = db.make_engine(u)
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t AS SELECT range AS i, 'x' || range AS s FROM range(50)")
    (path.parent / "secret.csv").write_text("a\n1\n")
    return u


REFUSED = [
    "INSERT INTO t VALUES (1, 'a')",
    "UPDATE t SET i = 0",
    "DELETE FROM t",
    "DROP TABLE t",
    "CREATE TABLE u AS SELECT 1",
    "ALTER TABLE t ADD COLUMN z INT",
    "ATTACH 'other.duckdb' AS o",
    "COPY t TO '/tmp/out.csv'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_parquet('x.parquet')",
    "SELECT * FROM '/etc/passwd'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET threads = 1",
    "PRAGMA database_list",
    "SELECT 1; DROP TABLE t",
    "select * from t; select 1",
    "EXPORT DATABASE '/tmp/x'",
    "CALL pragma_version()",
    "SELECT * FROM glob('/etc/*')",
    "SELECT current_setting('threads')",
    "WITH x AS (SELECT 1) INSERT INTO t SELECT 1, 'a'",
    "SELECT * INTO newtable FROM t",
    "SELECT * FROM \"read_csv\"('/etc/hostname')",
    "SELECT \"pg_read_file\"('/etc/hostname')",
    "SELECT pg_terminate_backend(1)",
    "SELECT json_execute_serialized_sql(json_serialize_sql('SELECT 1'))",
    "",
]


@pytest.mark.parametrize("query", REFUSED)
def test_refused(url, query):
    with pytest.raises(QueryRefused) as e:
        run_readonly(url, query)
    assert str(e.value)


def test_select_works_and_caps_rows(url):
    df = run_readonly(url, "SELECT i, s FROM t ORDER BY i", max_rows=10)
    assert list(df.columns) == ["i", "s"] and len(df) == 10 and df.attrs["truncated"]
    assert df.i.tolist() == list(range(10))


def test_words_inside_strings_are_not_commands(url):
    df = run_readonly(url, "SELECT 'drop table t; insert' AS s -- delete\n")
    assert df.s.tolist() == ["drop table t; insert"]


def test_views_are_queryable(url):
    df = run_readonly(url, "WITH r AS (SELECT * FROM memorization_rates) SELECT COUNT(*) AS n FROM r")
    assert df.n.tolist() == [0]


def test_timeout_interrupts(url):
    with pytest.raises(QueryRefused, match="limit"):
        run_readonly(url, "SELECT COUNT(*) FROM range(10000000000) a", timeout_s=0.5)


def test_concurrent_console_connections_in_one_process(url):
    from kdplatform.sql import _duckdb_connect

    held = _duckdb_connect(url.removeprefix("duckdb:///"))
    try:
        assert run_readonly(url, "SELECT 1 AS one").one.tolist() == [1]
    finally:
        held.close()


def test_connection_is_read_only_even_past_the_checks(url):
    """The second fence: DuckDB itself refuses writes and file access on the console's connection."""
    from kdplatform.sql import _duckdb_connect

    conn = _duckdb_connect(url.removeprefix("duckdb:///"))
    try:
        import duckdb

        with pytest.raises(duckdb.InvalidInputException, match="read-only"):
            conn.execute("INSERT INTO t VALUES (1, 'a')")
        with pytest.raises(duckdb.PermissionException):
            conn.execute("SELECT * FROM read_csv('/etc/hostname')")
    finally:
        conn.close()
