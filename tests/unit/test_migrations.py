"""Migrations and ORM agree, there is one head, and the schema goes up and down on DuckDB."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from kdplatform.store import db, materialized, views
from kdplatform.store.schema import Base


def test_single_head():
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(db.MIGRATIONS))
    assert len(ScriptDirectory.from_config(cfg).get_heads()) == 1


def test_upgrade_matches_orm_and_downgrades(tmp_path):
    engine = db.make_engine(f"duckdb:///{tmp_path / 'm.duckdb'}")
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
    with engine.connect() as conn:
        # DuckDB stores Text and String alike (VARCHAR), so types are compared by name only there.
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": False, "include_name": materialized.include_name}
        )
        diff = compare_metadata(ctx, Base.metadata)
    # DuckDB gets no foreign keys (see migration 0001); everything else must match the ORM.
    assert [d for d in diff if not (isinstance(d, tuple) and d[0] == "add_fk")] == []
    with engine.connect() as conn:
        names = {
            r[0] for r in conn.exec_driver_sql("SELECT view_name FROM duckdb_views() WHERE NOT internal")
        }
    assert names == set(views.ORDER)
    db.downgrade(engine, "base")
    assert set(db.table_names(engine)) == {"alembic_version"}


def test_newer_database_is_refused(tmp_path):
    import pytest

    engine = db.make_engine(f"duckdb:///{tmp_path / 'n.duckdb'}")
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    with pytest.raises(db.DatabaseError, match="newer code"):
        db.upgrade(engine)
