"""Run a job's plan: hold the job's lock, skip what is done, resume what a dead process left, and give
each stage its context.

Each stage is a run: a `runs` row (status, config, timings, lineage) and a nested MLflow run. A stage's
rows and its `done` status are committed in one transaction (the stage calls `ctx.finish`); starting a
stage clears every row an earlier attempt left (store.schema.RUN_OWNED_TABLES) in one transaction too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from kdplatform.pipeline import stale
from kdplatform.pipeline.bases import read_base
from kdplatform.pipeline.context import JobView, StageContext, now
from kdplatform.pipeline.edges import detach_checkpoint_edges
from kdplatform.pipeline.errors import StageFailed
from kdplatform.pipeline.layout import Layout
from kdplatform.pipeline.mlflow_inputs import log_run_inputs
from kdplatform.pipeline.plan import DATA_KEY, PRETRAIN_PREFIX, Stage, plan
from kdplatform.pipeline.stages import STAGES
from kdplatform.pipeline.stages.data import prepare_data
from kdplatform.pipeline.status import StageStatus, assess, read_only
from kdplatform.spec import JobSpec
from kdplatform.store import db, materialized
from kdplatform.store.job_locks import hold_job
from kdplatform.store.schema import RUN_OWNED_TABLES, Dataset, Job, Run, StageKind, Status

if TYPE_CHECKING:
    import pandas as pd


RATES_COLUMNS = [
    "run_id",
    "role",
    "seed",
    "temperature",
    "objective",
    "model_name",
    "examples",
    "memorized",
    "rate_pct",
    "val_loss",
]
"""The columns (and order) `kdplatform run` prints its rates table in (val_loss: the final checkpoint's,
on D's validation split)."""


class JobRunner:
    """Runs a job's plan against one database and one MLflow store."""

    def __init__(
        self,
        spec: JobSpec,
        workdir: Path,
        *,
        database_url: str | None = None,
        tracking_uri: str | None = None,
        echo: Callable[[str], None] = print,
    ):
        self.spec = spec
        self.workdir = Path(workdir).resolve()
        self.plan = plan(spec)
        cache = spec.pretrain.cache_dir if spec.pretrain else None
        self.layout = Layout(self.workdir, self.plan.hashes, Path(cache).resolve() if cache else None)
        self.database_url = database_url or spec.database_url or self.layout.default_database_url()
        self.tracking_uri = tracking_uri or spec.mlflow_tracking_uri or self.layout.default_tracking_uri()
        self.echo = echo
        self.engine = None

    def open(self, hold: ExitStack | None = None) -> None:
        """Migrate the database, open MLflow and record the job: the first writes a run makes. With `hold`,
        the job's database lock (store.job_locks) is taken first and held until `hold` closes."""
        from kdplatform.tracking import Tracker

        if self.engine is not None:
            return
        engine = db.make_engine(self.database_url)
        db.upgrade(engine)
        if hold is not None:
            hold.enter_context(hold_job(engine, self.spec.name))
        self.engine = engine
        self.tracker = Tracker(self.tracking_uri, f"kdp-{self.spec.name}", self.workdir)
        self.job_id, self.job_mlflow_id = self._job_row()
        self.view = JobView(self.engine, self.job_id, self.layout)

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _job_row(self) -> tuple[int, str]:
        spec_json = json.dumps(self.spec.model_dump(mode="json"), sort_keys=True)
        with self._session() as s, s.begin():
            job = s.scalar(select(Job).where(Job.name == self.spec.name))
            mlflow_id = self.tracker.job_run(
                self.spec.name, job.mlflow_run_id if job else None, {"spec_hash": self.spec.content_hash()}
            )
            if job is None:
                job = Job(
                    name=self.spec.name,
                    spec=spec_json,
                    spec_hash=self.spec.content_hash(),
                    workdir=str(self.workdir),
                    mlflow_run_id=mlflow_id,
                    created_at=now(),
                )
                s.add(job)
            else:
                job.spec, job.spec_hash, job.mlflow_run_id = spec_json, self.spec.content_hash(), mlflow_id
            job.mlflow_tracking_uri, job.mlflow_experiment_id = self.tracking_uri, self.tracker.experiment_id
            s.flush()
            return job.id, mlflow_id

    # ----------------------------------------------------------------------------------------- running
    def run(self) -> None:
        """Run every stage not yet done, holding the job's lock; stages a dead process left are redone."""
        from kdplatform.joblock import JobLock
        from kdplatform.preflight import check, check_workdir
        from kdplatform.tracking import check_uri

        check(self.spec, self.spec.name)
        check_uri(self.tracking_uri)
        check_workdir(self.workdir)
        db.preflight(self.database_url)
        with JobLock(self.workdir, self.spec.name), ExitStack() as hold:
            self.prepare_data()
            self.open(hold)
            self._mark_stale()
            for stage in self.plan.stages:
                h = self.plan.hashes[stage.key]
                action = self._assess(stage, self.run_row(stage.key)).action
                if action == "skip":
                    self.echo(f"[skip] {stage.key} (done)")
                    continue
                if action == "resume":
                    self.echo(f"[resume] {stage.key} (left running by a process that died)")
                else:
                    self.echo(f"[run ] {stage.key}")
                self._execute(stage, h)
            self.refresh_copies()

    def _assess(self, stage: Stage, row: Run | None) -> StageStatus:
        """assess(), and a done base whose cache directory is gone is pretrained again."""
        st = assess(stage, self.plan.hashes[stage.key], row)
        trained_base = stage.kind == StageKind.PRETRAIN and "train" in stage.config
        if st.action == "skip" and trained_base and read_base(self.layout.base_dir(stage.key)) is None:
            return replace(st, why="run: its cached base is gone")
        return st

    def _mark_stale(self) -> None:
        with self._session() as s, s.begin():
            keys = stale.mark_stale(s, self.job_id, self.plan.hashes)
        for key in keys:
            self.echo(f"[stale] {key} (no longer in the plan: left out of every view; `kdplatform prune`)")

    def prune(self, *, dry_run: bool = False) -> list[Run]:
        """Delete the runs whose stage left the plan and every row they own, in one transaction, holding
        the job's lock (with `dry_run`, only say which). Returns them."""
        from kdplatform.joblock import JobLock

        db.preflight(self.database_url)
        with JobLock(self.workdir, self.spec.name), ExitStack() as hold:
            self.open(hold)
            with self._session() as s, s.begin():
                pruned = stale.prune(s, self.job_id, self.plan.hashes, dry_run=dry_run)
            if not dry_run:
                self.refresh_copies()
            return pruned

    def refresh_copies(self) -> None:
        """The job's copies of the slow views written again (store.materialized), in one transaction:
        until then, the analysis reads the views themselves. A failure to write them is said, not raised:
        the stages' rows are committed, and a copy whose state is not the job's is never read."""
        try:
            with self.engine.begin() as conn:
                written = materialized.refresh(conn, self.job_id)
        except SQLAlchemyError as e:  # the old copies keep their old state: never read, nothing wrong
            self.echo(
                f"[copies] not written ({type(e).__name__}: {e}); pages read the views until the next run"
            )
            return
        if written:
            self.echo(f"[copies] {', '.join(written)} (the views' per-job copies the dashboard reads)")

    def prepare_data(self) -> None:
        """D's files, built before the database is opened (see stages.data.prepare_data)."""
        prepare_data(self.spec, self.layout, self.echo)

    def _start(self, stage: Stage, h: str) -> int:
        """Mark the stage running and clear what an earlier attempt left, in one committed transaction."""
        with self._session() as s, s.begin():
            run = s.scalar(select(Run).where(Run.job_id == self.job_id, Run.stage_key == stage.key))
            if run is None:
                run = Run(
                    job_id=self.job_id,
                    stage_key=stage.key,
                    kind=stage.kind,
                    config="{}",
                    config_hash=h,
                    status=Status.RUNNING,
                )
                s.add(run)
            run.kind, run.role, run.seed = stage.kind, stage.role, stage.seed
            run.temperature, run.objective = stage.temperature, stage.objective
            run.config, run.config_hash = json.dumps(stage.config, sort_keys=True), h
            run.status, run.started_at, run.finished_at, run.error = Status.RUNNING, now(), None, None
            s.flush()
            conn = s.connection()
            detach_checkpoint_edges(conn, run.id)
            for table, column in RUN_OWNED_TABLES.items():
                db.delete_rows(conn, table, **{column: run.id})
            return run.id

    def _tags(self, stage: Stage, run_id: int) -> dict[str, str]:
        """The stage run's MLflow tags: what it is, and the MLflow runs of its inputs."""
        tags = {
            "kdp.stage_key": stage.key,
            "kdp.kind": stage.kind,
            "kdp.role": stage.role or "",
            "kdp.run_id": str(run_id),
        }
        for dep in stage.deps:
            dep_run = self.run_row(dep)
            if dep_run is not None and dep_run.mlflow_run_id:
                name = "base" if dep.startswith(PRETRAIN_PREFIX) else dep.split("/")[1] if "/" in dep else dep
                tags[f"kdp.input.{name}"] = dep_run.mlflow_run_id
        return tags

    def _execute(self, stage: Stage, h: str) -> None:
        run_id = self._start(stage, h)
        try:
            params = stage.config | {"config_hash": h}
            with self.tracker.stage(self.job_mlflow_id, stage.key, params, self._tags(stage, run_id)) as mid:
                with self._session() as s, s.begin():
                    s.get(Run, run_id).mlflow_run_id = mid
                STAGES[stage.kind](self._context(stage, run_id, mid))
                with self._session() as s:  # its inputs as committed: MLflow's lineage is the database's
                    log_run_inputs(self.tracker, s, run_id, mid)
        except BaseException as e:
            self._fail(run_id, e)
            from kdplatform.train.checks import NonFiniteLossError  # torch is loaded by now

            if isinstance(e, NonFiniteLossError):  # its message names the stage (desc) and the step
                raise StageFailed(f"{e} [stage {stage.key} marked failed]") from e
            raise

    def _context(self, stage: Stage, run_id: int, mlflow_id: str) -> StageContext:
        return StageContext(
            engine=self.engine,
            job_id=self.job_id,
            layout=self.layout,
            spec=self.spec,
            plan=self.plan,
            stage=stage,
            run_id=run_id,
            mlflow_id=mlflow_id,
            tracker=self.tracker,
            echo=self.echo,
        )

    def _fail(self, run_id: int, e: BaseException) -> None:
        with self._session() as s, s.begin():
            run = s.get(Run, run_id)
            run.status, run.error, run.finished_at = Status.FAILED, f"{type(e).__name__}: {e}", now()

    # ------------------------------------------------------------------------------- reading, no writes
    def stored_runs(self) -> dict[str, Run]:
        """The job's `runs` rows by stage key, read through a read-only engine: nothing is created or
        written, and a job never run yet (no database, or no row for it) has none."""
        from sqlalchemy.engine import make_url

        u = make_url(self.database_url)
        if u.get_backend_name() == "duckdb" and not Path(u.database or "").exists():
            return {}
        with read_only(self.database_url) as s:
            job = s.scalar(select(Job).where(Job.name == self.spec.name))
            if job is None:
                return {}
            return {r.stage_key: r for r in s.scalars(select(Run).where(Run.job_id == job.id))}

    def status(self) -> list[StageStatus]:
        """Each stage's state, timings, and what `run` would do with it; writes nothing."""
        rows = self.stored_runs()
        return [self._assess(st, rows.get(st.key)) for st in self.plan.stages]

    def stale_runs(self) -> list[Run]:
        """The stored runs whose stage left the plan (marked stale by `run`, or not yet); writes nothing."""
        return stale.left_plan(self.stored_runs().values(), self.plan.hashes)

    def would_run(self) -> list[tuple[Stage, str]]:
        """What `run` would do with each stage and why, read without writing anything."""
        return [(s.stage, s.why) for s in self.status()]

    # After `open`: the job's rows, as its stages see them.
    def run_row(self, key: str) -> Run | None:
        return self.view.run_row(key)

    def dataset(self, key: str = DATA_KEY) -> Dataset:
        return self.view.dataset(key)

    def checkpoint_dir(self, train_key: str) -> Path:
        return self.layout.checkpoint_dir(train_key)

    def data_dir(self) -> Path:
        return self.layout.data_dir()

    def rates(self) -> pd.DataFrame:
        """Memorization rate per scanned run, in run order: the table `kdplatform run` prints."""
        from kdplatform.analysis.rates import final_checkpoints, rates

        df = rates(self.engine, self.job_id)
        final = final_checkpoints(self.engine, self.job_id)[["run_id", "val_loss"]]
        df = df.merge(final, on="run_id", how="left")
        return df.sort_values("run_id", kind="stable").reset_index(drop=True)[RATES_COLUMNS]
