"""The same migration, ingest and view tests on DuckDB and PostgreSQL (`db_url` is parametrised; the
PostgreSQL case skips alone, with the reason, when no server can be started)."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from sqlalchemy import text
from synthetic_study import AWKWARD, build_study

from kdplatform.store import db
from kdplatform.store.schema import Base


def _views(engine) -> set[str]:
    with engine.connect() as conn:
        if db.is_duckdb(conn):
            sql = "SELECT view_name FROM duckdb_views() WHERE NOT internal"
        else:
            sql = "SELECT table_name FROM information_schema.views WHERE table_schema = 'public'"
        return {r[0] for r in conn.exec_driver_sql(sql)}


def _migration_views() -> set[str]:
    """Every view the migrations create (parsed from their CREATE VIEW statements)."""
    import re

    names = set()
    for f in (db.MIGRATIONS / "versions").glob("*.py"):
        names |= set(re.findall(r"CREATE VIEW (\w+)", f.read_text()))
        names |= set(re.findall(r'^\s*\(\s*"(\w+)",\s*$', f.read_text(), re.M))
    return names


def test_migrations_up_down_up(db_url):
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
    assert set(Base.metadata.tables) <= set(db.table_names(engine))
    views = _views(engine)
    assert {"memorization", "memorized_examples", "memorization_rates"} <= views
    with engine.connect() as conn:
        for v in views:  # every view compiles and runs on an empty database
            conn.exec_driver_sql(f'SELECT * FROM "{v}" LIMIT 1').all()
    db.downgrade(engine, "base")
    assert set(db.table_names(engine)) == {"alembic_version"}
    assert _views(engine) == set()
    db.upgrade(engine)
    assert _views(engine) == views


def test_migrations_match_orm_on_postgres(pg_url):
    """On PostgreSQL the migrations create the ORM's schema exactly, foreign keys included."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from kdplatform.store import materialized

    engine = db.make_engine(pg_url)
    db.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"include_name": materialized.include_name}), Base.metadata
        )
    assert diff == []
    with engine.connect() as conn:
        fks = conn.exec_driver_sql(
            "SELECT count(*) FROM information_schema.table_constraints WHERE constraint_type = 'FOREIGN KEY'"
        ).scalar()
    assert fks > 0


def test_sequences_give_ids_on_both(db_url):
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    runs = build_study(engine)
    assert sorted(runs.values()) == list(range(1, len(runs) + 1))


def _awkward_runs(n: int = 40) -> pa.Table:
    """Small-table rows with NULLs next to empty strings, newlines, timestamps and extreme floats."""
    floats = [0.0, -0.0, 1 / 3, 1e-308, 1e308, -2.5e-12, math.inf, -math.inf, 123456789.123456789]
    t0 = dt.datetime(2025, 3, 4, 5, 6, 7, 891011)
    return pa.table(
        {
            "id": pa.array(range(100, 100 + n), pa.int32()),
            "job_id": pa.array([1] * n, pa.int32()),
            "stage_key": pa.array([f"k/{i}" for i in range(n)]),
            "kind": pa.array(["train"] * n),
            "role": pa.array([None if i % 3 == 0 else ("" if i % 3 == 1 else "teacher") for i in range(n)]),
            "seed": pa.array([None if i % 2 else i for i in range(n)], pa.int32()),
            "temperature": pa.array([None if i % 4 == 0 else floats[i % len(floats)] for i in range(n)]),
            "objective": pa.array([AWKWARD[i % len(AWKWARD)] for i in range(n)]),
            "status": pa.array(["done"] * n),
            "config": pa.array(['{"a": "b,c", "q": "\\""}'] * n),
            "config_hash": pa.array([f"h{i}" for i in range(n)]),
            "model_id": pa.array([None] * n, pa.int32()),
            "dataset_id": pa.array([None] * n, pa.int32()),
            "mlflow_run_id": pa.array([None if i % 2 else f"m{i}" for i in range(n)]),
            "started_at": pa.array([t0 + dt.timedelta(days=i) for i in range(n)], pa.timestamp("us")),
            "finished_at": pa.array([None] * n, pa.timestamp("us")),
            "seconds": pa.array([float(i) for i in range(n)]),
            "error": pa.array([None if i % 2 else AWKWARD[i % len(AWKWARD)] * 3 for i in range(n)]),
        }
    )


def test_bulk_insert_round_trips_nulls_text_floats_times(db_url):
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    build_study(engine)  # job 1 exists (foreign keys on PostgreSQL)
    rows = _awkward_runs()
    with engine.begin() as conn:
        assert db.bulk_insert(conn, "runs", rows) == rows.num_rows
    with engine.connect() as conn:
        back = conn.execute(
            text(f"SELECT {', '.join(rows.column_names)} FROM runs WHERE id >= 100 ORDER BY id")
        ).all()
    want = rows.to_pylist()
    assert len(back) == len(want)
    for got, exp in zip(back, want, strict=True):
        assert dict(got._mapping) == exp


def test_bulk_insert_per_example_rows_exactly(db_url):
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    runs = build_study(engine, n=10)
    n = 50_000
    rng = np.random.default_rng(1)
    logprob = -rng.random(n) * 100
    logprob[:3] = [-math.inf, -0.0, -1e-300]
    rows = pa.table(
        {
            "run_id": pa.array(np.full(n, runs["train/teacher"]), pa.int32()),
            "example_id": pa.array(np.arange(n, dtype=np.int64) * 1_000_003 + 2**40),
            "dataset_id": pa.array(np.full(n, 1), pa.int32()),
            "scan_run_id": pa.array(np.full(n, runs["data"]), pa.int32()),
            "memorized": pa.array(rng.random(n) < 0.2),
            "match_len": pa.array(rng.integers(0, 20, n), pa.int32()),
            "suffix_logprob": pa.array(logprob),
            "suffix_entropy": pa.array(rng.random(n)),
            "ppl": pa.array(1 + rng.random(n) * 1e6),
        }
    )
    with engine.begin() as conn:
        db.bulk_insert(conn, "scan_results", rows)
    cols = ", ".join(rows.column_names)
    with engine.connect() as conn:
        back = conn.execute(
            text(f"SELECT {cols} FROM scan_results WHERE scan_run_id = :s ORDER BY example_id"),
            {"s": runs["data"]},
        ).all()
    assert len(back) == n
    for j, c in enumerate(rows.column_names):
        got = np.array([r[j] for r in back])
        np.testing.assert_array_equal(got, rows[c].to_numpy(zero_copy_only=False), err_msg=c)


def test_bulk_insert_joins_the_callers_transaction(db_url):
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    build_study(engine, n=5)
    rows = _awkward_runs(5)
    with pytest.raises(RuntimeError, match="abort"), engine.begin() as conn:
        db.bulk_insert(conn, "runs", rows)
        seen = conn.execute(text("SELECT COUNT(*) FROM runs WHERE id >= 100")).scalar()
        assert seen == 5  # visible inside the transaction
        raise RuntimeError("abort")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM runs WHERE id >= 100")).scalar() == 0


def test_postgres_ingest_goes_through_copy(pg_url, monkeypatch):
    from kdplatform.store import ingest

    calls = []
    real = ingest.copy_arrow

    def spy(conn, table, rows, batch_rows=ingest.BATCH_ROWS):
        calls.append((table, rows.num_rows))
        return real(conn, table, rows, batch_rows=7)  # many batches in one COPY

    monkeypatch.setattr(ingest, "copy_arrow", spy)
    engine = db.make_engine(pg_url)
    db.upgrade(engine)
    build_study(engine, n=30)
    assert ("scan_results", 30) in calls and ("examples", 30) in calls
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM scan_results")).scalar() == 5 * 30


def test_postgres_url_forms(pg_server):
    """postgresql:// and postgres:// (no driver) get psycopg 3; a read-only engine refuses writes."""
    from sqlalchemy.exc import DBAPIError

    name = pg_server.create_database()
    try:
        base = pg_server.url(name).split("://", 1)[1]
        for scheme in ("postgresql", "postgres", "postgresql+psycopg"):
            engine = db.make_engine(f"{scheme}://{base}")
            assert engine.dialect.driver == "psycopg"
            with engine.connect() as conn:
                assert conn.exec_driver_sql("SELECT 1").scalar() == 1
            engine.dispose()
        ro = db.make_engine(pg_pg := f"postgresql://{base}", read_only=True)
        with pytest.raises(DBAPIError, match="read-only"), ro.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x int)")
        ro.dispose()
        assert pg_pg
    finally:
        pg_server.drop_database(name)


def _normal(v):
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, np.generic):
        return v.item()
    return v


def _same(a, b) -> bool:
    a, b = _normal(a), _normal(b)
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12) or (
            math.isnan(a) and math.isnan(b)
        )
    return a == b


def _sort_key(row: tuple) -> tuple:
    return tuple((x is None, repr(round(x, 6) if isinstance(x, float) else x)) for x in row)


def test_views_agree_across_backends(pg_url, tmp_path):
    """The same study in DuckDB and PostgreSQL reads the same through every view of the migrations."""
    engines = [db.make_engine(f"duckdb:///{tmp_path / 'v.duckdb'}"), db.make_engine(pg_url)]
    for e in engines:
        db.upgrade(e)
        build_study(e, "alpha", seed=0)
        build_study(e, "beta", seed=0)  # shares alpha's dataset
        build_study(e, "gamma", seed=3)
    views = _views(engines[0])
    assert views == _views(engines[1])
    nonempty = 0
    for v in sorted(views):
        results = []
        for e in engines:
            with e.connect() as conn:
                res = conn.exec_driver_sql(f'SELECT * FROM "{v}"')
                cols = list(res.keys())
                rows = [tuple(_normal(x) for x in r) for r in res.all()]
            results.append((cols, sorted(rows, key=_sort_key)))
        (cd, rd), (cp, rp) = results
        assert cd == cp, v
        assert len(rd) == len(rp), v
        for a, b in zip(rd, rp, strict=True):
            assert all(_same(x, y) for x, y in zip(a, b, strict=True)), (v, a, b)
        nonempty += bool(rd)
    assert nonempty >= 3
