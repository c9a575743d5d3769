"""Running one checked query on each backend, within its Limits.

- DuckDB: a read-only connection, external access off, `memory_limit` and `threads` set and then the
  configuration locked (store.db.duckdb_connect); a timer interrupts the query; rows are fetched in chunks
  that shrink as rows grow, so the byte cap stops the fetch.
- PostgreSQL: `BEGIN READ ONLY` and `SET LOCAL statement_timeout` (the server stops the query), the query
  sent alone through the extended protocol (psycopg's stream: a second statement is a syntax error there,
  so nothing can COMMIT out of the transaction), rows streamed one at a time and text values refused
  before decoding when they alone exceed the byte cap; always rolled back.
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
    engine = db.make_engine(url)
    got = Collector(limits)
    try:
        try:
            raw = engine.raw_connection()
        except Exception as e:
            raise QueryRefused(f"cannot connect to {db.masked_url(url)}: {_first_line(e)}") from None
        pg = raw.driver_connection
        pg.rollback()
        pg.autocommit = True
        try:
            with pg.cursor() as cur:
                _cap_text(cur, limits.max_bytes)
                cur.execute("BEGIN READ ONLY")
                cur.execute(f"SET LOCAL statement_timeout = {max(1, int(limits.timeout_s * 1000))}")
                cols = _stream(cur, sql, got)
        finally:
            raw.invalidate()  # never back into a pool: a stopped stream leaves the connection busy
    finally:
        engine.dispose()
    return cols, got


def _stream(cur, sql: str, got: Collector) -> list[str]:
    import psycopg

    cols: list[str] = []
    try:
        for row in cur.stream(sql):
            cols = cols or [d.name for d in cur.description]
            if not got.add([row]):
                break
        cols = cols or [d.name for d in (cur.description or [])]
    except _TooBig:
        raise QueryRefused(got.too_big()) from None
    except psycopg.errors.QueryCanceled:
        raise QueryRefused(got.too_slow()) from None
    except psycopg.Error as e:
        raise QueryRefused(f"query failed: {str(e).strip()}") from None
    return cols


def _first_line(e: Exception) -> str:
    lines = str(getattr(e, "orig", None) or e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


class _TooBig(Exception):
    pass


def _cap_text(cur, max_bytes: int) -> None:
    """Text and bytea values longer than the byte cap are refused as they arrive, before being decoded."""
    from psycopg.types.string import ByteaLoader, TextLoader

    def capped(base):
        class Capped(base):
            def load(self, data):
                if len(data) > max_bytes:
                    raise _TooBig
                return super().load(data)

        return Capped

    for name in ("text", "varchar", "bpchar", "name"):
        cur.adapters.register_loader(name, capped(TextLoader))
    cur.adapters.register_loader("bytea", capped(ByteaLoader))


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
