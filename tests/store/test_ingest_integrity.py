"""PostgreSQL bulk ingest checks a batch's foreign keys once, set-based, instead of per row; a row that
names a missing run or dataset is still refused, and the per-row checks are back for what follows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sqlalchemy import text
from synthetic_study import build_study

from kdplatform.store import db, ingest


def _scan_rows(n: int, run_id: int, scan_run_id: int, dataset_id: int = 1, start: int = 10**9) -> pa.Table:
    return pa.table(
        {
            "run_id": pa.array(np.full(n, run_id), pa.int32()),
            "example_id": pa.array(np.arange(start, start + n, dtype=np.int64)),
            "dataset_id": pa.array(np.full(n, dataset_id), pa.int32()),
            "scan_run_id": pa.array(np.full(n, scan_run_id), pa.int32()),
            "memorized": pa.array(np.arange(n) % 3 == 0),
            "match_len": pa.array(np.zeros(n), pa.int32()),
            "suffix_logprob": pa.array(np.zeros(n)),
            "suffix_entropy": pa.array(np.zeros(n)),
            "ppl": pa.array(np.ones(n)),
        }
    )


@pytest.fixture
def study(pg_url):
    engine = db.make_engine(pg_url)
    db.upgrade(engine)
    runs = build_study(engine, n=5)
    yield engine, runs
    engine.dispose()


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM scan_results")).scalar_one()


def test_a_valid_batch_is_checked_once_and_copied(study):
    engine, runs = study
    before = _count(engine)
    rows = _scan_rows(1000, runs["train/teacher"], runs["data"])
    with engine.begin() as conn:
        assert ingest.batch_checked(conn, "scan_results", rows)
        db.bulk_insert(conn, "scan_results", rows)
        role = conn.exec_driver_sql("SELECT current_setting('session_replication_role')").scalar_one()
        assert role == "origin"  # the per-row checks are back for the rest of the transaction
    assert _count(engine) == before + 1000


@pytest.mark.parametrize("column", ["run_id", "scan_run_id", "dataset_id"])
def test_a_row_naming_a_missing_parent_is_refused(study, column):
    import psycopg

    engine, runs = study
    before = _count(engine)
    good = _scan_rows(500, runs["train/teacher"], runs["data"])
    bad = _scan_rows(1, runs["train/teacher"], runs["data"], start=0)
    bad = bad.set_column(bad.column_names.index(column), column, pa.array([987_654], pa.int32()))
    rows = pa.concat_tables([good, bad])
    with pytest.raises(psycopg.errors.ForeignKeyViolation), engine.begin() as conn:
        assert not ingest.batch_checked(conn, "scan_results", rows)
        db.bulk_insert(conn, "scan_results", rows)
    assert _count(engine) == before


def test_a_later_insert_in_the_same_transaction_is_checked_per_row(study):
    import psycopg

    engine, runs = study
    with pytest.raises(psycopg.errors.ForeignKeyViolation), engine.begin() as conn:
        db.bulk_insert(conn, "scan_results", _scan_rows(10, runs["train/teacher"], runs["data"]))
        conn.connection.driver_connection.execute(
            "INSERT INTO scan_results (run_id, example_id, dataset_id, scan_run_id, memorized, match_len, "
            "suffix_logprob, suffix_entropy, ppl) VALUES (987654, 1, 1, 1, false, 0, 0, 0, 1)"
        )


def test_the_locked_parents_cannot_be_deleted_before_commit(study, pg_url):
    """The batch's runs are locked FOR KEY SHARE, as the per-row check locks them: a concurrent delete
    waits (here: gives up at once with NOWAIT)."""
    import psycopg

    engine, runs = study
    other = db.make_engine(pg_url)
    try:
        with engine.begin() as conn:
            db.bulk_insert(conn, "scan_results", _scan_rows(10, runs["train/teacher"], runs["data"]))
            with pytest.raises(psycopg.errors.LockNotAvailable), other.begin() as c2:
                c2.connection.driver_connection.execute(
                    "SELECT id FROM runs WHERE id = %s FOR UPDATE NOWAIT", [runs["train/teacher"]]
                )
    finally:
        other.dispose()


@pytest.mark.parametrize("checked", [True, False], ids=["batch-checked", "per-row"])
def test_a_row_naming_a_missing_run_is_refused_on_the_binary_path(study, monkeypatch, checked):
    """The rows go as binary COPY (pgpq), whether the batch check or the per-row triggers refuse them;
    `checked=False` is a role that may not skip the triggers."""
    import psycopg

    engine, runs = study
    sent = []
    binary_rows = ingest.binary_rows
    monkeypatch.setattr(ingest, "binary_rows", lambda *a: sent.append(binary_rows(*a)) or sent[-1])
    if not checked:
        monkeypatch.setattr(ingest, "_may_skip_triggers", lambda *_: False)
    before = _count(engine)
    good = _scan_rows(500, runs["train/teacher"], runs["data"])
    bad = _scan_rows(1, 987_654, runs["data"], start=0)
    with pytest.raises(psycopg.errors.ForeignKeyViolation), engine.begin() as conn:
        db.bulk_insert(conn, "scan_results", pa.concat_tables([good, bad]))
    assert len(sent) == 1 and sent[0] is not None
    assert _count(engine) == before
    with engine.begin() as conn:  # and a valid batch still loads, binary
        db.bulk_insert(conn, "scan_results", good)
    assert len(sent) == 2 and sent[1] is not None
    assert _count(engine) == before + 500
