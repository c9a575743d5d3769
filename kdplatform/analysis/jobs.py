"""A job as the database records it: which job a name or id means, its spec, its stages (runs) with their
status and timings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from kdplatform.analysis.reading import Db, read


def schema_ready(db: Db) -> bool:
    """True when the database has the study's tables (a job or `kdplatform db upgrade` created them)."""
    df = read(db, "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_name IN ('jobs', 'runs')")
    return int(df.iloc[0, 0]) >= 2


def resolve_job(db: Db, job: int | str) -> int:
    """The id of a job given by id or by name; ValueError names the job when there is none."""
    if isinstance(job, int) or str(job).isdigit():
        df = read(db, "SELECT id FROM jobs WHERE id = :j", j=int(job))
    else:
        df = read(db, "SELECT id FROM jobs WHERE name = :j", j=str(job))
    if df.empty:
        raise ValueError(f"no job {job!r} in the database; `kdplatform status` lists the jobs")
    return int(df.iloc[0, 0])


def job_info(db: Db, job_id: int) -> dict[str, Any]:
    """id, name and the parsed spec (an empty dict when the stored spec is not a JSON object)."""
    df = read(db, "SELECT id, name, spec FROM jobs WHERE id = :j", j=job_id)
    if df.empty:
        raise ValueError(f"no job with id {job_id}")
    row = df.iloc[0]
    try:
        spec = json.loads(row["spec"])
    except (TypeError, ValueError):
        spec = {}
    return {"id": int(row["id"]), "name": row["name"], "spec": spec if isinstance(spec, dict) else {}}


@dataclass(frozen=True)
class JobTimings:
    """Wall time of a job's finished stages, as the runs table records them."""

    stages: int
    stage_seconds: float
    """Sum of the stages' durations (compute spent, whatever the gaps between reruns)."""
    first_start: pd.Timestamp
    last_finish: pd.Timestamp

    @property
    def span_seconds(self) -> float:
        """First stage start to last stage finish: includes waits between a killed run and its resume."""
        return float((self.last_finish - self.first_start).total_seconds())


def job_timings(db: Db, job_id: int) -> JobTimings | None:
    """None when no stage of the job has finished with both timestamps stored."""
    df = read(
        db,
        "SELECT COUNT(*) AS stages, SUM(seconds) AS seconds, MIN(started_at) AS first_start, "
        "MAX(finished_at) AS last_finish FROM runs WHERE job_id = :j AND status = 'done' "
        "AND started_at IS NOT NULL AND finished_at IS NOT NULL",
        j=job_id,
    )
    r = df.iloc[0]
    if not int(r["stages"]):
        return None
    seconds = 0.0 if pd.isna(r["seconds"]) else float(r["seconds"])
    return JobTimings(
        int(r["stages"]), seconds, pd.Timestamp(r["first_start"]), pd.Timestamp(r["last_finish"])
    )


def jobs(db: Db) -> pd.DataFrame:
    """One row per job: id, name, workdir, mlflow_run_id, created_at, runs by status, total seconds."""
    return read(
        db,
        """
        SELECT j.id, j.name, j.workdir, j.mlflow_run_id, j.created_at,
               COUNT(r.id) AS runs,
               SUM(CASE WHEN r.status = 'done' THEN 1 ELSE 0 END) AS done,
               SUM(CASE WHEN r.status = 'running' THEN 1 ELSE 0 END) AS running,
               SUM(CASE WHEN r.status = 'failed' THEN 1 ELSE 0 END) AS failed,
               SUM(r.seconds) AS seconds
        FROM jobs j LEFT JOIN runs r ON r.job_id = j.id
        GROUP BY j.id, j.name, j.workdir, j.mlflow_run_id, j.created_at
        ORDER BY j.id
        """,
    )


def runs(db: Db, job_id: int) -> pd.DataFrame:
    """Every run (stage) of a job with its model, dataset, status and timings, in stage order."""
    return read(
        db,
        """
        SELECT r.id AS run_id, r.stage_key, r.kind, r.role, r.seed, r.temperature, r.objective, r.status,
               m.name AS model, m.family, m.n_params, d.name AS dataset, r.started_at, r.finished_at,
               r.seconds, r.mlflow_run_id, r.error
        FROM runs r
        LEFT JOIN models m ON m.id = r.model_id
        LEFT JOIN datasets d ON d.id = r.dataset_id
        WHERE r.job_id = :j
        ORDER BY r.id
        """,
        j=job_id,
    )
