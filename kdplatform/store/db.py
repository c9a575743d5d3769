"""The one place that builds SQL engines, migrates schemas and moves bulk rows.

Per-example data arrives as Arrow tables and goes in with one statement per table inside the caller's
transaction (DuckDB scans the Arrow table directly), so a stage's rows and its status commit together.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


class DatabaseError(Exception):
    """A database that cannot be used; the message says which URL and what to do."""


def default_url(workdir: Path) -> str:
    return f"duckdb:///{Path(workdir).resolve() / 'kdp.duckdb'}"


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    try:
        u = make_url(url)
    except Exception as e:
        raise DatabaseError(f"database URL {url!r} is not a valid SQLAlchemy URL: {e}") from None
    kwargs: dict = {}
    if u.drivername == "postgres":  # the libpq-style scheme many services hand out
        u = u.set(drivername="postgresql")
    if u.get_backend_name() == "postgresql":
        # A bare postgresql:// means psycopg 3 here (SQLAlchemy's default driver would be psycopg2).
        if u.drivername == "postgresql":
            u = u.set(drivername="postgresql+psycopg")
        if u.drivername == "postgresql+psycopg":
            try:
                import psycopg  # noqa: F401
            except ImportError:
                raise DatabaseError(
                    f"database URL {url!r} needs psycopg 3: pip install 'kdplatform[postgres]'"
                ) from None
        kwargs["pool_pre_ping"] = True  # a shared server restarts; do not fail on a stale connection
        if read_only:
            kwargs["execution_options"] = {"postgresql_readonly": True}
    elif u.get_backend_name() == "duckdb":
        if u.database and u.database != ":memory:":
            if read_only and not Path(u.database).exists():
                raise DatabaseError(f"no database at {u.database}; run a job first (kdplatform run JOB)")
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        if read_only:
            kwargs["connect_args"] = {"read_only": True}
        # DuckDB lets one process hold a file: open it per transaction so readers (the dashboard,
        # `kdplatform sql`) get in between a running job's stages.
        kwargs["poolclass"] = NullPool
    try:
        engine = create_engine(u, **kwargs)
    except Exception as e:
        raise DatabaseError(f"cannot open database {url!r}: {e}") from None
    if u.get_backend_name() == "duckdb":
        event.listen(engine, "do_connect", _wait_for_file_lock)
    return engine


MIGRATION_LOCK = 0x6B6470  # "kdp": the advisory lock id held while migrating a PostgreSQL database
LOCK_WAIT_S = float(os.environ.get("KDP_DB_WAIT_S", "120"))


def _wait_for_file_lock(dialect, conn_rec, cargs, cparams):
    """Open a DuckDB file, waiting while another process (a reader such as the dashboard) holds its lock:
    a writer must not die because someone looked at its results."""
    import duckdb

    deadline, delay = time.monotonic() + LOCK_WAIT_S, 0.05
    while True:
        try:
            return dialect.connect(*cargs, **cparams)
        except duckdb.IOException as e:
            if "lock" not in str(e).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 1.0)


def is_duckdb(conn_or_engine: Connection | Engine) -> bool:
    return conn_or_engine.dialect.name == "duckdb"


def _alembic_config(connection: Connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return _current(conn)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`; refuses a database made by newer code than this."""
    from alembic import command
    from alembic.script import ScriptDirectory

    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Jobs starting together on a fresh team database would race to create the schema.
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            cfg = _alembic_config(conn)
            current = _current(conn)
            known = {s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions()}
            if current is not None and current not in known:
                raise DatabaseError(
                    f"database {engine.url} is at schema revision {current}, which this version of "
                    "kdplatform does not know (it was written by newer code); upgrade kdplatform"
                )
            command.upgrade(cfg, revision)
    except SQLAlchemyError as e:
        raise DatabaseError(f"cannot migrate database {engine.url}: {e}") from None


def preflight(url: str) -> None:
    """Check, without writing, that `url` can be opened and is not ahead of this code's schema."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    u = make_url(url) if "://" in url else None
    if u is None:
        raise DatabaseError(
            f"database URL {url!r} is not a valid SQLAlchemy URL (e.g. duckdb:///path.duckdb)"
        )
    if u.get_backend_name() == "duckdb" and u.database and u.database != ":memory:":
        path = Path(u.database)
        if not path.exists():
            parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), None)
            if parent is None or not os.access(parent, os.W_OK):
                raise DatabaseError(f"cannot create database {path}: {parent} is not writable")
            return
    engine = make_engine(url, read_only=True)
    try:
        with engine.connect() as conn:
            current = _current(conn)
    except Exception as e:
        raise DatabaseError(f"cannot open database {url!r}: {e}") from None
    finally:
        engine.dispose()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    known = {s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions()}
    if current is not None and current not in known:
        raise DatabaseError(
            f"database {url} is at schema revision {current}, which this version of kdplatform does not "
            "know (it was written by newer code); upgrade kdplatform"
        )


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), revision)


def _current(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def table_names(engine: Engine) -> list[str]:
    return inspect(engine).get_table_names()


def bulk_insert(conn: Connection, table: str, rows: pa.Table) -> int:
    """Insert an Arrow table's rows into `table` (columns matched by name) in the caller's transaction.

    DuckDB scans the Arrow table in place; PostgreSQL (psycopg 3) gets COPY in batches; others INSERT.
    """
    if rows.num_rows == 0:
        return 0
    if is_duckdb(conn):
        raw = conn.connection.driver_connection
        name = f"_kdp_bulk_{id(rows)}"
        raw.register(name, rows)
        try:
            cols = ", ".join(f'"{c}"' for c in rows.column_names)
            conn.exec_driver_sql(f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM {name}')
        finally:
            raw.unregister(name)
    elif conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        from kdplatform.store.postgres import copy_arrow

        copy_arrow(conn, table, rows)
    else:
        from sqlalchemy import MetaData, Table

        tbl = Table(table, MetaData(), autoload_with=conn)
        conn.execute(tbl.insert(), rows.to_pylist())
    return rows.num_rows


def delete_rows(conn: Connection, table: str, **where: int) -> None:
    cond = " AND ".join(f"{k} = :{k}" for k in where)
    conn.execute(text(f'DELETE FROM "{table}" WHERE {cond}'), where)
