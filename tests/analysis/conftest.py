"""A generated study in a fresh database: three jobs, several roles, seeds and student configurations,
random memorized sets driven by a latent per-example difficulty so that they overlap.

The `study` fixture runs on DuckDB and on PostgreSQL (a fresh database on the throwaway server of
tests/pg_server.py, or on the server KDP_TEST_POSTGRES_URL names; skipped when neither is available).
Tests compare the views against `Study.mem`, the memorized sets kept in Python from the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from kdplatform.store import db
from kdplatform.store.schema import StageKind, Status
from kdplatform.testing import Study, analysis_design, arrow, build_study

N = 240
__all__ = ["CLASSIFIER_RUN", "N", "Study", "generate"]


def generate(engine) -> Study:
    """kdplatform.testing's analysis preset: jobs alpha (every role; T=2 with seeds 0-2 and T=1 with
    seeds 0-1), beta (shares alpha's dataset 10) and gamma (dataset 11, another tokenizer; no KLDs)."""
    return build_study(engine, analysis_design())


@pytest.fixture(scope="session", params=["duckdb", "postgresql"])
def study(request, tmp_path_factory) -> Iterator[Study]:
    with ExitStack() as stack:
        if request.param == "duckdb":
            url = f"duckdb:///{tmp_path_factory.mktemp('analysis') / 'study.duckdb'}"
        else:  # a fresh database on the shared throwaway server (tests/pg_server.py)
            server = request.getfixturevalue("pg_server")
            url = server.url(name := server.create_database())
            stack.callback(server.drop_database, name)
        engine = db.make_engine(url)
        stack.callback(engine.dispose)
        db.upgrade(engine)
        yield generate(engine)


CLASSIFIER_RUN = 999


@pytest.fixture(scope="session")
def classified(study: Study):
    """The classifier run on job alpha's T=2 students (few positives, as in the paper), stored as run
    CLASSIFIER_RUN."""
    from kdplatform.analysis.classifier import ClassifierConfig, run_classifier, to_arrow
    from kdplatform.analysis.features import features as example_features
    from kdplatform.analysis.groups import student_group

    group = student_group(study.engine, study.jobs["alpha"], temperature=2.0)
    features = example_features(study.engine, study.jobs["alpha"], group)
    result = run_classifier(features, ClassifierConfig(seed=3, threshold=0.6))
    run = {
        "id": CLASSIFIER_RUN,
        "job_id": study.jobs["alpha"],
        "stage_key": "classify",
        "kind": StageKind.CLASSIFY,
        "status": Status.DONE,
        "config": "{}",
        "config_hash": "c",
    }
    with study.engine.begin() as conn:
        db.bulk_insert(conn, "runs", arrow("runs", [run]))
        for table, rows in to_arrow(result, CLASSIFIER_RUN, study.datasets["pythia"]).items():
            db.bulk_insert(conn, table, rows)
    return features, result, CLASSIFIER_RUN
