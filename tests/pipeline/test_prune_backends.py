"""`prune` deletes the runs that left the plan and every row they own in one transaction, on DuckDB and
on PostgreSQL (whose foreign keys order the deletes); a run still read by one that stays is refused."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from kdplatform.pipeline import stale
from kdplatform.store import db
from kdplatform.store.schema import RUN_OWNED_TABLES
from kdplatform.testing import build_study, store_design


@pytest.fixture(params=["duckdb", "postgresql"])
def engine(request, tmp_path):
    if request.param == "duckdb":
        url, server, name = f"duckdb:///{tmp_path / 'p.duckdb'}", None, None
    else:
        server = request.getfixturevalue("pg_server")
        name = server.create_database()
        url = server.url(name)
    engine = db.make_engine(url)
    db.upgrade(engine)
    yield engine
    engine.dispose()
    if server is not None:
        server.drop_database(name)


def _count(engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def test_prune_removes_runs_and_their_rows(engine):
    keys = set(build_study(engine, store_design("s", 0, 40)).stages["s"])
    job_id = _count(engine, "SELECT id FROM jobs WHERE name = 's'")
    rates = _count(engine, "SELECT COUNT(*) FROM memorization_rates")
    blocked = pytest.raises(stale.PruneBlocked, match="scan/train/baseline/s0 reads train/baseline/s0")
    with blocked, Session(engine) as s, s.begin():  # a scan that stays reads the model
        stale.prune(s, job_id, keys - {"train/baseline/s0"})
    gone = {"train/baseline/s1", "scan/train/baseline/s1"}  # seed 1 removed from the spec
    with Session(engine, expire_on_commit=False) as s, s.begin():
        assert sorted(stale.mark_stale(s, job_id, keys - gone)) == sorted(gone)
    assert _count(engine, "SELECT COUNT(*) FROM memorization_rates") == rates - 1
    with Session(engine, expire_on_commit=False) as s, s.begin():
        assert {r.stage_key for r in stale.prune(s, job_id, keys - gone, dry_run=True)} == gone
    with Session(engine, expire_on_commit=False) as s, s.begin():
        assert {r.stage_key for r in stale.prune(s, job_id, keys - gone)} == gone
    with engine.connect() as conn:
        left = {r for (r,) in conn.execute(text("SELECT id FROM runs")).all()}
        assert len(left) == len(keys) - 2
        for table, column in RUN_OWNED_TABLES.items():
            owners = {r for (r,) in conn.execute(text(f"SELECT DISTINCT {column} FROM {table}")).all()}
            assert owners <= left, table
    assert _count(engine, "SELECT COUNT(*) FROM memorization_rates") == rates - 1
