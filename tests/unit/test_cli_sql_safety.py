"""`kdplatform sql`, `report`, `export` and `dashboard` (issue 18): limits validated (exit 2 naming the
flag), outputs never the database, the job spec or an existing file without --force, written under a
temporary name; database passwords never printed nor put on a command line."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from kdplatform import cli
from kdplatform.store import db

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-pw"
PG = f"postgresql+psycopg://kdp:{SECRET}@127.0.0.1:1/kdp"


@pytest.fixture(scope="module")
def dbfile(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "kdp.duckdb"
    engine = db.make_engine(f"duckdb:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t AS SELECT range AS i FROM range(20)")
    engine.dispose()
    return path


def sql(dbfile: Path, *args: str) -> int:
    return cli.main(["sql", "SELECT i FROM t ORDER BY i", "--db", f"duckdb:///{dbfile}", *args])


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "-inf", "x"])
def test_timeout_must_be_positive_and_finite(dbfile, capsys, bad):
    with pytest.raises(SystemExit) as e:
        sql(dbfile, "--timeout", bad)
    assert e.value.code == 2 and "--timeout" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--max-rows", "--max-bytes"])
def test_size_limits_must_be_positive(dbfile, capsys, flag):
    with pytest.raises(SystemExit) as e:
        sql(dbfile, flag, "0")
    assert e.value.code == 2 and flag in capsys.readouterr().err


def test_output_is_never_the_database(dbfile, capsys):
    before = dbfile.read_bytes()
    for extra in ([], ["--force"]):
        assert sql(dbfile, "--format", "parquet", "--output", str(dbfile), *extra) == 2
        assert "is the database" in capsys.readouterr().err
    assert dbfile.read_bytes() == before


def test_output_refuses_an_existing_file_unless_forced(dbfile, tmp_path, capsys):
    out = tmp_path / "r.parquet"
    out.write_text("keep me")
    assert sql(dbfile, "--format", "parquet", "--output", str(out)) == 2
    assert "--force" in capsys.readouterr().err and out.read_text() == "keep me"
    assert sql(dbfile, "--format", "parquet", "--output", str(out), "--force") == 0
    assert pd.read_parquet(out).i.tolist() == list(range(20))
    assert [p.name for p in tmp_path.iterdir()] == ["r.parquet"]  # no temporary left behind


def test_output_csv_to_a_new_file(dbfile, tmp_path):
    out = tmp_path / "r.csv"
    assert sql(dbfile, "--format", "csv", "--output", str(out)) == 0
    assert pd.read_csv(out).i.tolist() == list(range(20))


def test_sql_on_a_directory_exits_2(tmp_path, capsys):
    assert cli.main(["sql", "SELECT 1", "--db", f"duckdb:///{tmp_path}"]) == 2
    assert "directory" in capsys.readouterr().err


def test_sql_does_not_print_the_password(capsys):
    assert cli.main(["sql", "SELECT 1", "--db", PG, "--timeout", "5"]) == 2
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err and "***" in out.err


def test_report_out_is_never_the_job_spec(tmp_path, capsys):
    job = tmp_path / "job.yaml"
    shutil.copy(ROOT / "jobs" / "smoke.yaml", job)
    before = job.read_text()
    for extra in ([], ["--force"]):
        args = ["report", str(job), "--workdir", str(tmp_path / "w"), "--out", str(job), *extra]
        assert cli.main(args) == 2
        assert "job spec" in capsys.readouterr().err
    assert job.read_text() == before


def test_report_out_refuses_an_existing_file(tmp_path, capsys):
    job, other = tmp_path / "job.yaml", tmp_path / "notes.md"
    shutil.copy(ROOT / "jobs" / "smoke.yaml", job)
    other.write_text("mine")
    assert cli.main(["report", str(job), "--workdir", str(tmp_path / "w"), "--out", str(other)]) == 2
    assert "--force" in capsys.readouterr().err and other.read_text() == "mine"


def test_export_prints_no_password(dbfile, monkeypatch, capsys):
    from kdplatform.store import transfer

    class Result:
        inserted = {"jobs": 1}
        changed = True

    monkeypatch.setattr(transfer, "export_job", lambda *a, **k: Result())
    job = ROOT / "jobs" / "smoke.yaml"
    assert cli.main(["export", str(job), "--to", PG, "--db", f"duckdb:///{dbfile}"]) == 0
    out = capsys.readouterr().out
    assert SECRET not in out and "kdp:***@" in out


def test_dashboard_gets_the_url_in_its_environment(monkeypatch, capsys):
    import subprocess

    seen = {}
    monkeypatch.setattr(subprocess, "call", lambda cmd, env=None: seen.update(cmd=cmd, env=env) or 0)
    assert cli.main(["dashboard", "--db", PG]) == 0
    assert not [a for a in seen["cmd"] if SECRET in a]
    assert seen["env"]["KDP_DATABASE_URL"] == PG
    assert SECRET not in capsys.readouterr().out


def test_dashboard_uses_the_environment_url_without_db(monkeypatch, capsys):
    import subprocess

    seen = {}
    monkeypatch.setenv("KDP_DATABASE_URL", PG)
    monkeypatch.setattr(subprocess, "call", lambda cmd, env=None: seen.update(cmd=cmd, env=env) or 0)
    assert cli.main(["dashboard"]) == 0
    assert seen["env"]["KDP_DATABASE_URL"] == PG and SECRET not in " ".join(seen["cmd"])
    assert SECRET not in capsys.readouterr().out


def test_nan_is_refused_by_the_library_too():
    from kdplatform.sql import QueryRefused
    from kdplatform.sql.limits import positive_seconds

    with pytest.raises(QueryRefused):
        positive_seconds(math.nan)
