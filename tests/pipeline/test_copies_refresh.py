"""The runner's last step, writing the job's copies of the slow views: said, never fatal on failure."""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy.exc import OperationalError

from kdplatform.pipeline import JobRunner
from kdplatform.store import db, materialized
from kdplatform.testing import build_study, store_design


def test_a_failed_refresh_is_said_and_leaves_the_copies_unread(tmp_path, monkeypatch):
    engine = db.make_engine(f"duckdb:///{tmp_path / 'kdp.duckdb'}")
    db.upgrade(engine)
    job_id = build_study(engine, store_design("copies")).jobs["copies"]
    with engine.begin() as conn:  # the job's runs move on after its copies were written
        conn.exec_driver_sql(f"UPDATE runs SET finished_at = CURRENT_TIMESTAMP WHERE job_id = {job_id}")

    def fail(*_a, **_k):
        raise OperationalError("INSERT", {}, Exception("disk full"))

    monkeypatch.setattr(materialized, "refresh", fail)
    said: list[str] = []
    JobRunner.refresh_copies(SimpleNamespace(engine=engine, job_id=job_id, echo=said.append))
    assert (
        len(said) == 1
        and said[0].startswith("[copies] not written (OperationalError")
        and "disk full" in said[0]
    )
    with engine.connect() as conn:
        assert all(materialized.source(conn, v, job_id) == v for v in materialized.MATERIALIZED)
    monkeypatch.undo()
    said.clear()
    JobRunner.refresh_copies(SimpleNamespace(engine=engine, job_id=job_id, echo=said.append))
    assert len(said) == 1 and said[0].startswith("[copies] ") and "example_features" in said[0]
    with engine.connect() as conn:
        assert all(materialized.source(conn, v, job_id) != v for v in materialized.MATERIALIZED)
    engine.dispose()
