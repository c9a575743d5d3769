"""The read-only SQL surface is read-only by construction (issue 18), on DuckDB and PostgreSQL, through
run_readonly and through the dashboard console's code path (sql.console): the database's parser splits
and classifies, PostgreSQL runs the query alone in a read-only transaction with a server-side timeout,
DuckDB's console connection has a memory limit, results are capped in bytes, limits must be positive."""

from __future__ import annotations

import math
import time

import pytest
from sqlalchemy import text

from kdplatform import sql
from kdplatform.sql import QueryRefused, backends
from kdplatform.sql.limits import Limits
from kdplatform.store import db

ROWS = 417


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def url(request, tmp_path_factory):
    """A database holding greedy_continuations with ROWS rows, on each backend."""
    if request.param == "duckdb":
        u = f"duckdb:///{tmp_path_factory.mktemp('ro') / 'kdp.duckdb'}"
    else:
        server = request.getfixturevalue("pg_server")
        name = server.create_database()
        u = server.url(name)
    engine = db.make_engine(u)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE greedy_continuations (i INTEGER, s VARCHAR)"))
        conn.execute(
            text("INSERT INTO greedy_continuations VALUES (:i, :s)"),
            [{"i": i, "s": f"x{i}"} for i in range(ROWS)],
        )
    engine.dispose()
    yield u
    if request.param == "postgresql":
        server.drop_database(name)


@pytest.fixture(params=["run_readonly", "console"])
def run(request):
    return {"run_readonly": sql.run_readonly, "console": sql.console}[request.param]


def count(url: str) -> int:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT COUNT(*) FROM greedy_continuations")).scalar_one()
    finally:
        engine.dispose()


SLIPPED_THROUGH_MAIN = [
    "select E'\\''; commit; delete from greedy_continuations; --'",
    "select 1 /* /* nested */ ' */; commit; delete from greedy_continuations; --'",
    "select 1 /* /* nested */ */; commit; delete from greedy_continuations",
    "select 1 as x$$; commit; delete from greedy_continuations; --$$",
]
WRITES = [
    "create temp table x as select 1",
    "create table x (i int)",
    "insert into greedy_continuations values (1, 'a')",
    "with x as (select 1) insert into greedy_continuations select 1, 'a'",
    "delete from greedy_continuations",
    "update greedy_continuations set i = 0",
    "checkpoint",
    "commit",
    "rollback",
    "begin",
    "set statement_timeout = 0",
    "reset statement_timeout",
    "copy greedy_continuations to '/tmp/x.csv'",
    "attach '/tmp/o.duckdb' as o",
    "pragma database_list",
    "pragma version",
    "explain analyze delete from greedy_continuations",
    "prepare p as select 1",
    "vacuum",
    "select * into backup from greedy_continuations",
    "select pg_sleep(10)",
    "select set_config('statement_timeout', '0', false)",
]


@pytest.mark.parametrize("query", SLIPPED_THROUGH_MAIN)
def test_second_statement_is_refused(url, run, query):
    with pytest.raises(QueryRefused, match="one statement"):
        run(url, query)
    assert count(url) == ROWS


@pytest.mark.parametrize("query", WRITES)
def test_writes_and_settings_are_refused(url, run, query):
    with pytest.raises(QueryRefused):
        run(url, query)
    assert count(url) == ROWS


@pytest.mark.parametrize(
    ("query", "want"),
    [
        ("select 1 /* a /* nested */ ; delete from greedy_continuations; */ as one", [1]),
        ("select E'\\'' || ';commit' as one", ["';commit"]),
        ("select $q$;commit;$q$ as one", [";commit;"]),
        ("-- a comment; delete\nselect count(*) as one from greedy_continuations;", [ROWS]),
        ("with r as (select i from greedy_continuations) select max(i) as one from r", [ROWS - 1]),
    ],
)
def test_one_statement_with_tricky_literals_runs(url, run, query, want):
    assert run(url, query)["one"].tolist() == want
    assert count(url) == ROWS


def test_explain_select_runs(url, run):
    assert len(run(url, "EXPLAIN SELECT * FROM greedy_continuations"))


def test_time_limit_holds(url, run):
    t = time.monotonic()
    with pytest.raises(QueryRefused, match="longer than"):
        run(url, "SELECT COUNT(*) AS n FROM generate_series(1, 100000000000) g", timeout_s=1.0)
    assert time.monotonic() - t < 10


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, -math.inf, "x"])
def test_time_limit_must_be_positive_and_finite(url, run, bad):
    with pytest.raises(QueryRefused, match="timeout_s"):
        run(url, "SELECT 1 AS one", timeout_s=bad)


@pytest.mark.parametrize("name", ["max_rows", "max_bytes", "memory_limit_bytes"])
def test_size_limits_must_be_positive(url, run, name):
    with pytest.raises(QueryRefused, match=name):
        run(url, "SELECT 1 AS one", **{name: 0})


def test_results_are_capped_in_bytes(url, run):
    df = run(url, "SELECT repeat('x', 100000) AS s FROM generate_series(1, 200) g", max_bytes=1_000_000)
    assert df.attrs["truncated"] == "bytes" and 1 <= len(df) <= 10
    assert sum(map(len, df.s)) <= 1_000_000


def test_a_value_over_the_byte_cap_is_refused(url, run):
    with pytest.raises(QueryRefused, match="result limit"):
        run(url, "SELECT repeat('x', 5000000) AS s", max_bytes=1_000_000)


def test_row_cap_still_says_rows(url, run):
    df = run(url, "SELECT i FROM greedy_continuations ORDER BY i", max_rows=10)
    assert df.i.tolist() == list(range(10)) and df.attrs["truncated"] == "rows"
    assert run(url, "SELECT i FROM greedy_continuations").attrs["truncated"] is None


def test_backend_alone_cannot_write(url):
    """Past the classifier: each backend's own fence refuses a write and a second statement."""
    run_rows = backends.duckdb_rows if url.startswith("duckdb") else backends.postgres_rows
    where = url.removeprefix("duckdb:///") if url.startswith("duckdb") else url
    for query in (
        "delete from greedy_continuations",
        "select 1; commit; delete from greedy_continuations",
        "select E'\\''; commit; delete from greedy_continuations; --'",
    ):
        with pytest.raises(QueryRefused):
            run_rows(where, query, Limits())
    assert count(url) == ROWS


def test_postgres_statement_timeout_is_server_side(url):
    """The limit is the server's: SET LOCAL statement_timeout inside BEGIN READ ONLY, seen by the query."""
    if url.startswith("duckdb"):
        pytest.skip("PostgreSQL only")
    cols, got = backends.postgres_rows(
        url,
        "SELECT current_setting('statement_timeout') AS t, current_setting('transaction_read_only') AS ro",
        Limits(timeout_s=2.5),
    )
    assert got.rows == [("2500ms", "on")]


def test_duckdb_console_connection_has_a_memory_limit(tmp_path):
    u = f"duckdb:///{tmp_path / 'm.duckdb'}"
    db.make_engine(u).dispose()
    import duckdb

    duckdb.connect(str(tmp_path / "m.duckdb")).close()
    with pytest.raises(QueryRefused, match="(?i)out of memory|memory"):
        sql.run_readonly(
            u,
            "SELECT list(range) AS l FROM range(30000000) GROUP BY range % 3",
            memory_limit_bytes=20_000_000,
        )
    conn = db.duckdb_connect(
        tmp_path / "m.duckdb", lock_configuration=True, settings={"memory_limit": "123MB", "threads": 1}
    )
    try:
        limit, threads = conn.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads')"
        ).fetchone()
        assert threads == 1 and limit.startswith("117") or limit.startswith("123"), limit
        with pytest.raises(duckdb.Error, match="lock"):
            conn.execute("SET memory_limit = '10GB'")
    finally:
        conn.close()


def test_duckdb_quoted_file_name_is_refused_twice(tmp_path, run):
    """A quoted identifier naming a file: refused by the check, and by the connection past it."""
    path = tmp_path / "d.duckdb"
    import duckdb

    duckdb.connect(str(path)).close()
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    with pytest.raises(QueryRefused, match="by path"):
        run(f"duckdb:///{path}", f'SELECT * FROM "{secret}"')
    with pytest.raises(QueryRefused, match="disabled by configuration"):
        backends.duckdb_rows(str(path), f'SELECT * FROM "{secret}"', Limits())


def test_duckdb_directory_is_refused(tmp_path, run):
    with pytest.raises(QueryRefused, match="directory"):
        run(f"duckdb:///{tmp_path}", "SELECT 1")


def test_sqlite_missing_file_is_not_created(tmp_path, run):
    path = tmp_path / "new.sqlite"
    with pytest.raises(QueryRefused, match="no database file"):
        run(f"sqlite:///{path}", "SELECT 1")
    assert not path.exists()
