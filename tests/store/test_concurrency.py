"""Two jobs writing one PostgreSQL database at the same moment, with the race forced rather than hoped for:
the first job holds its data transaction open until the second is seen waiting on it."""

from __future__ import annotations

import threading
import time

import psycopg
from sqlalchemy import text

from kdplatform.pipeline import JobRunner
from kdplatform.spec import load_spec
from kdplatform.store import db


def _waiting_backends(server, dbname: str) -> int:
    with psycopg.connect(host=server.host, port=server.port, user=server.user, dbname=dbname) as c:
        return c.execute("SELECT COUNT(*) FROM pg_locks WHERE NOT granted").fetchone()[0]


def test_two_jobs_making_the_same_dataset_at_once(pg_server, mlflow_server, tmp_path, repo_root, monkeypatch):
    dbname = pg_server.create_database()
    url = pg_server.url(dbname)
    spec = load_spec(repo_root / "jobs" / "micro.yaml")
    runners = {}
    for name in ("a", "b"):
        r = JobRunner(
            spec.model_copy(update={"name": f"race-{name}"}),
            tmp_path / name,
            database_url=url,
            tracking_uri=mlflow_server,
            echo=lambda _: None,
        )
        r.plan.stages = [r.plan.get("data")]  # the stage that creates the shared dataset row
        runners[name] = r
    a_inside, b_waited = threading.Event(), threading.Event()
    real = db.bulk_insert

    def held_open(conn, table, rows):
        n = real(conn, table, rows)
        if table == "examples" and threading.current_thread().name == "a" and not a_inside.is_set():
            a_inside.set()  # A has inserted the dataset and its examples, uncommitted
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not b_waited.is_set():
                if _waiting_backends(pg_server, dbname):
                    b_waited.set()  # B's insert of the same digest is blocked on A's transaction
                time.sleep(0.05)
        return n

    monkeypatch.setattr(db, "bulk_insert", held_open)
    errors: dict[str, BaseException] = {}

    def go(name: str) -> None:
        try:
            if name == "b":
                assert a_inside.wait(120), "job a never reached its examples insert"
            runners[name].run()
        except BaseException as e:  # noqa: BLE001  (reported below)
            errors[name] = e

    threads = [threading.Thread(target=go, args=(n,), name=n) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert b_waited.is_set(), "job b never waited on job a: the race was not exercised"
    engine = db.make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM datasets")).scalar() == 1
        n = conn.execute(text("SELECT COUNT(*) FROM examples")).scalar()
        assert n == spec.data.num_examples + spec.data.val_examples + spec.data.num_heldout
        used = conn.execute(text("SELECT DISTINCT dataset_id FROM runs WHERE stage_key = 'data'")).all()
        assert len(used) == 1
        assert conn.execute(text("SELECT COUNT(*) FROM runs WHERE status = 'done'")).scalar() == 2
    engine.dispose()
    pg_server.drop_database(dbname)
