"""A small job's canary rows written straight to a migrated database (no pipeline): one dataset, one
natural example scanned per run (so the run counts as scanned), canaries at COUNTS × PER_COUNT and random
canary_results per run. The view, report and dashboard tests of canaries read it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from kdplatform.store import db
from kdplatform.testing.rows import arrow, at

COUNTS, PER_COUNT, R = (1, 2, 4, 8, 16), 3, 99
RUNS = {1: ("teacher", "done"), 2: ("baseline", "done"), 3: ("student", "done"), 4: ("student", "stale")}


def canary_rows(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The `canaries` rows and every run's `canary_results`, memorization growing with the copies."""
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


def write_canary_job(engine, canaries: pd.DataFrame, results: pd.DataFrame) -> None:
    job = dict(id=1, name="j", spec="{}", spec_hash="h", workdir="/w", created_at=at(0))
    dataset = dict(id=1, name="d", digest="x", source="builtin", tokenizer="bpe", vocab_size=9, seq_len=16)
    dataset |= dict(prefix_len=8, num_train=1, num_val=0, path="/p", created_at=at(0))
    run = dict(job_id=1, config="{}", config_hash="h")
    runs = [
        run | dict(id=i, stage_key=f"train/{role}/{i}", kind="train", role=role, seed=0, status=status)
        for i, (role, status) in RUNS.items()
    ] + [
        run | dict(id=100 + i, stage_key=f"canary/{i}", kind="canary", role=role, seed=0, status="done")
        for i, (role, _) in RUNS.items()
    ]
    example = dict(dataset_id=1, example_id=0, split="train", n_tokens=16, text="t", prefix_text="p")
    example |= dict(suffix_text="s", zlib_entropy=10, zlib_bits_per_token=1.0)
    scans = [
        dict(run_id=i, example_id=0, dataset_id=1, scan_run_id=100 + i, memorized=False, match_len=0)
        | dict(suffix_logprob=-1.0, suffix_entropy=1.0, ppl=2.0)
        for i in RUNS
    ]
    with engine.begin() as conn:
        for table, rows in (
            ("jobs", [job]),
            ("datasets", [dataset]),
            ("runs", runs),
            ("examples", [example]),
            ("scan_results", scans),
        ):
            db.bulk_insert(conn, table, arrow(table, rows))
        for table, frame in (("canaries", canaries), ("canary_results", results)):
            db.bulk_insert(conn, table, pa.Table.from_pandas(frame, preserve_index=False))
