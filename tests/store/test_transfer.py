"""export_job / import_job: a job's rows between a DuckDB file and PostgreSQL, ids and lineage kept,
idempotent, conflicts refused unless replaced."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from synthetic_study import build_study, dump

from kdplatform.store import db
from kdplatform.store.transfer import TransferConflict, TransferError, export_job, import_job


def _duck(tmp_path, name: str) -> str:
    return f"duckdb:///{tmp_path / name}"


def _study_db(tmp_path, name="src.duckdb", **kw) -> str:
    url = _duck(tmp_path, name)
    engine = db.make_engine(url)
    db.upgrade(engine)
    build_study(engine, **kw)
    return url


def _dump(url: str) -> dict:
    return dump(db.make_engine(url))


LINEAGE = """
    SELECT r.stage_key, i.kind, t.stage_key AS input_stage, d.digest, c.epoch, c.is_final
    FROM run_inputs i JOIN runs r ON r.id = i.run_id JOIN jobs j ON j.id = r.job_id
    LEFT JOIN runs t ON t.id = i.input_run_id LEFT JOIN datasets d ON d.id = i.dataset_id
    LEFT JOIN checkpoints c ON c.id = i.checkpoint_id
    WHERE j.name = :job
"""
RESULTS = """
    SELECT sc.stage_key, m.stage_key AS model_stage, s.example_id, s.memorized, s.match_len, d.digest,
           mm.name AS model_name
    FROM scan_results s JOIN runs sc ON sc.id = s.scan_run_id JOIN runs m ON m.id = s.run_id
    JOIN jobs j ON j.id = sc.job_id JOIN datasets d ON d.id = s.dataset_id
    LEFT JOIN models mm ON mm.id = m.model_id
    WHERE j.name = :job
"""
KLD = """
    SELECT m.stage_key, ref.stage_key, k.example_id, k.kld
    FROM example_kld k JOIN runs m ON m.id = k.run_id JOIN runs ref ON ref.id = k.reference_run_id
    JOIN jobs j ON j.id = m.job_id WHERE j.name = :job
"""
DATASETS = """
    SELECT d.digest, p.digest AS parent, COUNT(e.example_id), MIN(e.text), MAX(e.text)
    FROM datasets d LEFT JOIN datasets p ON p.id = d.parent_dataset_id
    LEFT JOIN examples e ON e.dataset_id = d.id
    WHERE d.id IN (SELECT r.dataset_id FROM runs r JOIN jobs j ON j.id = r.job_id WHERE j.name = :job)
    GROUP BY d.digest, p.digest
"""


def _by_keys(url: str, job: str = "study") -> dict:
    """The job seen through natural keys only (stage keys, digests): equal iff lineage is preserved."""
    engine = db.make_engine(url)
    with engine.connect() as conn:
        return {
            name: sorted((tuple(r) for r in conn.execute(text(sql), {"job": job})), key=repr)
            for name, sql in (
                ("lineage", LINEAGE),
                ("results", RESULTS),
                ("kld", KLD),
                ("datasets", DATASETS),
            )
        }


def test_duckdb_to_postgres_keeps_ids_and_is_idempotent(tmp_path, pg_url):
    src = _study_db(tmp_path)
    before = _dump(src)
    res = export_job(src, pg_url, "study")
    assert res.changed and res.job_id == res.source_job_id
    assert res.inserted["scan_results"] == 5 * 120 and res.inserted["examples"] == 2 * 120
    assert _dump(pg_url) == before  # every row, every id, every lineage column
    again = export_job(src, pg_url, "study")
    assert not again.changed and again.unchanged_runs == len(before["runs"])
    assert _dump(pg_url) == before
    assert _dump(src) == before  # the source is only read


def test_postgres_back_to_duckdb_round_trip(tmp_path, pg_url):
    src = _study_db(tmp_path)
    export_job(src, pg_url, "study")
    back = _duck(tmp_path, "back.duckdb")
    import_job(pg_url, back, "study")
    assert _dump(back) == _dump(src)
    assert not import_job(pg_url, back, "study").changed


def test_taken_ids_are_remapped_with_lineage_and_sequences_move_on(tmp_path, db_url):
    """The destination already has another study using the same ids: new ids, same lineage, and jobs
    written afterwards through the sequences do not collide."""
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    build_study(engine, "other", seed=1)
    src = _study_db(tmp_path)
    res = export_job(src, db_url, "study")
    assert res.job_id != res.source_job_id
    assert any(s != d for s, d in res.ids["runs"].items())
    assert _by_keys(db_url) == _by_keys(src)
    assert _by_keys(db_url, "other") != {}
    with (
        engine.connect() as conn
    ):  # models are one row per (name, revision, config), as the pipeline keeps them
        assert conn.execute(text("SELECT COUNT(*) FROM models")).scalar() == 5
        assert res.inserted["models"] == 0
    snapshot = _dump(db_url)
    assert not export_job(src, db_url, "study").changed
    assert _dump(db_url) == snapshot
    build_study(engine, "later", seed=2)  # the ORM's sequences must be past every imported id
    assert _by_keys(db_url, "study") == _by_keys(src)


def test_shared_dataset_matched_by_digest(tmp_path, pg_url):
    engine = db.make_engine(pg_url)
    db.upgrade(engine)
    build_study(engine, "other", seed=0)  # same digest as the exported study
    src = _study_db(tmp_path, seed=0)
    res = export_job(src, pg_url, "study")
    assert res.inserted["datasets"] == 0 and res.inserted["examples"] == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM datasets")).scalar() == 2
    assert _by_keys(pg_url) == _by_keys(src)


def test_later_analysis_rows_follow_and_unknown_tables_too(tmp_path, pg_url):
    """Rows added to a finished run after the first export (an analysis table present in both
    databases, owned by scan_run_id or job_id) are copied by the next export, remapped."""
    src = _study_db(tmp_path)
    dst = db.make_engine(pg_url)
    db.upgrade(dst)
    build_study(dst, "other", seed=1)  # force remapping
    export_job(src, pg_url, "study")
    ddl = [
        "CREATE TABLE extra_scores (scan_run_id INTEGER, example_id BIGINT, teacher_run_id INTEGER, score "
        "DOUBLE PRECISION, note VARCHAR)",
        "CREATE TABLE extra_job_notes (job_id INTEGER, note VARCHAR)",
    ]
    s_engine = db.make_engine(src)
    for e in (s_engine, dst):
        with e.begin() as conn:
            for sql in ddl:
                conn.exec_driver_sql(sql)
    with s_engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO extra_scores SELECT s.id, 7, t.id, 0.5, NULL FROM runs s, runs t "
            "WHERE s.stage_key = 'scan/train/teacher' AND t.stage_key = 'train/teacher'"
        )
        conn.exec_driver_sql("INSERT INTO extra_job_notes VALUES (1, 'a, \"note\"')")
    res = export_job(src, pg_url, "study")
    assert res.inserted["extra_scores"] == 1 and res.inserted["extra_job_notes"] == 1
    with dst.connect() as conn:
        got = conn.exec_driver_sql(
            "SELECT s.stage_key, t.stage_key, e.score FROM extra_scores e "
            "JOIN runs s ON s.id = e.scan_run_id JOIN runs t ON t.id = e.teacher_run_id "
            "JOIN jobs j ON j.id = s.job_id WHERE j.name = 'study'"
        ).all()
        note = conn.exec_driver_sql(
            "SELECT n.note FROM extra_job_notes n JOIN jobs j ON j.id = n.job_id WHERE j.name = 'study'"
        ).all()
    assert got == [("scan/train/teacher", "train/teacher", 0.5)]
    assert note == [('a, "note"',)]
    assert not export_job(src, pg_url, "study").changed


def test_changed_run_conflicts_unless_replaced(tmp_path, pg_url):
    src = _study_db(tmp_path)
    export_job(src, pg_url, "study")
    s_engine = db.make_engine(src)
    with s_engine.begin() as conn:  # the researcher reran the baseline with another config
        conn.exec_driver_sql("UPDATE runs SET config_hash = 'changed' WHERE stage_key = 'train/baseline/s0'")
        conn.exec_driver_sql(
            "UPDATE scan_results SET memorized = NOT memorized WHERE run_id = "
            "(SELECT id FROM runs WHERE stage_key = 'train/baseline/s0')"
        )
    with pytest.raises(TransferConflict, match="train/baseline/s0"):
        export_job(src, pg_url, "study")
    assert _by_keys(pg_url) != _by_keys(src)
    res = export_job(src, pg_url, "study", replace=True)
    assert res.changed
    assert _dump(pg_url) == _dump(src)
    assert not export_job(src, pg_url, "study").changed


def test_new_runs_are_added_to_a_job_already_there(tmp_path, pg_url):
    """A job exported part-way and continued locally: the next export adds the new stages only."""
    src = _study_db(tmp_path)
    s_engine = db.make_engine(src)
    full = _dump(src)
    late = "scan/train/student_hard/s0"
    with s_engine.begin() as conn:  # hide the last stage as if it had not run yet
        rid = conn.exec_driver_sql(f"SELECT id FROM runs WHERE stage_key = '{late}'").scalar()
        for t in ("scan_results", "example_kld", "greedy_continuations"):
            conn.exec_driver_sql(f"DELETE FROM {t} WHERE scan_run_id = {rid}")
        conn.exec_driver_sql(f"DELETE FROM run_inputs WHERE run_id = {rid}")
        conn.exec_driver_sql(f"DELETE FROM runs WHERE id = {rid}")
    export_job(src, pg_url, "study")
    partial = _dump(pg_url)
    assert len(partial["runs"]) == len(full["runs"]) - 1
    (tmp_path / "src.duckdb").unlink()  # now it ran: the same build again, all stages
    src = _study_db(tmp_path)
    assert _dump(src) == full
    res = export_job(src, pg_url, "study")
    assert res.inserted["runs"] == 1 and res.unchanged_runs == len(full["runs"]) - 1
    assert _dump(pg_url) == full


def test_errors_name_the_problem(tmp_path, pg_url):
    src = _study_db(tmp_path)
    with pytest.raises(TransferError, match="no job named 'nope'"):
        export_job(src, pg_url, "nope")
    with pytest.raises(TransferError, match="same database"):
        export_job(src, src, "study")
