"""Every DuckDB connection path waits out another process's lock on the file instead of failing (the
dashboard reads while jobs write, and a job writes while someone looks), through the one helper
kdplatform.store.locking.wait_out_lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy import text

from kdplatform import sql
from kdplatform.store import db, locking
from kdplatform.store.db import make_engine
from kdplatform.store.errors import DatabaseUnavailable

WRITER = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("INSERT INTO t VALUES (2)")
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
    """
)


def hold_write_lock(path, seconds: float) -> subprocess.Popen:
    p = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert p.stdout.readline().strip() == "held"
    return p


@pytest.fixture
def path(tmp_path):
    path = tmp_path / "w.duckdb"
    engine = make_engine(f"duckdb:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (i INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    return path


def test_writer_waits_for_a_reader_in_another_process(path):
    engine = make_engine(f"duckdb:///{path}")
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
        assert conn.execute(text("SELECT COUNT(*) FROM t")).scalar() == 2


READERS = {
    "report reader (make_engine read-only)": lambda url: make_engine(url, read_only=True).connect().close(),
    "dashboard page (reader_engine)": lambda url: db.reader_engine(url).connect().close(),
    "kdplatform sql (run_readonly)": lambda url: sql.run_readonly(url, "SELECT COUNT(*) FROM t"),
    "dashboard console (sql.console)": lambda url: sql.console(url, "SELECT COUNT(*) FROM t"),
}


@pytest.mark.parametrize("reader", READERS)
def test_readers_wait_for_a_writer_in_another_process_through_the_one_helper(path, reader, monkeypatch):
    calls = []
    real = db.wait_out_lock

    def spy(fn, wait_s, what=None):
        calls.append(what)
        return real(fn, wait_s, what)

    monkeypatch.setattr(db, "wait_out_lock", spy)
    writer = hold_write_lock(path, 1.5)
    start = time.monotonic()
    try:
        READERS[reader](f"duckdb:///{path}")
        waited = time.monotonic() - start
    finally:
        writer.wait(timeout=30)
    assert waited > 0.5, "the read happened while the writer held the file, so nothing was tested"
    assert calls, "the connection did not go through kdplatform.store.locking.wait_out_lock"


def test_wait_out_lock_retries_only_transient_failures():
    tries = []

    def flaky():
        tries.append(1)
        if len(tries) < 3:
            raise OSError('IO Error: Could not set lock on file "x": Conflicting lock is held')
        return "ok"

    assert locking.wait_out_lock(flaky, 5) == "ok" and len(tries) == 3
    with pytest.raises(ValueError):
        locking.wait_out_lock(lambda: (_ for _ in ()).throw(ValueError("not a lock")), 5)


def test_wait_out_lock_past_the_wait():
    def locked():
        raise locking.Transient("still locked")

    with pytest.raises(DatabaseUnavailable, match="the file is busy: a job is writing"):
        locking.wait_out_lock(locked, 0.2, "the file")
    with pytest.raises(locking.Transient):  # a writer's caller sees the error itself
        locking.wait_out_lock(locked, 0.2)
