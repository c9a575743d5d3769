"""canary_memorization against pandas on fresh random rows, on DuckDB and PostgreSQL: per (run, copies)
the canaries, those memorized, the rate and the mean exposure, for runs that are done."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import text

from kdplatform.store import db
from kdplatform.testing.rows import arrow, at

COUNTS, PER_COUNT, R = (1, 2, 4, 8, 16), 3, 99
RUNS = {1: ("teacher", "done"), 2: ("baseline", "done"), 3: ("student", "done"), 4: ("student", "stale")}


def _rows(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = len(COUNTS) * PER_COUNT
    ids = 1000 + np.arange(n, dtype=np.int64) * 3
    copies = np.repeat(COUNTS, PER_COUNT)
    canaries = pd.DataFrame({"dataset_id": 1, "example_id": ids, "copies": copies, "secret": "0123"})
    results = []
    for run in RUNS:
        rank = rng.integers(1, R + 2, n)
        results.append(
            pd.DataFrame(
                {
                    "run_id": run,
                    "example_id": ids,
                    "dataset_id": 1,
                    "scan_run_id": 100 + run,
                    "memorized": rng.random(n) < copies / 20,
                    "match_len": rng.integers(0, 8, n),
                    "suffix_logprob": -rng.exponential(5.0, n),
                    "rank": rank,
                    "alternatives": R,
                    "exposure": np.log2(R + 1) - np.log2(rank),
                }
            )
        )
    return canaries, pd.concat(results)


def _write(engine, canaries: pd.DataFrame, results: pd.DataFrame) -> None:
    job = dict(id=1, name="j", spec="{}", spec_hash="h", workdir="/w", created_at=at(0))
    dataset = dict(id=1, name="d", digest="x", source="builtin", tokenizer="bpe", vocab_size=9, seq_len=16)
    dataset |= dict(prefix_len=8, num_train=10, num_val=0, path="/p", created_at=at(0))
    run = dict(job_id=1, config="{}", config_hash="h")
    runs = [
        run | dict(id=i, stage_key=f"train/{role}/{i}", kind="train", role=role, seed=0, status=status)
        for i, (role, status) in RUNS.items()
    ] + [
        run | dict(id=100 + i, stage_key=f"canary/{i}", kind="canary", role=role, seed=0, status="done")
        for i, (role, _) in RUNS.items()
    ]
    with engine.begin() as conn:
        for table, rows in (("jobs", [job]), ("datasets", [dataset]), ("runs", runs)):
            db.bulk_insert(conn, table, arrow(table, rows))
        for table, frame in (("canaries", canaries), ("canary_results", results)):
            db.bulk_insert(conn, table, pa.Table.from_pandas(frame, preserve_index=False))


@pytest.fixture
def study(db_url):
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    frames = _rows(int(np.random.default_rng().integers(1 << 30)))
    _write(engine, *frames)
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
