"""Where each stage of a job stands and what `kdplatform run` would do with it, decided in one place for
the runner (skip, resume or run), `kdplatform plan` and `kdplatform status`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from kdplatform.pipeline.plan import Stage
from kdplatform.store import db
from kdplatform.store.schema import Run, Status

if TYPE_CHECKING:
    from kdplatform.spec import JobSpec

NOT_STARTED, STALE = "not started", "stale config"


@dataclass(frozen=True)
class StageStatus:
    stage: Stage
    state: str
    """done | running | failed | not started | stale config (done, but its config or an input changed)"""
    why: str
    """What `run` would do and why, e.g. `skip: done`, `run: never run`, `resume: ...`."""
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    seconds: float | None = None

    @property
    def action(self) -> str:
        """skip | resume | run"""
        return self.why.split(":", 1)[0]


def assess(stage: Stage, config_hash: str, run: Run | None) -> StageStatus:
    """The stage's state from its `runs` row (None: never started) and the plan's hash for it."""
    if run is None:
        return StageStatus(stage, NOT_STARTED, "run: never run")
    times = {"started_at": run.started_at, "finished_at": run.finished_at, "seconds": run.seconds}
    if run.status == Status.DONE and run.config_hash == config_hash:
        return StageStatus(stage, Status.DONE, "skip: done", **times)
    if run.status == Status.DONE:
        return StageStatus(stage, STALE, "run: its config or an input changed", **times)
    if run.status == Status.RUNNING:
        why = "resume: left running by a process that died (or running now)"
        return StageStatus(stage, Status.RUNNING, why, **times)
    error = f" ({run.error.splitlines()[0][:80]})" if run.error else ""
    return StageStatus(stage, run.status, f"run: last attempt {run.status}{error}", **times)


def _time(t: dt.datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def render(job: str, statuses: Sequence[StageStatus]) -> str:
    """The table `kdplatform status` prints: one line per stage, then a count per state."""
    width = max([len("stage"), *(len(s.stage.key) for s in statuses)])
    lines = [
        f"{'stage':{width}s}  {'kind':8s}  {'state':12s}  {'started':19s}  {'finished':19s}  "
        f"{'seconds':>8s}  kdplatform run would"
    ]
    for s in statuses:
        secs = "-" if s.seconds is None else f"{s.seconds:.1f}"
        lines.append(
            f"{s.stage.key:{width}s}  {s.stage.kind:8s}  {s.state:12s}  {_time(s.started_at):19s}  "
            f"{_time(s.finished_at):19s}  {secs:>8s}  {s.why}"
        )
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s.state] = counts.get(s.state, 0) + 1
    todo = sum(s.action != "skip" for s in statuses)
    summary = ", ".join(f"{n} {state}" for state, n in counts.items())
    lines.append(f"\njob {job}: {len(statuses)} stages ({summary}); `kdplatform run` would run {todo}")
    return "\n".join(lines)


@contextmanager
def read_only(database_url: str) -> Iterator[Session]:
    """A session on a read-only engine, disposed afterwards; a failure to read is a DatabaseError."""
    engine = db.make_engine(database_url, read_only=True)
    try:
        with Session(engine) as s:
            yield s
    except db.DatabaseError:
        raise
    except Exception as e:
        raise db.DatabaseError(f"cannot read {database_url}: {e}") from None
    finally:
        engine.dispose()


@dataclass(frozen=True)
class JobSummary:
    name: str
    workdir: str
    stages: int
    """Stages started at least once (the plan may hold more)."""
    counts: dict[str, int]
    last_finished: dt.datetime | None


def stored_jobs(database_url: str) -> list[JobSummary]:
    """Every job a database holds, with its runs counted by status; read-only."""
    from sqlalchemy import func, select

    from kdplatform.store.schema import Job

    with read_only(database_url) as s:
        jobs = s.execute(select(Job.id, Job.name, Job.workdir).order_by(Job.name)).all()
        rows = s.execute(
            select(Run.job_id, Run.status, func.count(), func.max(Run.finished_at)).group_by(
                Run.job_id, Run.status
            )
        ).all()
    out = []
    for job_id, name, workdir in jobs:
        mine = [r for r in rows if r[0] == job_id]
        finished = [r[3] for r in mine if r[3] is not None]
        out.append(
            JobSummary(
                name,
                workdir,
                sum(r[2] for r in mine),
                {r[1]: r[2] for r in mine},
                max(finished) if finished else None,
            )
        )
    return out


def stored_spec(database_url: str, name: str) -> tuple[JobSpec, str] | None:
    """The spec and workdir a job was last run with, from its `jobs` row; None when there is no such job."""
    import json

    from pydantic import ValidationError
    from sqlalchemy import select

    from kdplatform.spec import JobSpec, SpecError
    from kdplatform.store.schema import Job

    with read_only(database_url) as s:
        row = s.execute(select(Job.spec, Job.workdir).where(Job.name == name)).first()
    if row is None:
        return None
    try:
        return JobSpec.model_validate(json.loads(row.spec)), row.workdir
    except (ValueError, ValidationError) as e:
        raise SpecError(f"job {name!r} in {database_url}: its stored spec no longer validates: {e}") from None


def render_jobs(jobs: Sequence[JobSummary]) -> str:
    """The table `kdplatform status` prints without a JOB: one line per job in the database."""
    if not jobs:
        return "(no jobs in this database)"
    width = max([len("job"), *(len(j.name) for j in jobs)])
    lines = [
        f"{'job':{width}s}  {'stages':>6s}  {'done':>4s}  {'running':>7s}  {'failed':>6s}  last finished"
    ]
    for j in jobs:
        c = j.counts
        lines.append(
            f"{j.name:{width}s}  {j.stages:6d}  {c.get(Status.DONE, 0):4d}  {c.get(Status.RUNNING, 0):7d}  "
            f"{c.get(Status.FAILED, 0):6d}  {_time(j.last_finished)}"
        )
    return "\n".join(lines)
