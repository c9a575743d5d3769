"""canary_memorization against pandas on fresh random rows, on DuckDB and PostgreSQL: per (run, copies)
the canaries, those memorized, the rate and the mean exposure, for runs that are done."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from canary_rows import PER_COUNT, RUNS, R, canary_rows, write_canary_job
from sqlalchemy import text

from kdplatform.store import db


@pytest.fixture
def study(db_url):
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    frames = canary_rows(int(np.random.default_rng().integers(1 << 30)))
    write_canary_job(engine, *frames)
    yield engine, frames
    engine.dispose()


def test_canary_memorization_matches_pandas(study):
    engine, (canaries, results) = study
    with engine.connect() as conn:
        got = pd.read_sql(text("SELECT * FROM canary_memorization"), conn)
    x = results.merge(canaries[["example_id", "copies"]], on="example_id")
    x = x[x.run_id.map(lambda r: RUNS[r][1] == "done")]
    want = x.groupby(["run_id", "copies"]).agg(
        n_canaries=("example_id", "size"),
        n_memorized=("memorized", "sum"),
        mean_exposure=("exposure", "mean"),
    )
    got = got.set_index(["run_id", "copies"]).sort_index()
    assert list(got.index) == list(want.index)
    assert (got.n_canaries == PER_COUNT).all()
    np.testing.assert_array_equal(got.n_memorized, want.n_memorized)
    np.testing.assert_allclose(got.rate, want.n_memorized / want.n_canaries, rtol=1e-12)
    np.testing.assert_allclose(got.mean_exposure, want.mean_exposure, rtol=1e-12)
    np.testing.assert_allclose(got.max_exposure, math.log2(R + 1), rtol=1e-12)
    assert dict(zip(got.index.get_level_values(0), got.role, strict=True)) == {
        1: "teacher",
        2: "baseline",
        3: "student",
    }
    assert (got.job_id == 1).all() and (got.dataset_id == 1).all()


def test_canary_library_and_report_section(study):
    from kdplatform.analysis.canaries import canary_summary
    from kdplatform.analysis.report.canaries import canary_section

    engine, (canaries, results) = study
    with engine.connect() as conn:
        summary = canary_summary(conn, 1)
        lines = canary_section(conn, 1)
    assert list(summary.role.unique()) == ["teacher", "baseline", "student"]
    assert (summary.runs == 1).all() and len(summary) == 3 * 5
    text_ = "\n".join(lines)
    assert "## Canaries by duplication count" in text_ and "| teacher |" in text_
    assert "| model | config | seeds | ×1 | ×2 | ×4 | ×8 | ×16 |" in text_
    teacher = results[results.run_id == 1].merge(canaries, on="example_id")
    mean16 = teacher[teacher.copies == 16].exposure.mean()
    assert f"{mean16:.2f}" in next(
        line for line in lines[lines.index("Mean exposure (bits):") :] if "teacher" in line
    )


def test_canary_inheritance_against_sets(study):
    from kdplatform.analysis.canaries import canary_inheritance

    engine, (canaries, results) = study
    with engine.connect() as conn:
        got = canary_inheritance(conn, 1)
    assert set(got.student_run_id) == {3}  # the stale student has no rows
    copies = canaries.set_index("example_id").copies
    sets = {r: set(g.example_id[g.memorized]) for r, g in results.groupby("run_id")}
    t, s, b = sets[1], sets[3], sets[2]
    for row in got.itertuples():
        ids = set(copies.index[copies == row.copies])
        assert (
            row.n_teacher == len(t & ids) and row.n_student == len(s & ids) and row.n_baseline == len(b & ids)
        )
        assert row.n_inherited == len((t & s) - b & ids)
        assert row.n_teacher_not_baseline == len((t - b) & ids)
    assert sorted(got.copies) == sorted(set(copies))
