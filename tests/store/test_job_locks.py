"""Issue 18: the job lock covers (database, job): a second holder of one job on one database is refused,
naming the holder, on DuckDB (a lock row, stale when its process is gone) and PostgreSQL (an advisory lock
held by a connection, released when its process dies)."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import time

import pytest
from lock_holder import Holding
from sqlalchemy import text

from kdplatform.store import db
from kdplatform.store.job_locks import Holder, JobHeld, hold_job, process_start


def migrated(url: str):
    engine = db.make_engine(url)
    db.upgrade(engine)
    return engine


def rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT job, host, pid FROM job_locks")).all()]


def test_a_second_holder_is_refused_naming_the_first_then_a_kill_frees_it(db_url):
    engine = migrated(db_url)
    other = Holding(db_url, "smoke")
    try:
        with pytest.raises(JobHeld) as e, hold_job(engine, "smoke"):
            pass
        msg = str(e.value)
        assert "'smoke' is already running against this database" in msg
        assert f"pid {other.proc.pid} on {socket.gethostname()}" in msg
        with hold_job(engine, "another-job"):  # the lock is per job
            pass
    finally:
        other.kill()  # SIGKILL: its row stays behind (DuckDB) or its connection dies (PostgreSQL)
    deadline = time.monotonic() + 20
    while True:
        try:
            with hold_job(engine, "smoke"):
                assert rows(engine) == [("smoke", socket.gethostname(), os.getpid())]
            break
        except JobHeld:  # PostgreSQL notices the closed connection within moments
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert rows(engine) == [], "the holder's row is removed when it lets go"
    engine.dispose()


def test_a_row_whose_pid_was_reused_is_stale(tmp_path):
    """A live process with the holder's pid that started after the lock row does not hold it."""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        host = socket.gethostname()
        an_hour_ago = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=1)
        assert Holder(host, sleeper.pid, an_hour_ago).stale
        assert not Holder(host, sleeper.pid, dt.datetime.now(dt.UTC).replace(tzinfo=None)).stale
        assert not Holder("another-host", 1, an_hour_ago).stale, "another host's holder cannot be checked"
        assert process_start(sleeper.pid) is not None
    finally:
        sleeper.kill()
        sleeper.wait()
    assert Holder(host, sleeper.pid, an_hour_ago).stale


def test_another_hosts_row_is_refused_with_the_way_out(tmp_path):
    engine = migrated(f"duckdb:///{tmp_path / 'k.duckdb'}")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO job_locks VALUES ('smoke', 'node-7', 4242, :t)"),
            {"t": dt.datetime(2026, 1, 2, 3, 4, 5)},
        )
    with pytest.raises(JobHeld) as e, hold_job(engine, "smoke"):
        pass
    assert "pid 4242 on node-7 since 2026-01-02 03:04:05 UTC" in str(e.value)
    assert "DELETE FROM job_locks WHERE job = 'smoke'" in str(e.value)
