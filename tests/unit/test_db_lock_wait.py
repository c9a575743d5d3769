"""A job's writes wait out a reader's lock on the DuckDB file instead of failing (the dashboard reads
while jobs write)."""

from __future__ import annotations

import subprocess
import sys
import time

from sqlalchemy import text

from kdplatform.store.db import make_engine


def test_writer_waits_for_a_reader_in_another_process(tmp_path):
    path = tmp_path / "w.duckdb"
    engine = make_engine(f"duckdb:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (i INTEGER)"))
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}, read_only=True); "
            "print('held', flush=True); time.sleep(2); c.close()",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout.readline().strip() == "held"
    start = time.monotonic()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
    waited = time.monotonic() - start
    reader.wait(timeout=30)
    assert waited > 0.5, "the write happened while the reader held the file, so nothing was tested"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM t")).scalar() == 1
