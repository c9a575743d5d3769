"""docker/kdp_reader.sql: the read-only role for team consoles, on a real PostgreSQL (the tests' server):
it reads every table and view, also those created after it, and cannot write, create or leave read-only;
run_readonly works through it; running the file again changes nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text

from kdplatform.sql import run_readonly
from kdplatform.store import db

SQL = Path(__file__).resolve().parents[2] / "docker" / "kdp_reader.sql"


def psql(pg_server, database: str) -> None:
    from pg_server import postgres_bindir

    bindir = postgres_bindir()
    exe = str(bindir / "psql") if bindir and (bindir / "psql").exists() else shutil.which("psql")
    if exe is None:
        pytest.skip("psql not found (Debian's postgresql-client)")
    # The role's password in the environment, as compose's db-reader-init passes it (off the command line).
    env = {
        "PGPASSWORD": pg_server.password or "",
        "PATH": os.environ.get("PATH", ""),
        "KDP_READER_PASSWORD": "rpw",
    }
    subprocess.run(
        [exe, "-X", "-q", "-h", pg_server.host, "-p", str(pg_server.port), "-U", pg_server.user,
         "-d", database, "-v", "ON_ERROR_STOP=1", "-f", str(SQL)],
        check=True, env=env, capture_output=True, text=True,
    )  # fmt: skip


def test_reader_role_reads_and_cannot_write(pg_server, pg_url):
    owner = db.make_engine(pg_url)
    with owner.begin() as conn:
        conn.execute(text("CREATE TABLE before_role AS SELECT 1 AS i"))
    database = pg_url.rsplit("/", 1)[1]
    psql(pg_server, database)
    psql(pg_server, database)  # rerunnable
    with owner.begin() as conn:
        conn.execute(text("CREATE TABLE after_role AS SELECT 2 AS i"))
        conn.execute(text("CREATE VIEW a_view AS SELECT i FROM after_role"))
    owner.dispose()
    reader_url = f"postgresql+psycopg://kdp_reader:rpw@{pg_server.host}:{pg_server.port}/{database}"
    reader = db.make_engine(reader_url)
    try:
        with reader.connect() as conn:
            assert conn.execute(text("SELECT i FROM before_role")).scalar_one() == 1
            assert conn.execute(text("SELECT i FROM a_view")).scalar_one() == 2
            assert conn.execute(text("SHOW transaction_read_only")).scalar_one() == "on"
            conn.rollback()
            writes = (
                "INSERT INTO after_role VALUES (3)",
                "CREATE TABLE x (i int)",
                "CREATE TEMP TABLE y (i int)",
            )
            for stmt in writes:
                with pytest.raises(Exception, match="read-only|permission denied"):
                    conn.execute(text(stmt))
                conn.rollback()
            conn.execute(text("SET TRANSACTION READ WRITE"))
            with pytest.raises(Exception, match="permission denied"):
                conn.execute(text("INSERT INTO after_role VALUES (3)"))
            conn.rollback()
    finally:
        reader.dispose()
    assert run_readonly(reader_url, "SELECT i FROM after_role").i.tolist() == [2]
