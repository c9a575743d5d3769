"""One query on PostgreSQL that cannot write: `BEGIN READ ONLY`, `SET LOCAL statement_timeout` (the server
stops it), the query sent alone through the extended protocol (psycopg's stream: a second statement is a
syntax error there, so nothing can COMMIT out of the transaction), rows streamed one at a time, text and
bytea values over a size refused before they are decoded; always rolled back, the connection never reused."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg.types.string import ByteaLoader, TextLoader

from kdplatform.store.db import make_engine, masked_url


class QueryFailed(Exception):
    """The server refused or failed the query (or the connection); the message says why."""


class QueryTimeout(QueryFailed):
    """The server's statement_timeout stopped the query."""


class ValueTooLarge(QueryFailed):
    """One value alone was larger than the limit."""


def readonly_rows(
    url: str, sql: str, *, timeout_s: float, max_value_bytes: int, accept: Callable[[tuple], bool]
) -> list[str]:
    """Run `sql` read-only and hand each row to `accept` until it returns False; return the column names."""
    engine = make_engine(url)
    try:
        try:
            raw = engine.raw_connection()
        except Exception as e:
            raise QueryFailed(f"cannot connect to {masked_url(url)}: {_first_line(e)}") from None
        try:
            pg = raw.driver_connection
            pg.rollback()
            pg.autocommit = True
            with pg.cursor() as cur:
                _cap_text(cur, max_value_bytes)
                cur.execute("BEGIN READ ONLY")
                cur.execute(f"SET LOCAL statement_timeout = {max(1, int(timeout_s * 1000))}")
                return _stream(cur, sql, accept)
        finally:
            raw.invalidate()  # never back into a pool: a stopped stream leaves the connection busy
    finally:
        engine.dispose()


def _stream(cur, sql: str, accept: Callable[[tuple], bool]) -> list[str]:
    cols: list[str] = []
    try:
        for row in cur.stream(sql):
            cols = cols or [d.name for d in cur.description]
            if not accept(row):
                break
        return cols or [d.name for d in (cur.description or [])]
    except _TooBig:
        raise ValueTooLarge("a value is larger than the limit") from None
    except psycopg.errors.QueryCanceled:
        raise QueryTimeout("canceling statement due to statement timeout") from None
    except psycopg.Error as e:
        raise QueryFailed(str(e).strip()) from None


class _TooBig(Exception):
    pass


def _cap_text(cur, max_bytes: int) -> None:
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


def _first_line(e: Exception) -> str:
    lines = str(getattr(e, "orig", None) or e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
