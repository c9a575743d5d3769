"""The dashboard's SQL console: refused statements say why and show nothing, allowed ones show their rows
with a CSV download, the row limit holds, and concurrent use (other users, the pages) does not break it.

kdplatform.sql's own fences are tested in tests/unit/test_sql_console.py; these go through the page."""

from __future__ import annotations

import io
import threading

import pandas as pd
import pytest

from kdplatform import sql
from kdplatform.analysis import groups, reading
from kdplatform.sql import run_readonly

ONLY = "only SELECT"
REFUSED = [
    ("INSERT INTO jobs (id) VALUES (99)", ONLY),
    ("UPDATE runs SET status = 'done'", ONLY),
    ("DELETE FROM scan_results", ONLY),
    ("DROP VIEW memorization", ONLY),
    ("CREATE TABLE x AS SELECT 1", ONLY),
    ("ALTER TABLE runs ADD COLUMN z INT", ONLY),
    ("ATTACH '/tmp/other.duckdb' AS o", ONLY),
    ("COPY runs TO '/tmp/runs.csv'", ONLY),
    ("EXPORT DATABASE '/tmp/dump'", ONLY),
    ("INSTALL httpfs", ONLY),
    ("LOAD httpfs", ONLY),
    ("SET enable_external_access = true", ONLY),
    ("PRAGMA enable_profiling", ONLY),
    ("CALL pragma_version()", ONLY),
    ("CHECKPOINT", ONLY),
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv()"),
    ("SELECT * FROM read_parquet('/tmp/x.parquet')", "read_parquet()"),
    ("SELECT * FROM glob('/etc/*')", "glob()"),
    ("SELECT * FROM '/etc/passwd'", "by path"),
    ("SELECT current_setting('threads')", "current_setting()"),
    ("SELECT 1; DROP TABLE runs", "one statement"),
    ("WITH x AS (SELECT 1) INSERT INTO jobs SELECT * FROM x", "INSERT"),
    ("SELECT * INTO backup FROM runs", "INTO"),
    ("SELECT * FROM runs FOR UPDATE", "locking"),
    ("", "empty query"),
]
ALLOWED = [
    ("SELECT COUNT(*) AS n FROM runs", "SELECT COUNT(*) AS n FROM runs"),
    (
        "WITH r AS (SELECT run_id, rate_pct FROM memorization_rates) SELECT * FROM r ORDER BY run_id",
        "SELECT run_id, rate_pct FROM memorization_rates ORDER BY run_id",
    ),
    (
        "-- comments are fine\n"
        "SELECT role, COUNT(*) AS n FROM runs WHERE kind = 'train' GROUP BY role ORDER BY role;",
        "SELECT role, COUNT(*) AS n FROM runs WHERE kind = 'train' GROUP BY role ORDER BY role",
    ),
    (
        "SELECT example_id, text FROM examples WHERE text LIKE '%drop table%' ORDER BY 1",
        "SELECT example_id, text FROM examples WHERE text LIKE '%drop table%' ORDER BY 1",
    ),
]


def run_console(open_page, url: str, query: str, max_rows: int | None = None):
    at = open_page(url, "console")
    at.text_area(key="console_sql").input(query)
    if max_rows is not None:
        at.number_input(key="console_max_rows").set_value(max_rows)
    [run] = [b for b in at.get("button") if getattr(b, "label", "") == "Run"]
    run.click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize(("query", "says"), REFUSED, ids=[q[:30] or "empty" for q, _ in REFUSED])
def test_console_refuses_with_a_message(open_page, synthetic_url, query, says):
    at = run_console(open_page, synthetic_url, query)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Refused:") and says in errors[0], errors
    assert not [d for d in at.dataframe if "what it holds" not in d.value.columns]  # no result table


@pytest.mark.parametrize(("query", "same_as"), ALLOWED, ids=["count", "with", "comment", "literal"])
def test_console_shows_rows_and_csv(open_page, synthetic_url, query, same_as):
    at = run_console(open_page, synthetic_url, query)
    assert not at.error
    want = run_readonly(synthetic_url, same_as)
    [got] = [d.value for d in at.dataframe if "what it holds" not in d.value.columns]
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_dtype=False)
    [download] = at.get("download_button")
    assert download.proto.label == "Download CSV"
    assert f"{len(want):,} rows" in " ".join(c.value for c in at.caption)


def test_console_caps_rows(open_page, synthetic_url):
    at = run_console(
        open_page,
        synthetic_url,
        "SELECT example_id FROM examples WHERE dataset_id = 1 ORDER BY example_id",
        max_rows=25,
    )
    [got] = [d.value for d in at.dataframe if "what it holds" not in d.value.columns]
    assert list(got["example_id"]) == list(range(25))
    assert "25 rows (cut at the row limit of 25)" in " ".join(c.value for c in at.caption)


def test_console_file_by_quoted_name_is_refused(open_page, synthetic_url, tmp_path):
    """A quoted identifier that names a file is a table name with a path in the parser's tree: refused
    (tests/unit/test_sql_console.py checks that the read-only connection would refuse it too)."""
    secret = tmp_path / "secret.csv"
    secret.write_text("a,b\n1,2\n")
    at = run_console(open_page, synthetic_url, f'SELECT * FROM "{secret}"')
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "by path" in errors[0], errors


def test_console_csv_is_the_result(synthetic_url):
    """The page's download is df.to_csv of the shown rows: the same function, checked end to end."""
    df = sql.console(synthetic_url, "SELECT run_id, role FROM scanned_runs ORDER BY run_id")
    back = pd.read_csv(io.StringIO(df.to_csv(index=False)))
    pd.testing.assert_frame_equal(back, df, check_dtype=False)


def test_console_example_queries_run(synthetic_url):
    for name, query in sql.EXAMPLE_QUERIES.items():
        assert not sql.console(synthetic_url, query).empty, name


def test_console_and_pages_concurrently(synthetic_url):
    """Console queries from several threads while page queries hold connections: run_readonly's
    `SET lock_configuration` meets a DuckDB instance another console connection already locked, and
    sql.console retries instead of failing (kdplatform.sql alone raises InvalidInputException)."""
    engine = reading.engine(synthetic_url)
    errors: list[BaseException] = []

    def console() -> None:
        try:
            for _ in range(15):
                assert int(sql.console(synthetic_url, "SELECT COUNT(*) AS n FROM runs")["n"][0]) > 0
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    def pages() -> None:
        try:
            for _ in range(15):
                assert not groups.scanned(engine, 1).empty
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=f) for f in (console, console, pages, pages)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_console_stops_long_queries(synthetic_url):
    from kdplatform.sql import QueryRefused

    with pytest.raises(QueryRefused, match="longer than"):
        sql.console(synthetic_url, "SELECT COUNT(*) FROM range(100000000) a, range(100000) b", timeout_s=0.5)


INJECTION = "select E'\\''; commit; delete from greedy_continuations; --'"


@pytest.mark.parametrize("backend", ["duckdb", "postgresql"])
def test_console_page_refuses_a_hidden_second_statement(open_page, request, backend):
    """Issue 18: an E'' literal hid `; commit; delete ...` from the old check and emptied the table on
    PostgreSQL; the page now refuses it (DuckDB's parser sees three statements) and nothing changes."""
    url = request.getfixturevalue("synthetic_url" if backend == "duckdb" else "pg_synthetic_url")
    before = run_readonly(url, "SELECT COUNT(*) AS n FROM greedy_continuations").n[0]
    at = run_console(open_page, url, INJECTION)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "one statement" in errors[0], errors
    assert run_readonly(url, "SELECT COUNT(*) AS n FROM greedy_continuations").n[0] == before > 0
