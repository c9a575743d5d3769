"""The views' per-job copies (kdplatform.store.materialized): they hold exactly their views' rows, are read
only while the job's runs are as they were when written, and an import or a migration writes them."""

from __future__ import annotations

import pandas as pd
import pytest
from copies import assert_copies_fresh, rows
from sqlalchemy import text

from kdplatform.analysis import features, groups, mia, overlap, rates, reading
from kdplatform.store import db, materialized
from kdplatform.testing import build_study, store_design


@pytest.fixture
def study(db_url):
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    built = build_study(engine, store_design("copies"))
    yield engine, built
    engine.dispose()


def test_copies_hold_their_views_rows_on_both_backends(study):
    engine, built = study
    for job_id in built.jobs.values():
        assert_copies_fresh(engine, job_id)
        with engine.begin() as conn:
            assert materialized.refresh(conn, job_id) == [], "fresh copies are not written again"
    with engine.connect() as conn:  # not vacuous: the copies the pages read have rows
        for view in ("example_features", "scanned_runs", "example_memorization", "inheritance"):
            assert len(rows(conn, materialized.copy_name(view), next(iter(built.jobs.values())))) > 0, view


def _student(engine, job_id: int) -> int:
    runs = groups.scanned_runs(engine, job_id)
    return int(runs.loc[runs["role"].str.startswith("student"), "run_id"].iloc[0])


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE runs SET status = 'stale' WHERE id = :r",  # staled by `run`
        "UPDATE runs SET finished_at = CURRENT_TIMESTAMP WHERE id = :r",  # a stage that ran again
    ],
)
def test_a_changed_run_sends_reads_to_the_view_until_refreshed(study, change):
    engine, built = study
    job_id = next(iter(built.jobs.values()))
    run = _student(engine, job_id)
    with engine.begin() as conn:
        conn.execute(text(change), {"r": run})
    with engine.connect() as conn:
        assert all(materialized.source(conn, v, job_id) == v for v in materialized.MATERIALIZED)
    # what the analysis reads is the view's answer, not the copy's
    with engine.connect() as conn:
        view_rates = rows(conn, "memorization_rates", job_id)
        copy_rates = rows(conn, materialized.copy_name("memorization_rates"), job_id)
    read = rates.rates(engine, job_id)
    assert sorted(read["run_id"]) == sorted(view_rates["run_id"])
    if "stale" in change:
        assert run not in set(read["run_id"]) and run in set(copy_rates["run_id"])
    with engine.begin() as conn:
        materialized.refresh(conn, job_id)
    assert_copies_fresh(engine, job_id)


def test_read_job_reads_the_copy_only_while_fresh(study):
    """read_job swaps FROM/JOIN <view> for the copy; a string literal naming the view is left alone."""
    engine, built = study
    job_id = next(iter(built.jobs.values()))
    with engine.begin() as conn:  # a copy that differs from its view, to see which one is read
        conn.execute(
            text("DELETE FROM mat_example_features WHERE job_id = :j AND MOD(example_id, 2) = 0"),
            {"j": job_id},
        )
    sql = "SELECT 'example_features' AS name, COUNT(*) AS n FROM example_features WHERE job_id = :j"
    got = reading.read_job(engine, job_id, sql)
    with engine.connect() as conn:
        n_copy = len(rows(conn, "mat_example_features", job_id))
        n_view = len(rows(conn, "example_features", job_id))
    assert n_copy < n_view
    assert got["name"].iloc[0] == "example_features" and int(got["n"].iloc[0]) == n_copy
    with engine.begin() as conn:
        conn.execute(text("UPDATE runs SET status = status || '' WHERE job_id = :j"), {"j": job_id})
        conn.execute(text("UPDATE runs SET finished_at = CURRENT_TIMESTAMP WHERE job_id = :j"), {"j": job_id})
    assert int(reading.read_job(engine, job_id, sql)["n"].iloc[0]) == n_view


def test_analysis_answers_agree_with_and_without_copies(study):
    """The pages' calls give the same answers from the copies as from the views (copies emptied and
    marked stale: every read falls back to the view)."""
    engine, built = study
    job_id = next(iter(built.jobs.values()))
    group = groups.student_group(engine, job_id)

    def answers() -> list[pd.DataFrame]:
        return [
            overlap.overlap_matrix(engine, job_id),
            overlap.inheritance(engine, job_id),
            overlap.consistency_matrix(engine, job_id),
            features.features(engine, job_id),
            features.kld_categories(engine, job_id, group),
            features.easy_examples(engine, job_id),
            rates.rate_summary(engine, job_id),
            mia.mechanism_points(engine, job_id),
        ]

    fresh = answers()
    with engine.begin() as conn:
        conn.execute(text(f"DELETE FROM {materialized.STATE_TABLE}"))
    for a, b in zip(fresh, answers(), strict=True):
        pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_an_import_writes_the_destination_copies(tmp_path):
    from kdplatform.store.transfer import export_job

    src, dst = f"duckdb:///{tmp_path / 'a.duckdb'}", f"duckdb:///{tmp_path / 'b.duckdb'}"
    build_study(src, store_design("moved"))
    result = export_job(src, dst, "moved")
    engine = db.make_engine(dst)
    try:
        assert_copies_fresh(engine, result.job_id)
    finally:
        engine.dispose()


def test_the_migration_fills_copies_of_existing_jobs(tmp_path):
    url = f"duckdb:///{tmp_path / 'old.duckdb'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    built = build_study(engine, store_design("old"))
    db.downgrade(engine, "0012")
    assert materialized.STATE_TABLE not in db.table_names(engine)
    db.upgrade(engine)
    assert_copies_fresh(engine, built.jobs["old"])
    engine.dispose()
