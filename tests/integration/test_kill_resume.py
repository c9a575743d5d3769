"""SIGKILL at chosen points (mid-training, mid-scan, mid-ingest), rerun: the database equals an
uninterrupted run's, with no duplicated or half-written rows."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kdplatform.pipeline import JobRunner
from kdplatform.spec import load_spec
from kdplatform.store.db import make_engine
from kdplatform.store.snapshot import differences, snapshot


def run_job(job, workdir, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KDP_KILL_AT"}
    if kill_at:
        env["KDP_KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "kdplatform.cli", "run", str(job), "--workdir", str(workdir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory, repo_root):
    job = repo_root / "jobs" / "micro.yaml"
    workdir = tmp_path_factory.mktemp("ref")
    runner = JobRunner(load_spec(job), workdir, echo=lambda _: None)
    runner.run()
    return job, snapshot(runner.engine, "micro")


@pytest.mark.parametrize(
    "point",
    [
        "epoch:train/baseline/s0:2",  # mid-training, after a state checkpoint
        "shard:scan/train/teacher:0",  # mid-scan: one shard written, others not
        "ingest:scan/train/student/s0/forward_kl/T2",  # rows inserted, transaction not committed
    ],
)
def test_killed_then_rerun_equals_uninterrupted(reference, tmp_path, point):
    job, ref = reference
    killed = run_job(job, tmp_path, kill_at=point)
    assert killed.returncode == -9, killed.stderr[-2000:]
    engine = make_engine(f"duckdb:///{tmp_path / 'kdp.duckdb'}")
    with engine.connect() as conn:
        statuses = dict(conn.exec_driver_sql("SELECT stage_key, status FROM runs").all())
    assert statuses.get(point.split(":")[1]) == "running", "the killed stage is left running, not done"
    rerun = run_job(job, tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "[resume]" in rerun.stdout
    assert differences(ref, snapshot(engine, "micro")) == []
