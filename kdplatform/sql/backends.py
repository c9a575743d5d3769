"""Running one checked query on each backend, within its Limits.

- DuckDB: a read-only connection, external access off, `memory_limit` and `threads` set and then the
  configuration locked (store.db.duckdb_connect); a timer interrupts the query; rows are fetched in chunks
  that shrink as rows grow, so the byte cap stops the fetch.
- PostgreSQL: store.pg_readonly (`BEGIN READ ONLY`, a server-side `statement_timeout`, the query sent
  alone through the extended protocol so nothing can COMMIT out of the transaction, rows streamed and
  values over the byte cap refused before decoding); the same collector.
- Other SQLAlchemy backends (SQLite): a read-only engine and the same collector.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import text

from kdplatform.sql.check import QueryRefused
from kdplatform.sql.limits import Collector, Limits
from kdplatform.store import db


def duckdb_rows(path: str, sql: str, limits: Limits) -> tuple[list[str], Collector]:
    if not Path(path).is_file():
        what = "a directory" if Path(path).is_dir() else "no database"
        raise QueryRefused(f"{what} at {path}; run a job first (make demo, or kdplatform run JOB)")
    conn = db.duckdb_connect(
        path,
        lock_configuration=True,
        settings={"memory_limit": f"{limits.memory_limit_bytes}B", "threads": limits.threads},
    )
    got = Collector(limits)
    timer = threading.Timer(limits.timeout_s, conn.interrupt)
    timer.start()
    try:
        cur = conn.execute(sql)
        cols = [d[0] for d in cur.description] if cur.description else []
        while got.add(chunk := cur.fetchmany(got.next_chunk())) and chunk:
            pass
    except QueryRefused:
        raise
    except Exception as e:
        if not timer.is_alive():
            raise QueryRefused(got.too_slow()) from None
        raise QueryRefused(f"query failed: {e}") from None
    finally:
        timer.cancel()
        conn.close()
    got.check_time()
    return cols, got


def postgres_rows(url: str, sql: str, limits: Limits) -> tuple[list[str], Collector]:
    from kdplatform.store import pg_readonly

    got = Collector(limits)
    try:
        cols = pg_readonly.readonly_rows(
            url,
            sql,
            timeout_s=limits.timeout_s,
            max_value_bytes=limits.max_bytes,
            accept=lambda r: got.add([r]),
        )
    except pg_readonly.ValueTooLarge:
        raise QueryRefused(got.too_big()) from None
    except pg_readonly.QueryTimeout:
        raise QueryRefused(got.too_slow()) from None
    except pg_readonly.QueryFailed as e:
        raise QueryRefused(f"query failed: {e}") from None
    return cols, got


def sqlalchemy_rows(url: str, sql: str, limits: Limits) -> tuple[list[str], Collector]:
    engine = db.make_engine(url, read_only=True)
    got = Collector(limits)
    try:
        with engine.connect() as conn:
            try:
                res = conn.execute(text(sql))
                cols = list(res.keys())
                while got.add(chunk := res.fetchmany(got.next_chunk())) and chunk:
                    pass
            except QueryRefused:
                raise
            except Exception as e:
                raise QueryRefused(f"query failed: {e}") from None
            finally:
                conn.rollback()
    finally:
        engine.dispose()
    return cols, got
