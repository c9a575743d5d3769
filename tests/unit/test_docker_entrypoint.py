"""docker/entrypoint.sh, run outside Docker with a stand-in CLI that records its calls."""

from __future__ import annotations

import pytest
from entrypoint_stub import ENTRY, stand_in_cli
from entrypoint_stub import entry as run


@pytest.fixture
def fake(tmp_path):
    return stand_in_cli(tmp_path)


def test_worker_runs_every_job_after_the_database_answers(fake):
    env, jobs, log = fake
    for name in ("b", "a"):
        (jobs / f"{name}.yaml").write_text("name: x\n")
    out = run(env, "worker")
    assert out.returncode == 0, out.stderr
    calls = log.read_text().splitlines()
    w = env["KDP_WORK_DIR"]
    assert calls == [
        "db current",
        "db upgrade",
        f"run {jobs}/a.yaml --workdir {w}/a",
        f"run {jobs}/b.yaml --workdir {w}/b",
    ]


def test_no_command_line_carries_the_database_url(tmp_path):
    """Issue 18: `ps` shows command lines to every user, so the URL (password and all) reaches the CLI in
    its environment only, for every role (the CLI reads KDP_DATABASE_URL when no --db is given)."""
    seen = tmp_path / "seen.txt"
    env, jobs, log = stand_in_cli(tmp_path, f'echo "$KDP_DATABASE_URL" >> {seen}\n')
    env["KDP_DATABASE_URL"] = "postgresql://kdp:s3cret@db/kdp"
    (jobs / "a.yaml").write_text("name: a\n")
    for role in ("worker", "health", "dashboard"):
        assert run(env, role).returncode == 0, role
    calls = log.read_text().splitlines()
    assert len(calls) == 6 and not [c for c in calls if "s3cret" in c or "--db" in c], calls
    assert seen.read_text().splitlines() == ["postgresql://kdp:s3cret@db/kdp"] * 6


def test_worker_without_jobs_exits_2(fake):
    env, _, _ = fake
    out = run(env, "worker")
    assert out.returncode == 2 and "no job files" in out.stderr


def test_unreachable_database_fails_after_retries(fake, tmp_path):
    env, _, _ = fake
    failing = tmp_path / "failing"
    failing.write_text("#!/usr/bin/env bash\nexit 1\n")
    failing.chmod(0o755)
    out = run(env | {"KDP_CLI": str(failing), "KDP_DB_TRIES": "3"}, "worker")
    assert out.returncode == 1 and "did not answer" in out.stderr and out.stderr.count("waiting") == 3


def test_other_arguments_go_to_the_cli(fake):
    env, _, log = fake
    assert run(env, "sql", "select 1").returncode == 0
    assert log.read_text().splitlines() == ["sql select 1"]
    assert "usage" in run(env, "help").stdout


def test_compose_file_wires_the_services():
    import yaml

    compose = yaml.safe_load((ENTRY.parent / "compose.yaml").read_text())
    services = compose["services"]
    assert {"db", "mlflow", "dashboard", "worker"} <= set(services)
    for name in ("db", "mlflow"):
        assert "healthcheck" in services[name], name
    assert services["worker"]["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert all(p.startswith("127.0.0.1:") for s in services.values() for p in s.get("ports", [])), (
        "published ports stay on localhost unless a lab opens them on purpose"
    )
    assert services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql")


def test_compose_puts_no_password_on_a_command_line():
    """A password substituted into an entrypoint or command is visible to every user through `ps`."""
    import yaml

    raw = yaml.safe_load((ENTRY.parent / "compose.yaml").read_text())
    for name, svc in raw["services"].items():
        for key in ("entrypoint", "command"):
            line = " ".join(svc.get(key) or []) if isinstance(svc.get(key), list) else str(svc.get(key) or "")
            assert "PASSWORD" not in line and "postgresql" not in line, f"{name}.{key}: {line}"
