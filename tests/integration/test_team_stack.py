"""The team set-up end to end: jobs writing to one PostgreSQL database and one real `mlflow server`
(both started on localhost by the fixtures; skipped, saying why, when PostgreSQL is not installed)."""

from __future__ import annotations

import os
import subprocess
import sys

import mlflow
import yaml
from sqlalchemy import text

from kdplatform.pipeline import JobRunner
from kdplatform.spec import load_spec
from kdplatform.store.db import make_engine
from kdplatform.store.snapshot import snapshot


def test_micro_job_on_postgres_and_mlflow_server(pg_url, mlflow_server, tmp_path, repo_root):
    runner = JobRunner(
        load_spec(repo_root / "jobs" / "micro.yaml"),
        tmp_path,
        database_url=pg_url,
        tracking_uri=mlflow_server,
        echo=lambda _: None,
    )
    runner.run()
    snap = snapshot(runner.engine, "micro")
    assert all(r[3] == "done" for r in snap["runs"]) and len(snap["runs"]) == len(runner.plan.stages)
    scanned = runner.spec.data.num_examples + runner.spec.data.num_heldout  # D and the held-out split
    assert len(snap["scan_results"]) == scanned * sum(s.kind == "scan" for s in runner.plan.stages)
    assert all(v == [(0,)] for k, v in snap.items() if k.startswith("duplicates:"))
    client = mlflow.MlflowClient(mlflow_server)
    children = client.search_runs(
        [runner.tracker.experiment_id], f"tags.mlflow.parentRunId = '{runner.job_mlflow_id}'"
    )
    assert len(children) == len(runner.plan.stages)


def test_two_jobs_at_once_on_one_postgres_database(pg_url, tmp_path, repo_root):
    doc = yaml.safe_load((repo_root / "jobs" / "micro.yaml").read_text())
    procs = []
    for name in ("micro-a", "micro-b"):
        job = tmp_path / f"{name}.yaml"
        job.write_text(yaml.safe_dump(doc | {"name": name}))
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kdplatform.cli",
                    "run",
                    str(job),
                    "--workdir",
                    str(tmp_path / name),
                    "--db",
                    pg_url,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / name}-mlflow.db"},
            )
        )
    for p in procs:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0, out[-3000:]
    engine = make_engine(pg_url)
    a, b = snapshot(engine, "micro-a"), snapshot(engine, "micro-b")
    assert a["scan_results"] == b["scan_results"], "the same job twice gives the same outcomes"
    assert len(a["scan_results"]) > 0 and all(v == [(0,)] for k, v in a.items() if k.startswith("dup"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM jobs")).scalar() == 2
