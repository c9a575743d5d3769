"""Databases made at 0001, 0002 or 0004 with data in them end, at head, with the views of a fresh
database: the same definitions and the same rows; 0004 (views that leave out runs not done) and 0005
(views over members of D only) change no result of 0002 when every run is done and nothing is held out,
and head goes back down to 0002's views."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, inspect, text
from synthetic_study import build_study

from kdplatform.store import db, views


@pytest.fixture(params=["duckdb", "postgresql"])
def new_engine(request, tmp_path) -> Iterator[Callable[[], Engine]]:
    """A factory of fresh, empty databases on one backend."""
    made: list[tuple[Engine, str | None]] = []
    server = request.getfixturevalue("pg_server") if request.param == "postgresql" else None

    def make() -> Engine:
        if server is None:
            name, url = None, f"duckdb:///{tmp_path / f'db{len(made)}.duckdb'}"
        else:
            name = server.create_database()
            url = server.url(name)
        engine = db.make_engine(url)
        made.append((engine, name))
        return engine

    yield make
    for engine, name in made:
        engine.dispose()
        if name is not None:
            server.drop_database(name)


def definitions(engine: Engine) -> dict[str, str]:
    """Each view's definition as the database normalizes it."""
    sql = (
        "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal"
        if db.is_duckdb(engine)
        else "SELECT viewname, definition FROM pg_views WHERE schemaname = current_schema()"
    )
    with engine.connect() as conn:
        return dict(conn.exec_driver_sql(sql).all())


def _value(x: object) -> object:
    return round(x, 9) if isinstance(x, float) and not math.isnan(x) else x


def rows(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of every view the database has, sorted (floats rounded: an aggregate may sum in another
    order)."""
    present = definitions(engine)
    with engine.connect() as conn:
        return {
            v: sorted((tuple(map(_value, r)) for r in conn.execute(text(f"SELECT * FROM {v}"))), key=repr)
            for v in views.names()
            if v in present
        }


SCORE_VIEWS = {
    "membership_inference",
    "extraction_rates",
    "prefix_memorization_rates",
    "approximate_memorization_rates",
    "canary_memorization",
}
"""0005's and 0011's views: over the held-out split and the scores, which this study (tables of 0001) has
not; they are checked against sklearn and pandas in test_membership_views.py and test_approximate_view.py
(0008's canary view, over canaries this study has not either, in test_canary_views.py)."""
EVAL_VIEWS = {"eval_scores"}
"""0007's view, over lm-evaluation-harness scores, which this study has not (tests/evaluation checks it)."""
CROSS_SCAN_VIEWS = {"cross_scan_examples", "cross_scan_overlap", "zlib_correlation"}
"""0009's views over cross_scan_results: this study has no cross-scan (tests/crossjob checks them)."""


def fill(engine: Engine) -> None:
    """Two jobs written the way the pipeline writes (tables of 0001 only, and examples.text_hash where the
    database has it, 0009), with some of the teacher's examples memorized by the students too, so that
    inherited_examples has rows."""
    build_study(engine, "a", seed=0)
    build_study(engine, "b", seed=1)
    with engine.begin() as conn:
        if "text_hash" in {c["name"] for c in inspect(conn).get_columns("examples")}:
            conn.execute(text("UPDATE examples SET text_hash = md5(text)"))
        conn.execute(
            text(
                "UPDATE scan_results SET memorized = TRUE WHERE example_id % 5 = 0 AND run_id IN "
                "(SELECT id FROM runs WHERE kind = 'train' AND role LIKE 'student%') AND example_id IN "
                "(SELECT s.example_id FROM scan_results s JOIN runs r ON r.id = s.run_id "
                "WHERE r.kind = 'train' AND r.role = 'teacher' AND s.memorized)"
            )
        )


def classify(engine: Engine) -> None:
    """Rows in the classifier tables (made by 0002), for classifier_summary."""
    with engine.begin() as conn:
        run = conn.execute(text("SELECT MIN(id) FROM runs")).scalar_one()
        for trial in range(3):
            conn.execute(
                text(
                    "INSERT INTO classifier_trials VALUES (:r, :t, 80, 20, 5, 15, :a, 0.5, 0.25, 0.3, :auc)"
                ),
                {"r": run, "t": trial, "a": 0.7 + trial / 10, "auc": None if trial == 1 else 0.8},
            )
            for feature, value in (("zlib_entropy", -0.5 + trial), ("teacher_ppl", 1.25 * trial)):
                conn.execute(
                    text("INSERT INTO classifier_coefficients VALUES (:r, :t, :f, :v)"),
                    {"r": run, "t": trial, "f": feature, "v": value},
                )


def at_head(new_engine) -> Engine:
    engine = new_engine()
    db.upgrade(engine)
    fill(engine)
    classify(engine)
    return engine


@pytest.mark.parametrize("start", ["0001", "0002", "0004"])
def test_upgrade_with_data_matches_fresh_head(new_engine, start):
    old = new_engine()
    db.upgrade(old, start)
    fill(old)
    if start != "0001":
        classify(old)
        before = (definitions(old), rows(old))
    db.upgrade(old)
    if start != "0001":  # 0004 leaves out runs that are not done, 0005 held-out rows: none here
        assert {v: r for v, r in rows(old).items() if v in before[1]} == before[1]
    if start == "0001":
        classify(old)
    assert db.current_revision(old) == db.head_revision()
    fresh = at_head(new_engine)
    assert set(definitions(old)) == set(definitions(fresh)) == set(views.names())
    assert definitions(old) == definitions(fresh)
    assert rows(old) == rows(fresh)
    assert sum(map(len, rows(old).values())) > 1000  # every view has rows to compare
    assert all(r for v, r in rows(old).items() if v not in SCORE_VIEWS | EVAL_VIEWS | CROSS_SCAN_VIEWS)
    if start == "0004":  # 0005 keeps every scan row, its scores NULL until a scan writes them
        with old.connect() as conn:
            n, scored = conn.execute(text("SELECT COUNT(*), COUNT(loss) FROM scan_results")).one()
            assert n > 0 and scored == 0
            for table in ("extraction_scores", "prefix_memorization"):
                assert conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one() == 0


def test_downgrade_to_0002_restores_its_views(new_engine):
    engine = new_engine()
    db.upgrade(engine, "0002")
    fill(engine)
    classify(engine)
    at_0002 = (definitions(engine), rows(engine))
    db.upgrade(engine)
    db.downgrade(engine, "0002")
    assert db.current_revision(engine) == "0002"
    assert (definitions(engine), rows(engine)) == at_0002
    db.upgrade(engine)
    # 0004's views leave out runs not done, 0005's held-out rows: every run here is done, none held out
    assert {v: r for v, r in rows(engine).items() if v in at_0002[1]} == at_0002[1]
