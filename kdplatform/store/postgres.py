"""PostgreSQL specifics: advisory locks (bulk rows with COPY are in kdplatform.store.ingest)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine


def advisory_lock_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock from a name."""
    return zlib.crc32(f"kdplatform:{name}".encode()) - (1 << 31)


def advisory_xact_lock(conn: Connection, name: str) -> None:
    """Hold a transaction-scoped lock named `name` (no-op off PostgreSQL); concurrent holders queue.

    Use it around work two processes must not interleave on a shared database, e.g. transfers:
    `advisory_xact_lock(conn, "transfer")` as the first statement of the destination's transaction.
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
