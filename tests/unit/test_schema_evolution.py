"""Upgrading a database made at the first revision keeps its rows and gains the newer views."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from sqlalchemy import text

from kdplatform.store import db


def test_upgrade_from_first_revision_keeps_rows(tmp_path):
    engine = db.make_engine(f"duckdb:///{tmp_path / 'old.duckdb'}")
    db.upgrade(engine, "0001")
    rng = np.random.default_rng()
    n = 50
    memorized = rng.random(n) < 0.3
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (id, name, spec, spec_hash, workdir, created_at) "
                "VALUES (1, 'old', '{}', 'h', '/w', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO datasets (id, name, digest, source, tokenizer, vocab_size, seq_len, "
                "prefix_len, num_train, num_val, path, created_at) VALUES (1, 'd', 'x', 'builtin', "
                "'bpe', 10, 4, 2, 50, 0, '/p', CURRENT_TIMESTAMP)"
            )
        )
        for rid, role in ((1, "teacher"), (2, "baseline")):
            conn.execute(
                text(
                    "INSERT INTO runs (id, job_id, stage_key, kind, role, status, config, config_hash) "
                    "VALUES (:i, 1, :k, 'train', :r, 'done', '{}', 'h')"
                ),
                {"i": rid, "k": role, "r": role},
            )
        rows = pa.table(
            {
                "run_id": pa.array(np.repeat([1, 2], n), pa.int32()),
                "example_id": pa.array(np.tile(np.arange(n), 2), pa.int64()),
                "dataset_id": pa.array(np.ones(2 * n), pa.int32()),
                "scan_run_id": pa.array(np.repeat([1, 2], n), pa.int32()),
                "memorized": pa.array(np.concatenate([memorized, memorized & (rng.random(n) < 0.5)])),
                "match_len": pa.array(rng.integers(0, 3, 2 * n), pa.int32()),
                "suffix_logprob": pa.array(rng.normal(size=2 * n)),
                "suffix_entropy": pa.array(rng.random(2 * n)),
                "ppl": pa.array(1 + rng.random(2 * n)),
            }
        )
        db.bulk_insert(conn, "scan_results", rows)
        before = conn.execute(text("SELECT * FROM scan_results ORDER BY run_id, example_id")).all()
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision() != "0001"
    with engine.connect() as conn:
        cols = ", ".join(rows.column_names)  # 0001's columns; later ones (0004's min_margin) are NULL
        after = conn.execute(text(f"SELECT {cols} FROM scan_results ORDER BY run_id, example_id")).all()
        assert after == before
        assert conn.execute(text("SELECT COUNT(min_margin) FROM scan_results")).scalar_one() == 0
        overlap = conn.execute(
            text("SELECT n_a, n_b, n_both FROM run_overlap WHERE run_a = 1 AND run_b = 2")
        ).one()
    teacher, baseline = (
        set(np.flatnonzero(rows["memorized"].to_numpy()[:n])),
        set(np.flatnonzero(rows["memorized"].to_numpy()[n:])),
    )
    assert overlap == (len(teacher), len(baseline), len(teacher & baseline))
