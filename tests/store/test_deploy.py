"""docker/: the entrypoint's worker loop (outside Docker, with a stand-in CLI), the compose file's wiring
checked against the Dockerfile and against a real `mlflow server` started with compose's own arguments,
and the PostgreSQL locks a team deployment relies on."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
import yaml
from entrypoint_stub import ENTRY, entry, stand_in_cli

DOCKER = ENTRY.parent


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ${VAR:-default} / ${VAR} substitution."""
    env = env or {}

    def sub(m: re.Match) -> str:
        name, default = m.group(1), m.group(3)
        return env.get(name) or (default if default is not None else "")

    return re.sub(r"\$\{(\w+)(:-([^}]*))?\}", sub, value)


def compose() -> dict:
    return yaml.safe_load(interpolate((DOCKER / "compose.yaml").read_text()))


# --------------------------------------------------------------------------------------------- entrypoint
@pytest.fixture
def fake(tmp_path):
    """A stand-in `kdplatform` that logs its arguments; `run` of a job named fail*.yaml fails, and the
    first `run` drops a new job file into the folder (as a user would while the worker is up)."""
    return stand_in_cli(
        tmp_path,
        f'if [ "$1" = run ] && [ ! -e {tmp_path}/dropped ]; then\n'
        f"  touch {tmp_path}/dropped {tmp_path}/jobs/late.yaml\n"
        "fi\n"
        'if [ "$1" = run ] && [[ "$(basename "$2")" == fail* ]]; then exit 3; fi\n',
    )


def runs(log: Path) -> list[str]:
    return [Path(c.split()[1]).name for c in log.read_text().splitlines() if c.startswith("run ")]


def test_a_failing_job_does_not_stop_the_others(fake):
    env, jobs, log = fake
    for name in ("a", "fail-b", "z"):
        (jobs / f"{name}.yaml").write_text("name: x\n")
    out = entry(env, "worker")
    assert out.returncode == 1
    assert runs(log) == ["a.yaml", "fail-b.yaml", "z.yaml"]
    assert "1 job(s) failed" in out.stderr and "fail-b.yaml" in out.stderr


def test_worker_interval_passes_again_and_picks_up_new_jobs(fake):
    env, jobs, log = fake
    (jobs / "a.yaml").write_text("name: a\n")
    out = entry(env | {"KDP_WORKER_INTERVAL": "0", "KDP_WORKER_PASSES": "2"}, "worker")
    assert out.returncode == 0, out.stderr
    assert runs(log) == ["a.yaml", "a.yaml", "late.yaml"]
    calls = log.read_text().splitlines()
    assert calls[:2] == ["db current", "db upgrade"]


def test_worker_named_jobs_only(fake):
    env, jobs, log = fake
    (jobs / "a.yaml").write_text("name: a\n")
    out = entry(env, "worker", "/elsewhere/x.yaml")
    assert out.returncode == 0, out.stderr
    assert [c for c in log.read_text().splitlines() if c.startswith("run")] == [
        f"run /elsewhere/x.yaml --workdir {env['KDP_WORK_DIR']}/x"
    ]


def test_health_needs_the_database_url(fake):
    env, _, log = fake
    assert entry(env, "health").returncode == 0
    assert log.read_text().splitlines() == ["db current"]
    env.pop("KDP_DATABASE_URL")
    out = entry(env, "health")
    assert out.returncode != 0 and "KDP_DATABASE_URL" in out.stderr


# ----------------------------------------------------------------------------------------------- compose
def test_compose_volumes_are_dirs_the_image_creates_for_its_user():
    """A named volume mounted over a path the image lacks is root-owned: the kdp user could not write."""
    dockerfile = (DOCKER / "Dockerfile").read_text()
    made = {p for p in re.search(r"mkdir -p ([^\n&]+)", dockerfile).group(1).split() if p.startswith("/")}
    owned = re.search(r"chown kdp:kdp ([^\n&]+)", dockerfile).group(1).split()
    assert made <= set(owned)
    c = compose()
    named = set(c["volumes"])
    for name, svc in c["services"].items():
        if "kdplatform" not in str(svc.get("image", "")):
            continue
        for v in svc.get("volumes", []):
            src, dst = v.split(":")[:2]
            if src in named:
                assert dst in made, f"{name}: volume {src} at {dst} is not created by the Dockerfile"


def test_compose_services_reach_each_other_by_the_names_they_use():
    c = compose()
    s = c["services"]
    assert {"db", "mlflow", "dashboard", "worker"} <= set(s)
    for name in ("db", "mlflow", "dashboard"):
        assert "healthcheck" in s[name], name
    env = s["worker"]["environment"]
    tracking = env["MLFLOW_TRACKING_URI"]
    host = re.match(r"http://([^/]+)", tracking).group(1)
    args = s["mlflow"]["entrypoint"]
    allowed = args[args.index("--allowed-hosts") + 1].split(",")
    assert host in allowed and host.split(":")[0] in s, "workers must pass MLflow's Host check"
    db_url = env["KDP_DATABASE_URL"]
    assert db_url.startswith("postgresql+psycopg://") and "@db:5432/" in db_url
    assert "--backend-store-uri" not in args, "the backend URI carries the password: environment only"
    assert s["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg://")
    assert s["worker"]["volumes"][0].endswith(":/jobs:ro")
    assert all(p.startswith("127.0.0.1:") for svc in s.values() for p in svc.get("ports", []))
    assert s["worker-gpu"]["profiles"] == ["gpu"]
    assert s["worker-gpu"]["build"]["args"]["VARIANT"] == "cuda"


def test_compose_mlflow_arguments_run_a_server_the_workers_can_use(tmp_path):
    """compose's own `mlflow server` arguments, with the backend in its environment as compose passes it
    (paths swapped for local ones): the server starts, /health answers, and a client calling it by the
    service name is not refused."""
    from pg_server import _wait_http, free_port, stop_process_group

    args = list(compose()["services"]["mlflow"]["entrypoint"])
    port = free_port()
    swap = {
        "--host": "127.0.0.1",
        "--port": str(port),
        "--artifacts-destination": str(tmp_path / "artifacts"),
    }
    for flag, value in swap.items():
        args[args.index(flag) + 1] = value
    args += ["--workers", "1"]
    args[0] = str(Path(sys.executable).with_name("mlflow"))
    log = tmp_path / "server.log"
    with open(log, "wb") as f:
        env = os.environ | {"MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
        proc = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", proc, 120, log)
        assert (tmp_path / "mlflow.db").exists(), "the server took its backend from the environment"
        for host in ("mlflow:5000", "localhost:5000"):
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=1",
                headers={"Host": host},
            )
            with urllib.request.urlopen(req, timeout=10) as r:
                assert r.status == 200, host
    finally:
        stop_process_group(proc)


# ------------------------------------------------------------------------------------------------- locks
def test_session_lock_one_holder_across_connections(pg_url):
    from kdplatform.store import db
    from kdplatform.store.postgres import Locked, session_lock

    engine = db.make_engine(pg_url)
    with session_lock(engine, "job:alpha"):
        with pytest.raises(Locked, match="job:alpha is held by another session"):  # noqa: SIM117
            with session_lock(db.make_engine(pg_url), "job:alpha"):
                pass
        with session_lock(engine, "job:beta"):  # other names are independent
            pass
    with session_lock(engine, "job:alpha"):  # released on exit
        pass


def test_session_lock_is_a_no_op_on_duckdb(tmp_path):
    from kdplatform.store import db
    from kdplatform.store.postgres import session_lock

    engine = db.make_engine(f"duckdb:///{tmp_path / 'x.duckdb'}")
    with session_lock(engine, "job:a"), session_lock(engine, "job:a"):
        pass


def test_advisory_xact_lock_serialises_transactions(pg_url):
    import time

    from kdplatform.store import db
    from kdplatform.store.postgres import advisory_xact_lock

    engine = db.make_engine(pg_url)
    order: list[str] = []

    def second() -> None:
        with engine.begin() as conn:
            advisory_xact_lock(conn, "dataset:x")
            order.append("second")

    with engine.begin() as conn:
        advisory_xact_lock(conn, "dataset:x")
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.5)
        order.append("first")
    t.join(10)
    assert order == ["first", "second"]
