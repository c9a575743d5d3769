"""Throwaway servers for tests: a PostgreSQL cluster and an MLflow tracking server on free localhost ports.

tests/conftest.py imports the fixtures (`from pg_server import *`); pytest puts tests/ on sys.path.

- `pg_server` (session): an external server when KDP_TEST_POSTGRES_URL is set (a URL whose user may
  CREATE DATABASE), else a cluster made with initdb in a temp dir and started with pg_ctl (as the
  `postgres` or `nobody` user when the tests run as root, since postgres refuses to run as root). Tests
  that need it are skipped with the reason when no PostgreSQL binaries are found (apt-get install
  postgresql, or set KDP_PG_BINDIR) or psycopg is missing (pip install 'psycopg[binary]').
- `pg_url` (function): a fresh, empty database on that server, dropped afterwards.
- `db_url` (function, parametrised duckdb | postgresql): the same test body against both backends.
- `mlflow_server` (session): `mlflow server` with a SQLite backend and a local artifact folder.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["pg_server", "pg_url", "db_url", "mlflow_server", "PgServer", "free_port", "postgres_bindir"]

PG_SKIP = "PostgreSQL unavailable"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bindir() -> Path | None:
    """Where initdb/pg_ctl live: $KDP_PG_BINDIR, PATH, or Debian's /usr/lib/postgresql/<v>/bin."""
    candidates = [os.environ.get("KDP_PG_BINDIR")]
    on_path = shutil.which("pg_ctl")
    candidates.append(str(Path(on_path).parent) if on_path else None)
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates += ["/usr/local/pgsql/bin"]
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    return None


def _version_key(path: str) -> float:
    try:
        return float(Path(path).parent.name)
    except ValueError:
        return 0.0


@dataclass
class PgServer:
    """A running PostgreSQL server that tests may create databases on."""

    host: str
    port: int
    user: str
    password: str | None = None
    admin_db: str = "postgres"

    def url(self, database: str | None = None) -> str:
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{database or self.admin_db}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=self.admin_db,
            autocommit=True,
        ) as conn:
            conn.execute(sql)

    def create_database(self, name: str | None = None) -> str:
        name = name or f"kdp_test_{uuid.uuid4().hex[:12]}"
        self.admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run_as(user: pwd.struct_passwd | None):
    """subprocess kwargs that drop root privileges to `user` (None: stay who we are)."""
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _service_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    return None


def start_local_postgres() -> tuple[PgServer, callable]:
    """initdb + pg_ctl start in a fresh temp dir; returns the server and a stop function."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip(
            f"{PG_SKIP}: no initdb/pg_ctl found (apt-get install postgresql, set KDP_PG_BINDIR, or point "
            "KDP_TEST_POSTGRES_URL at a server); the PostgreSQL variants of the store tests are skipped"
        )
    user = _service_user()
    if os.geteuid() == 0 and user is None:
        pytest.skip(f"{PG_SKIP}: running as root and no 'postgres' or 'nobody' user to run the server as")
    root = Path(tempfile.mkdtemp(prefix="kdp-pg-"))
    data, sock, log = root / "data", root / "sock", root / "server.log"
    sock.mkdir()
    if user is not None:
        for p in (root, sock):
            os.chown(p, user.pw_uid, user.pw_gid)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C", "LANG": "C"}
    run = _run_as(user)
    res = subprocess.run(
        [bindir / "initdb", "-D", data, "-U", "kdp", "--auth=trust", "-E", "UTF8", "--no-sync"],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        **run,
    )
    if res.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"initdb failed ({bindir}): {res.stderr or res.stdout}")
    opts = (
        "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        f"-c max_connections=60 -k {sock}"
    )
    last = ""
    for _ in range(5):  # another process may take the port between free_port() and the bind
        port = free_port()
        res = subprocess.run(
            [bindir / "pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o", f"{opts} -p {port}", "start"],
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            **run,
        )
        if res.returncode == 0:
            break
        last = (log.read_text() if log.exists() else "") + res.stderr
    else:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed: {last[-2000:]}")

    def stop() -> None:
        if data.exists():
            subprocess.run(
                [bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
                capture_output=True,
                env=env,
                cwd=root,
                **run,
            )
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)  # also when the session dies before fixture teardown
    return PgServer("127.0.0.1", port, "kdp"), stop


@pytest.fixture(scope="session")
def pg_server():
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip(f"{PG_SKIP}: psycopg is not installed (pip install 'psycopg[binary]', extra 'postgres')")
    external = os.environ.get("KDP_TEST_POSTGRES_URL")
    if external:
        from sqlalchemy.engine import make_url

        u = make_url(external)
        yield PgServer(
            u.host or "127.0.0.1", u.port or 5432, u.username, u.password, u.database or "postgres"
        )
        return
    server, stop = start_local_postgres()
    try:
        yield server
    finally:
        stop()


@pytest.fixture
def pg_url(pg_server):
    name = pg_server.create_database()
    try:
        yield pg_server.url(name)
    finally:
        pg_server.drop_database(name)


@pytest.fixture(params=["duckdb", "postgresql"])
def db_url(request, tmp_path):
    """A fresh empty database of each backend; the PostgreSQL case skips alone when it is unavailable."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'kdp.duckdb'}"
    return request.getfixturevalue("pg_url")


def _wait_http(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"mlflow server not healthy after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def start_mlflow_server(root: Path, backend_uri: str | None = None) -> tuple[str, subprocess.Popen]:
    """`mlflow server` (one worker) on a free port; returns its URL and process."""
    root.mkdir(parents=True, exist_ok=True)
    backend_uri = backend_uri or f"sqlite:///{root / 'mlflow.db'}"
    log = root / "mlflow-server.log"
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    cmd = [
        str(mlflow) if mlflow.exists() else "mlflow",
        "server",
        "--backend-store-uri",
        backend_uri,
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = os.environ.copy()
    env.pop("MLFLOW_TRACKING_URI", None)
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/health", proc, 120, log)
    except BaseException:
        stop_process_group(proc)
        raise
    return url, proc


def stop_process_group(proc: subprocess.Popen, timeout: float = 5) -> None:
    """Stop a process started with start_new_session=True and the workers it forked."""
    import signal

    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """URL of a real MLflow tracking server (SQLite backend, local artifacts) for this test session."""
    url, proc = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield url
    finally:
        stop_process_group(proc)
