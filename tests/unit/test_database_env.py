"""Issue 18: a deployment's database URL reaches the CLI in $KDP_DATABASE_URL, never on a command line:
without --db every command reads it (after a spec's own database_url, as MLFLOW_TRACKING_URI is read)."""

from __future__ import annotations

from pathlib import Path

from kdplatform.cli import main
from kdplatform.pipeline import JobRunner
from kdplatform.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]


def test_db_commands_read_the_environment(tmp_path, monkeypatch, capsys):
    url = f"duckdb:///{tmp_path / 'env.duckdb'}"
    monkeypatch.setenv("KDP_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)  # no jobs/quickstart.yaml here, as in the container
    assert main(["db", "upgrade"]) == 0
    assert (tmp_path / "env.duckdb").exists()
    assert main(["db", "current"]) == 0
    assert "env.duckdb" in capsys.readouterr().out


def test_run_uses_the_environment_after_the_spec_and_before_the_workdir(tmp_path, monkeypatch):
    spec = load_spec(ROOT / "jobs" / "smoke.yaml")
    default = JobRunner(spec, tmp_path / "w").database_url
    assert default == f"duckdb:///{(tmp_path / 'w').resolve() / 'kdp.duckdb'}"
    monkeypatch.setenv("KDP_DATABASE_URL", "postgresql://kdp:pw@db/kdp")
    assert JobRunner(spec, tmp_path / "w").database_url == "postgresql://kdp:pw@db/kdp"
    assert JobRunner(spec, tmp_path / "w", database_url="duckdb:///x.duckdb").database_url == (
        "duckdb:///x.duckdb"
    )
    named = spec.model_copy(update={"database_url": "duckdb:///spec.duckdb"})
    assert JobRunner(named, tmp_path / "w").database_url == "duckdb:///spec.duckdb"
