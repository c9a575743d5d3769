"""Read-only queries over the analysis views: the functions the dashboard, the CLI and the report call.

Each takes `db`, an SQLAlchemy Engine or Connection or a database URL (opened read-only), and returns a
pandas DataFrame or a small dataclass. The SQL is plain and portable (DuckDB and PostgreSQL); the views it
reads are documented in kdplatform/analysis/__init__.py.

Pooled sets: the paper's Venn diagrams (Figures 4, 10, 11, 13) pool the seeds of a role, an example counts
as memorized by "the baseline" when any baseline seed memorized it. `student_group` picks which student
runs are pooled: one role at one (objective, temperature), by default the job spec's first objective and
first temperature (the configuration a sweep starts from), else the configuration with the most seeds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, text

Db = Engine | Connection | str
RunSet = int | Sequence[int]

ROLE_ORDER = "CASE role WHEN 'teacher' THEN 0 WHEN 'baseline' THEN 1 WHEN 'student' THEN 2 ELSE 3 END"
REGIONS = ("A", "B", "C", "AB", "AC", "BC", "ABC")


@contextmanager
def connect(db: Db) -> Iterator[Connection]:
    """A connection from whatever the caller holds; a URL is opened read-only and closed afterwards."""
    if isinstance(db, Connection):
        yield db
        return
    if isinstance(db, str):
        from kdplatform.store.db import make_engine

        engine = make_engine(db, read_only=True)
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()
        return
    with db.connect() as conn:
        yield conn


def read(db: Db, sql: str, **params: Any) -> pd.DataFrame:
    """Run one query; list or tuple parameters expand for `IN :name`."""
    stmt = text(sql)
    lists = [k for k, v in params.items() if isinstance(v, list | tuple)]
    if lists:
        stmt = stmt.bindparams(*[bindparam(k, expanding=True) for k in lists])
        params = {k: list(v) if k in lists else v for k, v in params.items()}
    with connect(db) as conn:
        res = conn.execute(stmt, params)
        if conn.dialect.name == "duckdb":
            # Columnar fetch: a million per-example rows in a tenth of a second instead of ten seconds.
            return res.cursor.df()
        return pd.DataFrame([tuple(r) for r in res.fetchall()], columns=list(res.keys()))


def _ids(runs: RunSet) -> list[int]:
    ids = [int(runs)] if isinstance(runs, int) else [int(r) for r in runs]
    if not ids:
        raise ValueError("a run set needs at least one run id")
    return ids


# --------------------------------------------------------------------------------------------- jobs
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


def scanned_runs(db: Db, job_id: int) -> pd.DataFrame:
    """The job's scanned models: run id, scanned dataset, role, seed, objective, temperature, counts."""
    return read(
        db,
        f"SELECT * FROM scanned_runs WHERE job_id = :j ORDER BY {ROLE_ORDER}, role, objective, "
        "temperature, seed, run_id",
        j=job_id,
    )


@dataclass(frozen=True)
class Group:
    """Runs pooled as one model: a role at one (objective, temperature), over its seeds."""

    role: str
    objective: str | None
    temperature: float | None
    run_ids: tuple[int, ...]

    @property
    def label(self) -> str:
        parts = [self.role]
        if self.objective:
            parts.append(self.objective)
        if self.temperature is not None:
            parts.append(f"T={self.temperature:g}")
        return " ".join(parts) + f" ({len(self.run_ids)} seed{'s' if len(self.run_ids) != 1 else ''})"


def _default_config(db: Db, job_id: int) -> tuple[str | None, float | None]:
    distill = job_info(db, job_id)["spec"].get("student", {}).get("distill", {})
    objectives, temperatures = distill.get("objective") or [None], distill.get("temperature") or [None]
    return objectives[0], temperatures[0]


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b))
    return a == b


def groups(db: Db, job_id: int, role: str) -> list[Group]:
    """Every (objective, temperature) configuration of a role in the job, with its scanned runs."""
    runs = scanned_runs(db, job_id)
    runs = runs[runs["role"] == role]
    out: dict[tuple, list[int]] = {}
    for r in runs.itertuples():
        key = (_none(r.objective), _none(r.temperature))
        out.setdefault(key, []).append(int(r.run_id))
    return [Group(role, o, t, tuple(ids)) for (o, t), ids in out.items()]


def _none(v: Any) -> Any:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def student_group(
    db: Db, job_id: int, role: str = "student", objective: str | None = None, temperature: float | None = None
) -> Group | None:
    """The runs of `role` pooled as one model (see the module docstring for the default choice)."""
    found = groups(db, job_id, role)
    if objective is not None or temperature is not None:
        found = [
            g
            for g in found
            if (objective is None or g.objective == objective)
            and (temperature is None or _same(g.temperature, temperature))
        ]
    if not found:
        return None
    d_obj, d_t = _default_config(db, job_id)
    for g in found:
        if _same(g.objective, d_obj) and _same(g.temperature, d_t):
            return g
    return max(found, key=lambda g: (len(g.run_ids), -min(g.run_ids)))


def role_runs(db: Db, job_id: int, role: str) -> list[int]:
    """Every scanned run of a role in the job (all seeds and configurations)."""
    runs = scanned_runs(db, job_id)
    return [int(r) for r in runs.loc[runs["role"] == role, "run_id"]]


# -------------------------------------------------------------------------------------------- rates
def rates(db: Db, job_id: int) -> pd.DataFrame:
    """The paper's Table 2 per run: examples scanned, memorized, rate (%)."""
    return read(
        db,
        "SELECT run_id, role, seed, objective, temperature, model_name, examples, "
        "CAST(memorized AS BIGINT) AS memorized, "
        f"CAST(rate_pct AS DOUBLE PRECISION) AS rate_pct FROM memorization_rates WHERE job_id = :j "
        f"ORDER BY {ROLE_ORDER}, role, objective, temperature, seed, run_id",
        j=job_id,
    )


def final_checkpoints(db: Db, job_id: int) -> pd.DataFrame:
    """Each trained run's final checkpoint: epochs trained and validation loss, so equal-compute and
    trained-to-a-target students can be told apart in Table 2."""
    return read(
        db,
        "SELECT c.run_id, r.role, c.epoch, c.step, CAST(c.val_loss AS DOUBLE PRECISION) AS val_loss "
        "FROM checkpoints c JOIN runs r ON r.id = c.run_id WHERE r.job_id = :j AND c.is_final "
        "ORDER BY c.run_id",
        j=job_id,
    )


def rate_summary(db: Db, job_id: int) -> pd.DataFrame:
    """Table 2 per model configuration: mean and std of the rate over seeds."""
    return read(
        db,
        "SELECT role, objective, temperature, model_name, COUNT(*) AS runs, "
        "AVG(CAST(rate_pct AS DOUBLE PRECISION)) AS rate_pct_mean, "
        "STDDEV_SAMP(CAST(rate_pct AS DOUBLE PRECISION)) AS rate_pct_std, "
        "AVG(CAST(memorized AS DOUBLE PRECISION)) AS memorized_mean, MAX(examples) AS examples "
        "FROM memorization_rates WHERE job_id = :j GROUP BY role, objective, temperature, model_name "
        f"ORDER BY {ROLE_ORDER}, role, objective, temperature",
        j=job_id,
    )


def temperature_sweep(
    db: Db, job_id: int, role: str = "student", *, every_temperature: bool = False
) -> pd.DataFrame:
    """Figure 2: a role's rate per (objective, temperature): runs, mean, min and max over seeds, the mean
    memorized count and the seeds (comma-separated, ascending).

    With `every_temperature`, only the seeds that trained every temperature of their objective count: a
    sweep may train the other temperatures on fewer seeds (distill.sweep_seeds), and a mean over 3 seeds
    at one T beside 1 seed at another compares seeds as much as temperatures.
    """
    rows = (
        "SELECT objective, seed, CAST(temperature AS DOUBLE PRECISION) AS temperature, "
        "CAST(rate_pct AS DOUBLE PRECISION) AS rate_pct, CAST(memorized AS DOUBLE PRECISION) AS memorized "
        "FROM memorization_rates WHERE job_id = :j AND role = :role AND temperature IS NOT NULL"
    )
    if every_temperature:
        rows = f"""
            WITH r AS ({rows}),
            nt AS (SELECT objective, COUNT(DISTINCT temperature) AS n FROM r GROUP BY objective),
            full_seeds AS (
                SELECT r.objective, r.seed FROM r JOIN nt ON nt.objective IS NOT DISTINCT FROM r.objective
                GROUP BY r.objective, r.seed, nt.n HAVING COUNT(DISTINCT r.temperature) = nt.n
            )
            SELECT r.* FROM r JOIN full_seeds f
              ON f.objective IS NOT DISTINCT FROM r.objective AND f.seed IS NOT DISTINCT FROM r.seed
        """
    return read(
        db,
        "SELECT objective, temperature, COUNT(*) AS runs, AVG(rate_pct) AS rate_pct_mean, "
        "MIN(rate_pct) AS rate_pct_min, MAX(rate_pct) AS rate_pct_max, AVG(memorized) AS memorized_mean, "
        f"STRING_AGG(CAST(seed AS VARCHAR), ',' ORDER BY seed) AS seeds FROM ({rows}) t "
        "GROUP BY objective, temperature ORDER BY objective, temperature",
        j=job_id,
        role=role,
    )


# ------------------------------------------------------------------------------------------ overlap
def overlap(db: Db, job_id: int) -> pd.DataFrame:
    """Every ordered pair of the job's scanned runs: |A|, |B|, |A∩B|, |A∖B|, |B∖A|, Jaccard."""
    return read(db, "SELECT * FROM run_overlap WHERE job_id = :j ORDER BY run_a, run_b", j=job_id)


def venn3(db: Db, a: RunSet, b: RunSet, c: RunSet) -> pd.DataFrame:
    """The seven region counts of three memorized sets (Figures 4, 10, 11, 13).

    Each of a, b, c is a run id or several (their union: pooled seeds). Examples are matched on
    example_id alone, so runs on different tokenizations of one corpus compare too. Region "AC" counts
    examples memorized by A and C but not B, and so on.
    """
    ia, ib, ic = _ids(a), _ids(b), _ids(c)
    counts = read(
        db,
        "SELECT in_a, in_b, in_c, COUNT(*) AS n FROM ("
        " SELECT example_id,"
        "  MAX(CASE WHEN run_id IN :a THEN 1 ELSE 0 END) AS in_a,"
        "  MAX(CASE WHEN run_id IN :b THEN 1 ELSE 0 END) AS in_b,"
        "  MAX(CASE WHEN run_id IN :c THEN 1 ELSE 0 END) AS in_c"
        " FROM memorized_examples WHERE run_id IN :abc GROUP BY example_id"
        ") t GROUP BY in_a, in_b, in_c",
        a=ia,
        b=ib,
        c=ic,
        abc=sorted(set(ia + ib + ic)),
    )
    found = {(int(r.in_a), int(r.in_b), int(r.in_c)): int(r.n) for r in counts.itertuples()}
    rows = []
    for region in REGIONS:
        key = tuple(int(x in region) for x in "ABC")
        rows.append(
            {
                "region": region,
                "in_a": bool(key[0]),
                "in_b": bool(key[1]),
                "in_c": bool(key[2]),
                "count": found.get(key, 0),
            }
        )
    return pd.DataFrame(rows)


def region(venn: pd.DataFrame, name: str) -> int:
    return int(venn.loc[venn["region"] == name, "count"].iloc[0])


@dataclass(frozen=True)
class JobVenn:
    """Teacher (A), baseline seeds pooled (B) and a student group pooled (C) of one job."""

    teacher: tuple[int, ...]
    baseline: tuple[int, ...]
    student: Group
    counts: pd.DataFrame

    def __getitem__(self, name: str) -> int:
        return region(self.counts, name)

    @property
    def n_student(self) -> int:
        return self["C"] + self["AC"] + self["BC"] + self["ABC"]

    @property
    def n_teacher_not_baseline(self) -> int:
        return self["A"] + self["AC"]

    @property
    def n_inherited(self) -> int:
        """Memorized by the teacher and the student but by no baseline seed (section 3.1)."""
        return self["AC"]

    @property
    def n_easy(self) -> int:
        """Memorized by the teacher and a baseline seed (easy-to-memorize)."""
        return self["AB"] + self["ABC"]


def job_venn(
    db: Db,
    job_id: int,
    student_role: str = "student",
    objective: str | None = None,
    temperature: float | None = None,
) -> JobVenn | None:
    """Figure 4 for a job: None when it lacks a scanned teacher, baseline or student of that role."""
    teacher, baseline = role_runs(db, job_id, "teacher"), role_runs(db, job_id, "baseline")
    student = student_group(db, job_id, student_role, objective, temperature)
    if not teacher or not baseline or student is None:
        return None
    counts = venn3(db, teacher, baseline, student.run_ids)
    return JobVenn(tuple(teacher), tuple(baseline), student, counts)


# -------------------------------------------------------------------------------------- inheritance
def inheritance(db: Db, job_id: int) -> pd.DataFrame:
    """Per (teacher, student, baseline) triple: inherited examples and their shares."""
    return read(
        db,
        "SELECT * FROM inheritance WHERE job_id = :j "
        "ORDER BY student_role, student_objective, student_temperature, student_seed, baseline_seed",
        j=job_id,
    )


def inherited_examples(db: Db, job_id: int, student_run_id: int | None = None) -> pd.DataFrame:
    sql = "SELECT * FROM inherited_examples WHERE job_id = :j"
    params: dict[str, Any] = {"j": job_id}
    if student_run_id is not None:
        sql += " AND student_run_id = :s"
        params["s"] = student_run_id
    return read(db, sql + " ORDER BY student_run_id, baseline_run_id, example_id", **params)


def easy_examples(db: Db, job_id: int) -> pd.DataFrame:
    """Figure 5's red points: memorized by the teacher and a baseline seed."""
    return read(db, "SELECT * FROM easy_examples WHERE job_id = :j ORDER BY example_id", j=job_id)


# -------------------------------------------------------------------------------------- consistency
def _group_filter(prefix: str = "student_") -> str:
    return (
        f"{prefix}role = :role AND {prefix}objective IS NOT DISTINCT FROM :objective "
        f"AND {prefix}temperature IS NOT DISTINCT FROM :temperature"
    )


def _group_params(g: Group) -> dict[str, Any]:
    return {"role": g.role, "objective": g.objective, "temperature": g.temperature}


def consistency_matrix(
    db: Db,
    job_id: int,
    role: str = "student",
    objective: str | None = None,
    temperature: float | None = None,
) -> pd.DataFrame:
    """Figure 3: examples by how many baseline seeds (rows) and student seeds (columns) memorized them.

    Rows run 0..number of baseline runs and columns 0..number of student runs of the group, zeros kept.
    """
    g = student_group(db, job_id, role, objective, temperature)
    if g is None:
        return pd.DataFrame()
    cells = read(
        db,
        "SELECT n_baseline_memorized, n_student_memorized, MAX(n_baseline_runs) AS nb, "
        "MAX(n_student_runs) AS ns, COUNT(*) AS n FROM seed_consistency "
        f"WHERE job_id = :j AND {_group_filter()} GROUP BY n_baseline_memorized, n_student_memorized",
        j=job_id,
        **_group_params(g),
    )
    if cells.empty:
        return pd.DataFrame()
    nb, ns = int(cells["nb"].max()), int(cells["ns"].max())
    m = pd.DataFrame(
        0,
        index=pd.RangeIndex(nb + 1, name="baseline_seeds"),
        columns=pd.RangeIndex(ns + 1, name="student_seeds"),
    )
    for r in cells.itertuples():
        m.loc[int(r.n_baseline_memorized), int(r.n_student_memorized)] = int(r.n)
    m.attrs["group"] = g
    return m


# ----------------------------------------------------------------------------------------- features
def features(
    db: Db,
    job_id: int,
    role: str = "student",
    objective: str | None = None,
    temperature: float | None = None,
) -> pd.DataFrame:
    """The classifier's table for one student group: example_features rows, one per example."""
    g = student_group(db, job_id, role, objective, temperature)
    if g is None:
        return pd.DataFrame()
    df = read(
        db,
        f"SELECT * FROM example_features WHERE job_id = :j AND {_group_filter()} ORDER BY example_id",
        j=job_id,
        **_group_params(g),
    )
    for col in ("teacher_memorized", "easy", "student_memorized"):
        df[col] = df[col].astype(bool)
    df.attrs["group"] = g
    return df


# --------------------------------------------------------------------------------------- classifier
def classifier_target(db: Db, run_id: int) -> str:
    """The role whose memorization a classifier run predicted (`student` for runs stored before the
    option existed)."""
    df = read(db, "SELECT config FROM runs WHERE id = :r", r=run_id)
    cfg = json.loads(df.config.iloc[0]) if len(df) and df.config.iloc[0] else {}
    return str(cfg.get("target", "student"))


def classifier_runs(db: Db, job_id: int) -> list[int]:
    """Runs of the job that stored classifier trials, oldest first."""
    df = read(
        db,
        "SELECT DISTINCT c.run_id FROM classifier_trials c JOIN runs r ON r.id = c.run_id "
        "WHERE r.job_id = :j ORDER BY c.run_id",
        j=job_id,
    )
    return [int(x) for x in df["run_id"]]


def _latest_classifier(db: Db, job_id: int, run_id: int | None) -> int | None:
    if run_id is not None:
        return run_id
    runs = classifier_runs(db, job_id)
    return runs[-1] if runs else None


def classifier_summary(db: Db, job_id: int, run_id: int | None = None) -> pd.DataFrame:
    """Tables 4-7: mean and std over trials of each metric and standardized coefficient."""
    run_id = _latest_classifier(db, job_id, run_id)
    if run_id is None:
        return pd.DataFrame(columns=["kind", "name", "mean", "std", "n_trials"])
    order = "CASE name " + " ".join(
        f"WHEN '{m}' THEN {i}" for i, m in enumerate(("accuracy", "precision", "recall", "f1", "roc_auc"))
    )
    return read(
        db,
        "SELECT run_id, kind, name, mean, std, n_trials FROM classifier_summary WHERE run_id = :r "
        f"ORDER BY kind DESC, {order} ELSE 9 END, name",
        r=run_id,
    )


def classifier_trials(db: Db, run_id: int) -> pd.DataFrame:
    return read(db, "SELECT * FROM classifier_trials WHERE run_id = :r ORDER BY trial", r=run_id)


def example_risk(db: Db, job_id: int, run_id: int | None = None) -> pd.DataFrame:
    """Risk scores of the job's latest classifier run (or `run_id`), highest first."""
    run_id = _latest_classifier(db, job_id, run_id)
    if run_id is None:
        return pd.DataFrame(columns=["run_id", "example_id", "dataset_id", "risk", "predicted"])
    df = read(db, "SELECT * FROM example_risk WHERE run_id = :r ORDER BY risk DESC, example_id", r=run_id)
    df["predicted"] = df["predicted"].astype(bool)
    return df


def memorized_ids(db: Db, runs: RunSet) -> set[int]:
    """Examples memorized by any of the runs."""
    df = read(db, "SELECT DISTINCT example_id FROM memorized_examples WHERE run_id IN :r", r=_ids(runs))
    return {int(x) for x in df["example_id"]}
