"""export/import on a real job's database: the session's smoke job (DuckDB) to PostgreSQL and back."""

from __future__ import annotations

from sqlalchemy import text

from kdplatform.store import db
from kdplatform.store.snapshot import snapshot
from kdplatform.store.transfer import export_job, import_job

PER_STAGE = """
    SELECT r.stage_key, COUNT(*) FROM {table} t JOIN runs r ON r.id = t.{owner} JOIN jobs j ON j.id = r.job_id
    WHERE j.name = :job GROUP BY r.stage_key
"""


def _owned_counts(url: str, job: str) -> dict[str, list]:
    """Rows per stage in every table a run owns (per-example and analysis tables alike)."""
    engine = db.make_engine(url)
    out = {}
    with engine.connect() as conn:
        from sqlalchemy import inspect

        insp = inspect(conn)
        for table in sorted(insp.get_table_names()):
            cols = {c["name"] for c in insp.get_columns(table)}
            owner = next((c for c in ("scan_run_id", "run_id") if c in cols), None)
            if owner is None or table in ("run_inputs", "checkpoints"):
                continue
            rows = conn.execute(text(PER_STAGE.format(table=table, owner=owner)), {"job": job}).all()
            out[table] = sorted(tuple(r) for r in rows)
    engine.dispose()
    return out


def test_smoke_job_to_postgres_and_back(smoke, pg_url, tmp_path):
    name = smoke.spec.name
    want = snapshot(smoke.engine, name)
    res = export_job(smoke.database_url, pg_url, name)
    assert res.inserted["scan_results"] > 0
    assert snapshot(db.make_engine(pg_url), name) == want
    assert _owned_counts(pg_url, name) == _owned_counts(smoke.database_url, name)
    assert not export_job(smoke.database_url, pg_url, name).changed
    back = f"duckdb:///{tmp_path / 'back.duckdb'}"
    import_job(pg_url, back, name)
    assert snapshot(db.make_engine(back), name) == want
    assert _owned_counts(back, name) == _owned_counts(smoke.database_url, name)
