"""Bulk ingest of per-example rows: 1M scan_results rows into DuckDB and into PostgreSQL, side by side.

    .venv/bin/python bench/ingest.py [--rows 1000000]

DuckDB scans the Arrow table in place; PostgreSQL gets binary COPY (psycopg 3, the rows encoded from Arrow
by pgpq after a cast to the table's column types). Both through kdplatform.store.db.bulk_insert in one
transaction, as a scan stage does. PostgreSQL is a throwaway local server (tests/pg_server.py) or
$KDP_TEST_POSTGRES_URL; skipped with the reason when neither exists. PostgreSQL's line is the load as the
pipeline does it: the batch's foreign keys checked once, set-based, then COPY without the per-row trigger
checks (kdplatform.store.ingest). On the throwaway server three more lines load the same rows with the
per-row foreign-key triggers (what a role that may not skip them gets), into scan_results without its
three foreign keys (the floor: DuckDB's schema has none), and as CSV (the fallback for column types
without a safe binary form, and the path before pgpq), batch-checked like the first line.
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
from kdplatform.testing import build_study, store_design  # noqa: E402


def rows(n: int, run_id: int, scan_run_id: int, dataset_id: int) -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table(
        {
            "run_id": pa.array(np.full(n, run_id), pa.int32()),
            "example_id": pa.array(np.arange(n), pa.int64()),
            "dataset_id": pa.array(np.full(n, dataset_id), pa.int32()),
            "scan_run_id": pa.array(np.full(n, scan_run_id), pa.int32()),
            "memorized": pa.array(rng.random(n) < 0.01),
            "match_len": pa.array(rng.integers(0, 50, n), pa.int32()),
            "suffix_logprob": pa.array(rng.normal(-50, 10, n)),
            "suffix_entropy": pa.array(rng.random(n) * 3),
            "ppl": pa.array(1 + rng.random(n) * 20),
        }
    )


def ingest(url: str, n: int, drop_fks: bool = False, per_row: bool = False, csv: bool = False) -> float:
    """Seconds to bulk-insert `n` scan_results rows of a run of an (example-less) synthetic study."""
    engine = db.make_engine(url)
    db.upgrade(engine)
    study = build_study(engine, store_design(n=0))
    teacher = study.runs.iloc[0]
    table = rows(n, int(teacher.id), int(teacher.scan_run_id), int(teacher.dataset_id))
    with engine.begin() as conn:
        if drop_fks:  # what a schema without per-row foreign-key checks on scan_results would give
            for (name,) in conn.execute(
                text(
                    "SELECT conname FROM pg_constraint WHERE conrelid = 'scan_results'::regclass "
                    "AND contype = 'f'"
                )
            ).all():
                conn.execute(text(f'ALTER TABLE scan_results DROP CONSTRAINT "{name}"'))
    from kdplatform.store import ingest as store_ingest

    checked, binary = store_ingest.batch_checked, store_ingest.binary_rows
    if per_row:  # the ordinary COPY, every row checked by the foreign-key triggers
        store_ingest.batch_checked = lambda *_: False
    if csv:  # the CSV fallback
        store_ingest.binary_rows = lambda *_: None
    try:
        start = time.perf_counter()
        with engine.begin() as conn:
            db.bulk_insert(conn, "scan_results", table)
        seconds = time.perf_counter() - start
    finally:
        store_ingest.batch_checked, store_ingest.binary_rows = checked, binary
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM scan_results")).scalar() == n
    engine.dispose()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    n = args.rows
    print(
        f"{n:,} scan_results rows ({rows(n, 1, 2, 1).nbytes / 2**20:.0f} MiB as Arrow), one transaction each"
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["duckdb"] = ingest(f"duckdb:///{tmp}/b.duckdb", n)
        stop = None
        url = os.environ.get("KDP_TEST_POSTGRES_URL")
        try:
            if url is None:
                import pg_server

                server, stop = pg_server.start_local_postgres()
                url = server.url(server.create_database())
            results["postgresql"] = ingest(url, n)
            if stop is not None:  # a fresh database on the throwaway server
                results["pg, per-row FKs"] = ingest(server.url(server.create_database()), n, per_row=True)
                results["pg, no FKs"] = ingest(server.url(server.create_database()), n, drop_fks=True)
                results["pg, CSV"] = ingest(server.url(server.create_database()), n, csv=True)
        except Exception as e:
            print(f"postgresql: skipped ({type(e).__name__}: {e})")
        finally:
            if stop is not None:
                stop()
    for name, s in results.items():
        print(f"  {name:16s} {s:7.2f} s  {args.rows / s:12,.0f} rows/s")
    if "postgresql" in results:
        print(f"  duckdb / postgresql throughput = {results['postgresql'] / results['duckdb']:.1f}x")


if __name__ == "__main__":
    main()
