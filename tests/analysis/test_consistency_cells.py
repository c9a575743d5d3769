"""consistency_matrix counts Figure 3 from the memorized rows when every run covers the same dense ids (the
bench study's), and reads the seed_consistency view otherwise (the analysis study's sparse ids): both give
the view's cells."""

from __future__ import annotations

import pandas as pd
import pytest

from kdplatform.analysis import groups, overlap, reading
from kdplatform.testing import Study, bench_design, build_study


def _view_cells(engine, job: int, g: groups.Group) -> dict[tuple[int, int], int]:
    df = reading.read(
        engine,
        "SELECT n_baseline_memorized AS b, n_student_memorized AS s, COUNT(*) AS n FROM seed_consistency "
        f"WHERE job_id = :j AND {groups.group_filter()} GROUP BY n_baseline_memorized, n_student_memorized",
        j=job,
        **groups.group_params(g),
    )
    return {(int(r.b), int(r.s)): int(r.n) for r in df.itertuples()}


def _cells(cells: pd.DataFrame) -> dict[tuple[int, int], int]:
    return {(int(r.n_baseline_memorized), int(r.n_student_memorized)): int(r.n) for r in cells.itertuples()}


@pytest.fixture(scope="module")
def dense(tmp_path_factory) -> Study:
    work = tmp_path_factory.mktemp("dense")
    return build_study(f"duckdb:///{work / 'bench.duckdb'}", bench_design(400, workdir=work, rate_scale=8.0))


def test_dense_ids_are_counted_from_the_memorized_rows(dense):
    assert _check_every_group(dense, dense.engine) > 0


def test_sparse_ids_read_the_view(study):
    assert _check_every_group(study, study.engine) == 0


def _check_every_group(study, engine) -> int:
    """Each student group's matrix against the view's cells; returns how many took the memorized rows."""
    fast = 0
    for job in study.jobs.values():
        runs = groups.scanned_runs(engine, job)
        baseline = [int(r) for r in runs.loc[runs["role"] == "baseline", "run_id"]]
        for role in sorted({r for r in runs["role"] if r.startswith("student")}):
            for g in groups.groups(engine, job, role):
                want = _view_cells(engine, job, g)
                m = overlap.consistency_matrix(engine, job, g)  # either way, the view's cells
                assert {k: v for k, v in m.stack().items() if v} == want
                cells = overlap.consistency_cells(engine, baseline, list(g.run_ids))
                if cells is not None:
                    fast += 1
                    assert _cells(cells) == want
                    assert set(cells["nb"]) == {len(baseline)} and set(cells["ns"]) == {len(g.run_ids)}
    return fast


def test_runs_over_different_examples_read_the_view(study):
    job = study.jobs["alpha"]
    runs = groups.scanned_runs(study.engine, job)
    baseline = [int(r) for r in runs.loc[runs["role"] == "baseline", "run_id"]]
    other = study.jobs["gamma"]  # another dataset: no common span
    gamma = [int(r) for r in groups.scanned_runs(study.engine, other)["run_id"]]
    assert overlap.consistency_cells(study.engine, baseline, gamma[:1]) is None
    assert overlap.consistency_cells(study.engine, [], gamma[:1]) is None
