"""A process that holds a job's database lock (store.job_locks) until killed: the stand-in for a job
running from another workdir, shared by tests/store/test_job_locks.py and tests/pipeline/test_job_owner.py
(a plain module: pytest puts tests/ on sys.path, as for pg_server)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOLD = """
import sys, time
from kdplatform.store import db
from kdplatform.store.job_locks import hold_job
engine = db.make_engine(sys.argv[1])
db.upgrade(engine)
with hold_job(engine, sys.argv[2]):
    print("held", flush=True)
    time.sleep(600)
"""


class Holding:
    """A process holding `job` on the database at `url` until killed."""

    def __init__(self, url: str, job: str):
        env = os.environ | {"PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, url, job], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
        )
        assert self.proc.stdout.readline().strip() == "held"

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
