"""The Canaries page: on a job with canaries it shows the per-run rows SQL gives and a summary per model
and count; on a job without, it says how to add them."""

from __future__ import annotations

import pytest
from canary_rows import canary_rows, write_canary_job

from kdplatform.sql import run_readonly
from kdplatform.store import db


@pytest.fixture(scope="module")
def canary_url(tmp_path_factory) -> str:
    url = f"duckdb:///{tmp_path_factory.mktemp('canaries') / 'kdp.duckdb'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    write_canary_job(engine, *canary_rows(5))
    engine.dispose()
    return url


def _frame(at, *cols):
    return next(d.value for d in at.dataframe if all(c in d.value.columns for c in cols))


def test_canaries_page_shows_the_view(open_page, canary_url):
    at = open_page(canary_url, "canaries", 1)
    want = run_readonly(
        canary_url, "SELECT run_id, copies, n_memorized, mean_exposure FROM canary_memorization"
    )
    per_run = _frame(at, "run_id", "copies", "n_memorized", "mean_exposure")
    got = per_run.sort_values(["run_id", "copies"]).reset_index(drop=True)
    want = want.sort_values(["run_id", "copies"]).reset_index(drop=True)
    assert (
        got[["run_id", "copies", "n_memorized"]]
        .astype(int)
        .equals(want[["run_id", "copies", "n_memorized"]].astype(int))
    )
    assert got.mean_exposure.tolist() == pytest.approx(want.mean_exposure.tolist())
    summary = _frame(at, "role", "copies", "rate", "exposure_mean")
    assert list(dict.fromkeys(summary.role)) == ["teacher", "baseline", "student"]


def test_canaries_page_without_canaries(open_page, synthetic_url):
    job = int(run_readonly(synthetic_url, "SELECT MIN(id) AS j FROM jobs")["j"][0])
    at = open_page(synthetic_url, "canaries", job)
    assert any("has no canaries" in str(e.value) for e in at.info)
