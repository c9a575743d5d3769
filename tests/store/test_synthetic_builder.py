"""kdplatform.testing.build_study: the rows it writes are the rows it reports, chunked or not, the same
on every build, and a dataset already stored under its digest is reused."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pandas as pd
from sqlalchemy import text
from synthetic_study import dump

from kdplatform.store import db
from kdplatform.store.schema import Role
from kdplatform.testing import Arm, analysis_design, build_study, stage_key, store_design


def _engine(tmp_path, name: str):
    engine = db.make_engine(f"duckdb:///{tmp_path / name}")
    db.upgrade(engine)
    return engine


def _read(engine, sql: str) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(text(sql), conn)


def test_reported_rows_are_the_stored_rows_in_any_chunking(tmp_path):
    design = dataclasses.replace(analysis_design(), n_examples=100, chunk_rows=30)
    study = build_study(_engine(tmp_path, "a.duckdb"), design)
    stored = _read(study.engine, "SELECT * FROM scan_results ORDER BY run_id, example_id")
    kept = study.scans.sort_values(["run_id", "example_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(stored, kept, check_dtype=False)
    assert len(stored) == 100 * len(study.runs)
    for run, ids in study.mem.items():
        assert ids == set(stored[(stored.run_id == run) & stored.memorized].example_id)
    ex = _read(study.engine, "SELECT dataset_id, COUNT(*) AS n FROM examples GROUP BY dataset_id")
    assert dict(zip(ex.dataset_id, ex.n, strict=True)) == {10: 100, 11: 100}
    assert set(study.runs.dataset_id[study.runs.job == "gamma"]) == {11}


def test_same_design_same_rows(tmp_path):
    a, b = _engine(tmp_path, "a.duckdb"), _engine(tmp_path, "b.duckdb")
    for e in (a, b):
        build_study(e, store_design(n=40))
    assert dump(a) == dump(b)


def test_dataset_of_a_stored_digest_is_reused(tmp_path):
    engine = _engine(tmp_path, "a.duckdb")
    first = build_study(engine, store_design("one", seed=0, n=25))
    second = build_study(engine, store_design("two", seed=0, n=25))
    assert first.datasets == second.datasets
    counts = _read(
        engine, "SELECT (SELECT COUNT(*) FROM datasets) AS d, (SELECT COUNT(*) FROM examples) AS e"
    )
    assert counts.iloc[0].tolist() == [2, 2 * 25]  # the dataset and its hard child, once
    assert len(_read(engine, "SELECT * FROM scan_results")) == 2 * 5 * 25


def test_stage_keys_are_the_pipelines():
    assert stage_key(Arm(Role.TEACHER), 0) == "train/teacher"
    assert stage_key(Arm(Role.BASELINE, (0, 1)), 1) == "train/baseline/s1"
    assert stage_key(Arm(Role.STUDENT, objective="forward_kl", temperature=2.0), 0) == (
        "train/student/s0/forward_kl/T2"
    )
    assert stage_key(Arm(Role.STUDENT_HARD), 3) == "train/student_hard/s3"


def test_builder_loads_no_torch():
    """The store and analysis tests and the dashboard bench build studies without loading torch."""
    code = (
        "import sys, kdplatform.testing; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
