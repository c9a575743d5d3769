"""approximate_memorization_rates (migration 0011) against pandas on fresh random rows, on DuckDB and
PostgreSQL: per run with a done approximate stage, its long matches' counts and means over the members
of D; a stage without long matches gives a row of zeros, a failed one none."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import text

from kdplatform.store import db
from kdplatform.testing.rows import arrow, at

N_MEMBERS, N_HELDOUT = 80, 30
RUNS = {1: ("teacher", "done", 40), 2: ("student", "done", 0), 3: ("baseline", "failed", 20)}
"""run: (role, status of its approximate stage (run 200 + id), long matches stored)"""


def _frames(rng) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    n = N_MEMBERS + N_HELDOUT
    ids = np.arange(n, dtype=np.int64) * 5 + 1
    member = np.arange(n) < N_MEMBERS
    examples = pd.DataFrame(
        {"dataset_id": 1, "example_id": ids, "split": np.where(member, "train", "heldout"), "n_tokens": 8}
    ).assign(text="t", prefix_text="p", suffix_text="s", zlib_entropy=30, zlib_bits_per_token=1.0)
    scans = pd.concat(
        pd.DataFrame({"run_id": r, "example_id": ids, "dataset_id": 1, "scan_run_id": 100 + r}).assign(
            memorized=False, match_len=1, suffix_logprob=-1.0, suffix_entropy=1.0, ppl=2.0
        )
        for r in RUNS
    )
    approx = []
    for r, (_, _, k) in RUNS.items():
        match = np.round(rng.uniform(0.5, 1.0, k), 1)
        match[: k // 4] = 1.0
        approx.append(
            pd.DataFrame(
                {
                    "run_id": r,
                    "example_id": rng.choice(ids[member], k, replace=False),
                    "dataset_id": 1,
                    "scan_run_id": 200 + r,
                    "match_len": rng.integers(4, 8, k),
                    "token_match": match,
                    "edit_distance": np.round(rng.uniform(0, 0.3, k), 2) * (match < 1),
                }
            )
        )
    return examples, scans, pd.concat(approx)


@pytest.fixture
def study(db_url):
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    examples, scans, approx = _frames(np.random.default_rng())
    job = dict(id=1, name="j", spec="{}", spec_hash="h", workdir="/w", created_at=at(0))
    dataset = dict(id=1, name="d", digest="x", source="builtin", tokenizer="bpe", vocab_size=9, seq_len=16)
    dataset |= dict(prefix_len=8, num_train=N_MEMBERS, num_val=0, path="/p", created_at=at(0))
    run = dict(job_id=1, config="{}", config_hash="h")
    runs = []
    for i, (role, status, _) in RUNS.items():
        runs.append(run | dict(id=i, stage_key=f"train/{i}", kind="train", role=role, status="done"))
        runs.append(run | dict(id=100 + i, stage_key=f"scan/{i}", kind="scan", role=role, status="done"))
        a = dict(id=200 + i, stage_key=f"approximate/{i}", kind="approximate", role=role, dataset_id=1)
        runs.append(run | a | dict(status=status))
    inputs = [dict(id=i, run_id=200 + i, kind="model", input_run_id=i) for i in RUNS]
    with engine.begin() as conn:
        for table, rows in {"jobs": [job], "datasets": [dataset], "runs": runs, "run_inputs": inputs}.items():
            db.bulk_insert(conn, table, arrow(table, rows))
        for table, frame in (
            ("examples", examples),
            ("scan_results", scans),
            ("approximate_memorization", approx),
        ):
            db.bulk_insert(conn, table, pa.Table.from_pandas(frame, preserve_index=False))
    yield engine, approx
    engine.dispose()


def test_approximate_memorization_rates_match_pandas(study):
    engine, approx = study
    with engine.connect() as conn:
        got = pd.read_sql(text("SELECT * FROM approximate_memorization_rates"), conn).set_index("run_id")
    assert sorted(got.index) == [1, 2]  # run 3's stage failed
    for r in (1, 2):
        g, row = approx[approx.run_id == r], got.loc[r]
        assert (row.role, row.members, row.long_matches) == (RUNS[r][0], N_MEMBERS, len(g))
        assert row.exact == (g.token_match >= 1).sum()
        assert row.near_90 == (g.token_match >= 0.9).sum()
        assert row.edit_10 == (g.edit_distance <= 0.1).sum()
        assert row.near_90_pct == pytest.approx(100 * (g.token_match >= 0.9).sum() / N_MEMBERS)
        assert row.edit_10_pct == pytest.approx(100 * (g.edit_distance <= 0.1).sum() / N_MEMBERS)
        if len(g):
            assert row.token_match_mean == pytest.approx(g.token_match.mean(), abs=1e-12)
            assert row.edit_distance_mean == pytest.approx(g.edit_distance.mean(), abs=1e-12)
        else:
            assert pd.isna(row.token_match_mean) and pd.isna(row.edit_distance_mean)
