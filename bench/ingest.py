"""Bulk ingest of per-example rows: 1M scan_results rows into DuckDB and into PostgreSQL, side by side.

    .venv/bin/python bench/ingest.py [--rows 1000000]

DuckDB scans the Arrow table in place; PostgreSQL gets COPY (psycopg 3). Both through
kdplatform.store.db.bulk_insert in one transaction, as a scan stage does. PostgreSQL is a throwaway
local server (tests/pg_server.py) or $KDP_TEST_POSTGRES_URL; skipped with the reason when neither exists.
On the throwaway server a third line loads the same rows into scan_results without its three foreign
keys, to show what the per-row foreign-key triggers cost (DuckDB's schema has none).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
from sqlalchemy import text  # noqa: E402

from kdplatform.store import db  # noqa: E402

PARENTS = [
    "INSERT INTO jobs (id, name, spec, spec_hash, workdir, created_at) "
    "VALUES (1, 'b', '{}', 'h', '/', NOW())",
    "INSERT INTO datasets (id, name, digest, source, tokenizer, vocab_size, seq_len, prefix_len, num_train, "
    "num_val, path, created_at) VALUES (1, 'd', 'x', 'b', 't', 1, 2, 1, 1, 0, '/', NOW())",
    "INSERT INTO runs (id, job_id, stage_key, kind, status, config, config_hash) VALUES "
    "(1, 1, 'train', 'train', 'done', '{}', 'h'), (2, 1, 'scan', 'scan', 'done', '{}', 'h')",
]


def rows(n: int) -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table(
        {
            "run_id": pa.array(np.ones(n), pa.int32()),
            "example_id": pa.array(np.arange(n), pa.int64()),
            "dataset_id": pa.array(np.ones(n), pa.int32()),
            "scan_run_id": pa.array(np.full(n, 2), pa.int32()),
            "memorized": pa.array(rng.random(n) < 0.01),
            "match_len": pa.array(rng.integers(0, 50, n), pa.int32()),
            "suffix_logprob": pa.array(rng.normal(-50, 10, n)),
            "suffix_entropy": pa.array(rng.random(n) * 3),
            "ppl": pa.array(1 + rng.random(n) * 20),
        }
    )


def ingest(url: str, table: pa.Table, drop_fks: bool = False) -> float:
    engine = db.make_engine(url)
    db.upgrade(engine)
    with engine.begin() as conn:
        for sql in PARENTS:
            conn.execute(text(sql))
        if drop_fks:  # what a schema without per-row foreign-key checks on scan_results would give
            for (name,) in conn.execute(
                text(
                    "SELECT conname FROM pg_constraint WHERE conrelid = 'scan_results'::regclass "
                    "AND contype = 'f'"
                )
            ).all():
                conn.execute(text(f'ALTER TABLE scan_results DROP CONSTRAINT "{name}"'))
    start = time.perf_counter()
    with engine.begin() as conn:
        db.bulk_insert(conn, "scan_results", table)
    seconds = time.perf_counter() - start
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM scan_results")).scalar() == table.num_rows
    engine.dispose()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    table = rows(args.rows)
    print(f"{args.rows:,} scan_results rows ({table.nbytes / 2**20:.0f} MiB as Arrow), one transaction each")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["duckdb"] = ingest(f"duckdb:///{tmp}/b.duckdb", table)
        stop = None
        url = os.environ.get("KDP_TEST_POSTGRES_URL")
        try:
            if url is None:
                import pg_server

                server, stop = pg_server.start_local_postgres()
                url = server.url(server.create_database())
            results["postgresql"] = ingest(url, table)
            if stop is not None:  # a fresh database on the throwaway server
                url = server.url(server.create_database())
                results["pg, no FKs"] = ingest(url, table, drop_fks=True)
        except Exception as e:
            print(f"postgresql: skipped ({type(e).__name__}: {e})")
        finally:
            if stop is not None:
                stop()
    for name, s in results.items():
        print(f"  {name:12s} {s:7.2f} s  {args.rows / s:12,.0f} rows/s")
    if "postgresql" in results:
        print(f"  duckdb / postgresql throughput = {results['postgresql'] / results['duckdb']:.1f}x")


if __name__ == "__main__":
    main()
