"""The one place that builds SQL engines and connections.

- make_engine: what jobs, the analysis and the CLI use (read-write, or read-only for reports);
- reader_engine: the dashboard's pages (read-only, external access off, gated around the console);
- duckdb_connect: a raw read-only DuckDB connection (the console's, with its configuration locked).

Every DuckDB path waits out another process's lock on the file through locking.wait_out_lock. The
migration and bulk-ingest functions are re-exported here so callers need one import.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from kdplatform.store.errors import DatabaseError, DatabaseUnavailable
from kdplatform.store.ingest import bulk_insert, delete_rows
from kdplatform.store.locking import Transient, gate, is_transient, wait_out_lock
from kdplatform.store.migrate import (
    MIGRATION_LOCK,
    MIGRATIONS,
    check_known,
    current_revision,
    downgrade,
    head_revision,
    revision_of,
    upgrade,
)

__all__ = [
    "DUCKDB_CONFIG",
    "LOCK_WAIT_S",
    "MIGRATIONS",
    "MIGRATION_LOCK",
    "RUN_HINT",
    "DatabaseError",
    "DatabaseUnavailable",
    "Transient",
    "bulk_insert",
    "current_revision",
    "default_url",
    "delete_rows",
    "downgrade",
    "duckdb_connect",
    "gate",
    "head_revision",
    "is_duckdb",
    "is_transient",
    "make_engine",
    "masked_url",
    "preflight",
    "reader_engine",
    "table_names",
    "upgrade",
    "wait_out_lock",
]

# Readers open DuckDB with one configuration: a process may hold a file under a single configuration, so
# the dashboard's pages and its console must agree or each would lock the other out.
DUCKDB_CONFIG = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
}
LOCK_WAIT_S = float(os.environ.get("KDP_DB_WAIT_S", "120"))
"""How long a job's connection waits for a reader to let go of the file."""
RUN_HINT = "run a job first: `make demo` (the quickstart) or `kdplatform run jobs/smoke.yaml`"


def default_url(workdir: Path) -> str:
    """The database of a job whose spec names none: $KDP_DATABASE_URL (a deployment's, kept off command
    lines), else the workdir's DuckDB file (as tracking.default_tracking_uri reads $MLFLOW_TRACKING_URI)."""
    return os.environ.get("KDP_DATABASE_URL") or f"duckdb:///{Path(workdir).resolve() / 'kdp.duckdb'}"


def masked_url(url: str) -> str:
    """A database URL fit to print: its password replaced by ***. Not a URL: returned as given (opening it
    fails with its own message)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def is_duckdb(conn_or_engine: Connection | Engine) -> bool:
    return conn_or_engine.dialect.name == "duckdb"


def table_names(engine: Engine) -> list[str]:
    return inspect(engine).get_table_names()


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
                    f"database URL {masked_url(url)!r} needs psycopg 3: pip install 'kdplatform[postgres]'"
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
        raise DatabaseError(f"cannot open database {masked_url(url)!r}: {e}") from None
    if u.get_backend_name() == "duckdb":
        event.listen(engine, "do_connect", _connect_waiting)
    return engine


def _connect_waiting(dialect, conn_rec, cargs, cparams):
    """Open a DuckDB file, waiting while another process (a reader such as the dashboard) holds its lock:
    a writer must not die because someone looked at its results."""
    return wait_out_lock(lambda: dialect.connect(*cargs, **cparams), LOCK_WAIT_S)


def duckdb_connect(
    path: str | Path,
    *,
    wait_s: float = 20.0,
    what: str | None = None,
    lock_configuration: bool = False,
    settings: dict[str, str | int] | None = None,
):
    """A raw DuckDB connection to the file at `path`: read-only, external access off (DUCKDB_CONFIG),
    waiting up to `wait_s` for a job's write lock (see locking.wait_out_lock for `what`).

    With `lock_configuration` nothing run on it can change a setting again (the console's second fence),
    after `settings` (e.g. memory_limit, threads; values passed as parameters) are applied; the file's
    instance is shared within a process, so it is set and locked once, by the first such connection."""
    import duckdb

    def once():
        conn = duckdb.connect(str(path), read_only=True, config=dict(DUCKDB_CONFIG))
        try:
            if (
                lock_configuration
                and not conn.execute("SELECT current_setting('lock_configuration')").fetchone()[0]
            ):
                for name, value in (settings or {}).items():
                    conn.execute(f"SET {_setting_name(name)} = ?", [str(value)])
                conn.execute("SET lock_configuration = true")
        except BaseException:
            conn.close()
            raise
        return conn

    return wait_out_lock(once, wait_s, what)


def _setting_name(name: str) -> str:
    """A setting's name, which SET cannot take as a parameter: letters, digits and underscores only."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a DuckDB setting name: {name!r}")
    return name


def reader_engine(url: str, *, wait_s: float = 20.0) -> Engine:
    """A read-only engine over `url` for the dashboard's pages, whose connections are short-lived (NullPool).

    On DuckDB each connection is a duckdb_connect (read-only, external access off) that waits up to `wait_s`
    while a job holds the write lock, then raises DatabaseUnavailable; a missing file raises it at once;
    connections are ordered around the console's by the process's gate. Other backends get
    make_engine(url, read_only=True).
    """
    try:
        u = make_url(url)
    except Exception as e:
        raise DatabaseUnavailable(
            f"{url!r} is not a database URL (e.g. duckdb:///runs/x/kdp.duckdb): {e}"
        ) from None
    if u.get_backend_name() != "duckdb":
        try:
            return make_engine(url, read_only=True)
        except DatabaseError as e:
            raise DatabaseUnavailable(str(e)) from None
    if not u.database or u.database == ":memory:":
        raise DatabaseUnavailable("the dashboard needs a database file, not an in-memory database")
    path = Path(u.database)
    if not path.exists():
        raise DatabaseUnavailable(f"no database at {path}: {RUN_HINT}")
    page_gate, what = gate(path), f"database {path}"

    def creator():
        page_gate.page_open(wait_s, what)
        try:
            conn = duckdb_connect(path, wait_s=wait_s, what=what)
        except BaseException:
            page_gate.page_close()
            raise
        return _page_connection(conn, page_gate)

    return create_engine(u, creator=creator, poolclass=NullPool)


def _page_connection(conn, page_gate):
    """duckdb-sqlalchemy's connection wrapper that tells the gate when it closes."""
    from duckdb_sqlalchemy import ConnectionWrapper

    class PageConnection(ConnectionWrapper):
        _released = False

        def close(self) -> None:
            try:
                conn.close()
            finally:
                if not self._released:
                    self._released = True
                    page_gate.page_close()

    return PageConnection(conn)


def preflight(url: str) -> None:
    """Check, without writing, that `url` can be opened and is not ahead of this code's schema."""
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
            current = revision_of(conn)
    except Exception as e:
        raise DatabaseError(f"cannot open database {masked_url(url)!r}: {e}") from None
    finally:
        engine.dispose()
    check_known(current, url)
