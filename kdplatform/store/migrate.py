"""Schema migrations: alembic over the connection the store hands over (DuckDB or PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from kdplatform.store.errors import DatabaseError

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
MIGRATION_LOCK = 0x6B6470  # "kdp": the advisory lock id held while migrating a PostgreSQL database


def _config(connection: Connection | None = None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _script():
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    return _script().get_current_head()


def check_known(current: str | None, where: str) -> None:
    """Refuse a database at a schema revision this code does not know (it was written by newer code)."""
    if current is not None and current not in {s.revision for s in _script().walk_revisions()}:
        raise DatabaseError(
            f"database {where} is at schema revision {current}, which this version of kdplatform does not "
            "know (it was written by newer code); upgrade kdplatform"
        )


def revision_of(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    if conn.dialect.name == "duckdb":
        # duckdb_sqlalchemy registers its alembic implementation when it connects and alembic is already
        # imported; a connection opened before alembic was imported needs it registered here.
        import duckdb_sqlalchemy.alembic_impl  # noqa: F401

    return MigrationContext.configure(conn).get_current_revision()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return revision_of(conn)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`; refuses a database made by newer code than this."""
    from alembic import command

    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Jobs starting together on a fresh team database would race to create the schema.
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            check_known(revision_of(conn), str(engine.url))
            command.upgrade(_config(conn), revision)
    except SQLAlchemyError as e:
        raise DatabaseError(f"cannot migrate database {engine.url}: {e}") from None


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    with engine.begin() as conn:
        command.downgrade(_config(conn), revision)
