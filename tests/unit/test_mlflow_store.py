"""Issue 18: a kill while MLflow creates the workdir's SQLite store must not break every later run.

A process is SIGKILLed in the middle of MLflow's migrations (right before it records the Nth migration
step, so that step's columns exist but its version is not stamped: what a random kill left, "duplicate
column name: creator"); the next Tracker must open the store and log a run.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from kdplatform.mlflow_store import ensure_store, holds_runs, incomplete

ROOT = Path(__file__).resolve().parents[2]

KILL_AT_STEP = """
import os, signal, sys
from alembic.runtime import migration

calls, orig = [0], migration.HeadMaintainer.update_to_step

def update_to_step(self, step):
    calls[0] += 1
    if calls[0] == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
    return orig(self, step)

migration.HeadMaintainer.update_to_step = update_to_step
{open}
"""
THROUGH_TRACKER = "from kdplatform.tracking import Tracker\nTracker(sys.argv[1], 'kdp-x')"
THROUGH_MLFLOW = "import mlflow\nmlflow.MlflowClient(sys.argv[1]).search_experiments()"


def killed_while_creating(uri: str, tmp_path: Path, opener: str, step: int = 30) -> None:
    script = tmp_path / "kill_at.py"
    script.write_text(KILL_AT_STEP.format(open=opener))
    out = subprocess.run(
        [sys.executable, str(script), uri, str(step)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]


def log_a_run(uri: str) -> None:
    from kdplatform.tracking import Tracker

    t = Tracker(uri, "kdp-x")
    run_id = t.job_run("x", None, {"spec_hash": "h"})
    assert t.client.get_run(run_id).info.status == "FINISHED"


def test_kill_during_creation_then_rerun(tmp_path):
    store = tmp_path / "work" / "mlflow.db"
    uri = f"sqlite:///{store}"
    killed_while_creating(uri, tmp_path, THROUGH_TRACKER)
    assert not store.exists(), "a half-migrated store was left under the final name"
    log_a_run(uri)
    assert not incomplete(store)
    assert not list(store.parent.glob("mlflow.db.tmp-*")), "the dead process's temporary store is left"


def test_half_migrated_store_without_runs_is_rebuilt(tmp_path):
    """A store an older version (or MLflow alone) left half-migrated, holding no runs, is built again."""
    store = tmp_path / "mlflow.db"
    uri = f"sqlite:///{store}"
    killed_while_creating(uri, tmp_path, THROUGH_MLFLOW)
    assert incomplete(store) and not holds_runs(store)
    log_a_run(uri)
    assert not incomplete(store)


def test_store_holding_runs_is_never_removed(tmp_path):
    """An incomplete store with runs in it is left to MLflow (which names the upgrade), never rebuilt."""
    store = tmp_path / "mlflow.db"
    with sqlite3.connect(store) as con:
        con.execute("create table runs (run_uuid varchar(32) primary key)")
        con.execute("insert into runs values ('abc')")
    assert incomplete(store) and holds_runs(store)
    ensure_store(f"sqlite:///{store}")
    with sqlite3.connect(store) as con:
        assert con.execute("select run_uuid from runs").fetchall() == [("abc",)]


def test_other_uris_are_left_to_mlflow(tmp_path):
    for uri in ("http://localhost:5000", "sqlite:///:memory:", str(tmp_path / "mlruns")):
        ensure_store(uri)
    assert list(tmp_path.iterdir()) == []
